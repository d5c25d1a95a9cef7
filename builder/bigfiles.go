package builder

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// go-diskfs copies file data into the ISO 2 KiB at a time (a ReadAt and a
// WriteAt per sector), which for a 1 GiB node.cpio.gz is a million system
// calls and twice xorriso's time. So large files do not go through it:
// they are set aside and replaced by empty placeholders before Finalize,
// then appended after the volume in one in-kernel copy (copy_file_range),
// and their directory records and the volume size are patched to point at
// them. The ISO reads the same to every reader: each file is one extent.

// bigFile is a file moved out of the workspace while go-diskfs writes.
type bigFile struct {
	rel   string // path in the tree, slash-separated
	aside string // where it waits
	size  int64
}

// bigMin is the size from which a file is appended rather than copied by
// go-diskfs.
const bigMin = 16 << 20

// setAside moves the regular files of at least bigMin bytes out of dir
// (into aside, on the same filesystem) and leaves empty placeholders.
// keep names files (boot images) that must stay where go-diskfs puts them.
func setAside(dir, aside string, keep ...string) ([]bigFile, error) {
	skip := map[string]bool{}
	for _, k := range keep {
		skip[strings.TrimPrefix(filepath.ToSlash(k), "/")] = true
	}
	var big []bigFile
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		rel = filepath.ToSlash(rel)
		if fi.Size() < bigMin || skip[rel] {
			return nil
		}
		if err := os.MkdirAll(aside, 0o700); err != nil {
			return err
		}
		to := filepath.Join(aside, fmt.Sprint(len(big)))
		if err := os.Rename(p, to); err != nil {
			return fmt.Errorf("setting %s aside: %w", rel, err)
		}
		big = append(big, bigFile{rel: rel, aside: to, size: fi.Size()})
		ph, err := os.OpenFile(p, os.O_CREATE|os.O_EXCL|os.O_WRONLY, fi.Mode().Perm())
		if err != nil {
			return fmt.Errorf("placeholder for %s: %w", rel, err)
		}
		return ph.Close()
	})
	return big, err
}

// appendBig writes each set-aside file after the volume of the ISO in f,
// points its directory record at it and grows the volume size. It
// returns the new volume size in bytes.
func appendBig(f *os.File, volume int64, big []bigFile) (int64, error) {
	if len(big) == 0 {
		return volume, nil
	}
	recs, err := fileRecords(f)
	if err != nil {
		return 0, err
	}
	for _, b := range big {
		at, ok := recs[b.rel]
		if !ok {
			return 0, fmt.Errorf("ISO: no directory record for %s", b.rel)
		}
		lba := volume / 2048
		if lba > 0xffffffff {
			return 0, fmt.Errorf("ISO: %s would start past the 8 TiB an ISO 9660 address reaches", b.rel)
		}
		if err := copyAt(f, b, volume); err != nil {
			return 0, err
		}
		rec := make([]byte, 16)
		binary.LittleEndian.PutUint32(rec[0:], uint32(lba))
		binary.BigEndian.PutUint32(rec[4:], uint32(lba))
		binary.LittleEndian.PutUint32(rec[8:], uint32(b.size))
		binary.BigEndian.PutUint32(rec[12:], uint32(b.size))
		if _, err := f.WriteAt(rec, at+2); err != nil {
			return 0, fmt.Errorf("ISO: directory record of %s: %w", b.rel, err)
		}
		volume += (b.size + 2047) / 2048 * 2048
	}
	sz := make([]byte, 8)
	binary.LittleEndian.PutUint32(sz[0:], uint32(volume/2048))
	binary.BigEndian.PutUint32(sz[4:], uint32(volume/2048))
	if _, err := f.WriteAt(sz, 16*2048+80); err != nil {
		return 0, fmt.Errorf("ISO: volume size: %w", err)
	}
	return volume, f.Truncate(volume)
}

// copyAt copies b's data into f at off with one in-kernel copy.
func copyAt(f *os.File, b bigFile, off int64) error {
	src, err := os.Open(b.aside)
	if err != nil {
		return fmt.Errorf("%s: %w", b.rel, err)
	}
	defer src.Close()
	if _, err := f.Seek(off, io.SeekStart); err != nil {
		return err
	}
	n, err := io.Copy(f, src) // os.File.ReadFrom: copy_file_range
	if err != nil {
		return fmt.Errorf("ISO: writing %s: %w", b.rel, err)
	}
	if n != b.size {
		return fmt.Errorf("ISO: %s: wrote %d bytes, want %d (did it change while building?)", b.rel, n, b.size)
	}
	return nil
}

// fileRecords maps the path of every file in the ISO (Rock Ridge names,
// else ISO names without ";1") to the byte offset of its directory record.
func fileRecords(r io.ReaderAt) (map[string]int64, error) {
	pvd := make([]byte, 2048)
	if _, err := r.ReadAt(pvd, 16*2048); err != nil {
		return nil, fmt.Errorf("ISO: primary volume descriptor: %w", err)
	}
	root := pvd[156 : 156+34]
	out := map[string]int64{}
	seen := map[uint32]bool{}
	var walk func(lba, size uint32, dir string, depth int) error
	walk = func(lba, size uint32, dir string, depth int) error {
		if seen[lba] || depth > 64 {
			return nil
		}
		seen[lba] = true
		buf := make([]byte, size)
		if _, err := r.ReadAt(buf, int64(lba)*2048); err != nil {
			return fmt.Errorf("ISO: directory %s: %w", dir, err)
		}
		for off := 0; off < len(buf); {
			n := int(buf[off])
			if n == 0 { // records do not cross sectors: go to the next one
				off = (off/2048 + 1) * 2048
				continue
			}
			if n < 34 || off+n > len(buf) {
				return fmt.Errorf("ISO: directory %s: bad record at %d", dir, off)
			}
			rec := buf[off : off+n]
			nameLen := int(rec[32])
			if 33+nameLen > n {
				return fmt.Errorf("ISO: directory %s: bad name at %d", dir, off)
			}
			id := rec[33 : 33+nameLen]
			if !(nameLen == 1 && (id[0] == 0 || id[0] == 1)) { // not . or ..
				var su []byte
				if start := 33 + nameLen + (1 - nameLen%2); start < n {
					su = rec[start:]
				}
				name := rockRidgeName(su)
				if name == "" {
					name = strings.ToLower(strings.TrimSuffix(strings.TrimSuffix(string(id), ";1"), "."))
				}
				p := path.Join(dir, name)
				if rec[25]&2 != 0 {
					if err := walk(binary.LittleEndian.Uint32(rec[2:]), binary.LittleEndian.Uint32(rec[10:]), p, depth+1); err != nil {
						return err
					}
				} else {
					out[p] = int64(lba)*2048 + int64(off)
				}
			}
			off += n
		}
		return nil
	}
	if err := walk(binary.LittleEndian.Uint32(root[2:]), binary.LittleEndian.Uint32(root[10:]), "", 0); err != nil {
		return nil, err
	}
	return out, nil
}

// rockRidgeName is the name in a record's system use area's NM entries.
func rockRidgeName(su []byte) string {
	var name bytes.Buffer
	for len(su) >= 4 {
		l := int(su[2])
		if l < 4 || l > len(su) {
			break
		}
		if su[0] == 'N' && su[1] == 'M' && l >= 5 {
			name.Write(su[5:l])
		}
		su = su[l:]
	}
	return name.String()
}
