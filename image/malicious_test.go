package image

import (
	"bytes"
	"compress/gzip"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/clonecd/clonecd/cpio"
)

type ent struct {
	name, data, link string
	mode             uint32
	nlink            int
	ino              uint32
}

func reg(name, data string) ent { return ent{name: name, data: data, mode: cpio.TypeReg | 0o644} }
func sym(name, target string) ent {
	return ent{name: name, link: target, mode: cpio.TypeSymlink | 0o777}
}
func dirEnt(name string) ent { return ent{name: name, mode: cpio.TypeDir | 0o755} }

// rawArchive writes entries without the checks pack makes; a declared
// size larger than the data makes a lying header.
func rawArchive(t testing.TB, f cpio.Format, es ...ent) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := cpio.NewWriter(&buf)
	for _, e := range es {
		h := &cpio.Header{Name: e.name, Mode: e.mode, Nlink: max(e.nlink, 1), Ino: e.ino, Linkname: e.link,
			Size: int64(len(e.data)), Format: f, Checksum: cpio.Sum(0, []byte(e.data))}
		if err := w.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		w.Write([]byte(e.data))
	}
	w.Close()
	return buf.Bytes()
}

func gz(b []byte) []byte {
	var out bytes.Buffer
	w := gzip.NewWriter(&out)
	w.Write(b)
	w.Close()
	return out.Bytes()
}

func listTree(t *testing.T, root string) []string {
	var out []string
	filepath.Walk(root, func(p string, fi os.FileInfo, err error) error {
		if err == nil {
			rel, _ := filepath.Rel(root, p)
			out = append(out, rel+" "+fi.Mode().String())
		}
		return nil
	})
	sort.Strings(out)
	return out
}

// TestMalicious: broken or hostile archives each fail with a clear error
// and leave nothing outside DIR.
func TestMalicious(t *testing.T) {
	big := rawArchive(t, cpio.Newc, reg("ok", "fine"), reg("file", strings.Repeat("x", 100000)))
	crcBad := rawArchive(t, cpio.CRC, reg("file", "some data"))
	crcBad[bytes.Index(crcBad, []byte("some data"))] = 'S'
	nonHex := rawArchive(t, cpio.Newc, reg("a", "b"))
	copy(nonHex[14:], "XYZ")
	huge := rawArchive(t, cpio.Newc, reg("huge", "tiny"))
	copy(huge[54:62], "FFFFFFFF") // filesize field
	hugeName := rawArchive(t, cpio.Newc, reg("n", ""))
	copy(hugeName[94:102], "7FFFFFFF")
	hugeLink := rawArchive(t, cpio.Newc, sym("l", "x"))
	copy(hugeLink[54:62], "00100000")
	gzGood := gz(big)
	tests := []struct {
		name string
		raw  []byte
		want string // in the error
	}{
		{"absolute path", rawArchive(t, cpio.Newc, reg("/OUTSIDE/passwd", "pwned")), `entry "/OUTSIDE/passwd" at offset 0: absolute path refused`},
		{"dotdot", rawArchive(t, cpio.Newc, reg("ok", "x"), reg("../outside/passwd", "pwned")), `"../outside/passwd" at offset 120: ".." component refused`},
		{"inner dotdot", rawArchive(t, cpio.Newc, reg("a/b/../../../outside/x", "pwned")), `".." component refused`},
		{"symlink then write through", rawArchive(t, cpio.Newc, sym("esc", "../outside"), reg("esc/passwd", "pwned")), `entry "esc/passwd" at offset 128: esc is a symlink: refusing to write through it`},
		{"absolute symlink then mkdir through", rawArchive(t, cpio.Newc, sym("esc", "/"), dirEnt("esc/etc")), `esc is a symlink: refusing to write through it`},
		{"symlink then hardlink through", rawArchive(t, cpio.Newc, sym("esc", "../outside"),
			ent{name: "esc/passwd", mode: cpio.TypeReg | 0o644, nlink: 2, ino: 9},
			ent{name: "in", data: "pwned", mode: cpio.TypeReg | 0o644, nlink: 2, ino: 9}), `esc is a symlink`},
		{"hardlink to outside", rawArchive(t, cpio.Newc,
			ent{name: "../outside/passwd", mode: cpio.TypeReg | 0o644, nlink: 2, ino: 9},
			ent{name: "in", data: "pwned", mode: cpio.TypeReg | 0o644, nlink: 2, ino: 9}), `".." component refused`},
		{"truncated data", gzGood[:len(gzGood)/2], `entry "file" at offset 120: truncated data`},
		{"truncated plain", big[:5000], `entry "file" at offset 120: truncated data`},
		{"bad crc", crcBad, `entry "file" at offset 0: checksum mismatch`},
		{"bad gzip", append([]byte{0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3}, bytes.Repeat([]byte{0xff}, 200)...), "header at offset 0: reading header: gzip: flate: corrupt input"},
		{"corrupt gzip data", func() []byte {
			b := append([]byte(nil), gzGood...)
			for i := 40; i < 60; i++ {
				b[i] ^= 0x55
			}
			return b
		}(), "gzip: flate: corrupt input"},
		{"huge declared size", huge, `entry "huge" at offset 0: truncated data (`},
		{"huge name size", hugeName, "name size 2147483647"},
		{"huge symlink", hugeLink, "symlink target of 1048576 bytes"},
		{"non-hex header", nonHex, `header at offset 0: malformed header: mode field "XYZ081A4" is not hex`},
		{"not cpio", []byte("this is not an archive at all, just text............................................................................................"), "not a cpio archive"},
		{"duplicate names", rawArchive(t, cpio.Newc, reg("etc/passwd", "root"), sym("etc/passwd", "/OUTSIDE/passwd")), `entry "etc/passwd" at offset 128: duplicate name: /etc/passwd appears twice`},
		{"no trailer", big[:len(big)-512+100][:bytes.LastIndex(big, []byte("070701"))], "without a trailer"},
		{"empty", nil, "empty"},
		{"xattr bomb (security.md 8)", xattrBomb(t, Gzip, 300, 1<<20), "name size 10485"},
		{"oversized xattr record", xattrBomb(t, None, 3, XattrRecordMax+100), "bytes (at most 61440)"},
		{"name of 5000 bytes", rawArchive(t, cpio.Newc, reg(strings.Repeat("n/", 2500), "x")), "name of 5000 bytes is too long"},
		{"xattr record before its file", xattrRecordFor(t, "etc/passwd"), "xattr record for /etc/passwd, which the archive does not hold before it"},
	}
	for _, tt := range tests {
		// plain archives are tried gzip'd and zstd'd too
		comps := []Compression{None, Gzip, Zstd}
		if bytes.HasPrefix(tt.raw, magicGzip) || isZstd(tt.raw) {
			comps = comps[:1]
		}
		for _, c := range comps {
			t.Run(c.String()+"/"+tt.name, func(t *testing.T) { malicious(t, c, tt.raw, tt.want) })
		}
	}
}

// malicious unpacks raw compressed with c and checks that it fails with
// want and writes nothing outside DIR.
func malicious(t *testing.T, c Compression, in []byte, want string) {
	base, outside, dir := sandbox(t)
	// OUTSIDE stands for the real root in absolute names
	raw := bytes.ReplaceAll(in, []byte("/OUTSIDE/"), []byte(outside+"/"))
	if len(outside) != len("/OUTSIDE") && bytes.Contains(in, []byte("/OUTSIDE/")) {
		// the name size in the header no longer fits: rebuild
		raw = rebuildWith(t, in, outside)
	}
	if c != None {
		raw = compress(t, c, raw)
	}
	before := listTree(t, base)
	_, err := Unpack(bytes.NewReader(raw), dir, UnpackOptions{})
	if err == nil {
		t.Fatalf("no error, want one containing %q", want)
	}
	if !strings.Contains(err.Error(), strings.ReplaceAll(want, "/OUTSIDE/", outside+"/")) {
		t.Errorf("error %q\n does not contain %q", err, want)
	}
	if b, _ := os.ReadFile(filepath.Join(outside, "passwd")); string(b) != "root" {
		t.Errorf("outside/passwd now holds %q", b)
	}
	after := listTree(t, base)
	var added []string
	for _, a := range after {
		if !strings.HasPrefix(a, "dir/") && !contains(before, a) {
			added = append(added, a)
		}
	}
	if len(added) > 0 {
		t.Errorf("written outside DIR: %q", added)
	}
}

// xattrRecordFor is an archive whose only entry is an xattr record for
// path.
func xattrRecordFor(t *testing.T, path string) []byte {
	var b bytes.Buffer
	w := cpio.NewWriter(&b)
	ext := xattrMagic + strconv.Quote(path) + "\t" + strconv.Quote("user.x") + "\t" + "61\n"
	w.WriteHeader(&cpio.Header{Name: ".", Mode: cpio.TypeDir | 0o755, Nlink: 2, Ext: []byte(ext)})
	w.Close()
	return b.Bytes()
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// rebuildWith re-encodes an archive replacing /OUTSIDE/ in names and link
// targets with the real directory.
func rebuildWith(t *testing.T, raw []byte, outside string) []byte {
	r := cpio.NewReader(bytes.NewReader(raw))
	var buf bytes.Buffer
	w := cpio.NewWriter(&buf)
	for {
		h, err := r.Next()
		if err != nil {
			break
		}
		data, _ := readAll(r)
		h.Name = strings.ReplaceAll(h.Name, "/OUTSIDE/", outside+"/")
		if h.Linkname != "" {
			h.Linkname = strings.ReplaceAll(h.Linkname, "/OUTSIDE/", outside+"/")
			h.Size = 0
		}
		w.WriteHeader(h)
		w.Write(data)
	}
	w.Close()
	return buf.Bytes()
}

func readAll(r *cpio.Reader) ([]byte, error) {
	var b bytes.Buffer
	_, err := b.ReadFrom(onlyReader{r})
	return b.Bytes(), err
}

// TestHardlinkOrders: data on the first link (u-root) or the last (GNU)
// or on none (an empty file) all give one inode with the data.
func TestHardlinkOrders(t *testing.T) {
	link := func(name, data string) ent {
		return ent{name: name, data: data, mode: cpio.TypeReg | 0o640, nlink: 3, ino: 42}
	}
	for _, tt := range []struct {
		name string
		es   []ent
		want string
	}{
		{"data first", []ent{link("a", "shared"), link("d/b", ""), link("c", "")}, "shared"},
		{"data last", []ent{link("a", ""), link("d/b", ""), link("c", "shared")}, "shared"},
		{"data middle", []ent{link("a", ""), link("d/b", "shared"), link("c", "")}, "shared"},
		{"empty", []ent{link("a", ""), link("d/b", ""), link("c", "")}, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			st, err := Unpack(bytes.NewReader(rawArchive(t, cpio.CRC, tt.es...)), dir, UnpackOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if st.Files != 1 || st.Hardlinks != 2 {
				t.Errorf("stats %+v", *st)
			}
			var ino uint64
			for _, n := range []string{"a", "d/b", "c"} {
				fi, err := os.Stat(filepath.Join(dir, n))
				if err != nil {
					t.Fatal(err)
				}
				b, _ := os.ReadFile(filepath.Join(dir, n))
				sys := fi.Sys().(*syscall.Stat_t)
				if string(b) != tt.want || fi.Mode().Perm() != 0o640 || sys.Nlink != 3 || (ino != 0 && sys.Ino != ino) {
					t.Errorf("%s: %q mode %v nlink %d", n, b, fi.Mode(), sys.Nlink)
				}
				ino = sys.Ino
			}
		})
	}
}
