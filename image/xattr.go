package image

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/clonecd/clonecd/cpio"
)

// Extended attributes (file capabilities, ACLs, SELinux labels) have no
// place in newc/crc headers. clonecd stores them in records that plain GNU
// cpio never sees: an entry named "." (the root directory again, with the
// root's own mode, owner and time, so GNU cpio just re-applies them) whose
// name field carries, after the NUL that ends the name, the text
//
//	clonecd-xattrs-v1
//	"path"<TAB>"name"<TAB>hexvalue
//	...
//
// Records come after all files, just before the trailer, so that unpack
// sets them after ownership (chown clears file capabilities). Each record
// holds at most XattrRecordMax bytes.
const xattrMagic = "clonecd-xattrs-v1\n"

// XattrRecordMax is the largest xattr record written, and read.
const XattrRecordMax = 60 << 10

// XattrTotalMax bounds the xattr records one archive may hold (a root
// labelled for SELinux takes about 150 bytes a file). Unpack applies each
// record as it arrives and Verify compares it, so memory holds one.
const XattrTotalMax = 256 << 20

type xattr struct {
	Name  string
	Value []byte
}

type xattrRecord struct {
	Path   string // archive name, "" for the root
	Xattrs []xattr
}

// listXattrs returns the extended attributes of path (not following a
// symlink), sorted by name.
func listXattrs(path string) ([]xattr, error) {
	buf := make([]byte, 1024)
	var n int
	var err error
	for {
		n, err = unix.Llistxattr(path, buf)
		if errors.Is(err, unix.ERANGE) {
			buf = make([]byte, len(buf)*4)
			continue
		}
		break
	}
	if err != nil {
		if errors.Is(err, unix.ENOTSUP) {
			return nil, nil
		}
		return nil, fmt.Errorf("listing xattrs of %s: %w", path, err)
	}
	if n == 0 {
		return nil, nil
	}
	var out []xattr
	for _, name := range strings.Split(strings.TrimRight(string(buf[:n]), "\x00"), "\x00") {
		if name == "" {
			continue
		}
		val := make([]byte, 256)
		for {
			m, err := unix.Lgetxattr(path, name, val)
			if errors.Is(err, unix.ERANGE) {
				val = make([]byte, len(val)*4)
				continue
			}
			if errors.Is(err, unix.ENODATA) {
				val = nil
				break
			}
			if err != nil {
				return nil, fmt.Errorf("reading xattr %s of %s: %w", name, path, err)
			}
			val = val[:m]
			break
		}
		if val != nil {
			out = append(out, xattr{name, val})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

func (p *packer) collectXattrs(rel, path string) error {
	if p.o.NoXattrs {
		return nil
	}
	xs, err := listXattrs(path)
	if err != nil {
		return err
	}
	if len(xs) > 0 {
		p.xattrs = append(p.xattrs, xattrRecord{rel, xs})
		p.st.Xattrs += len(xs)
	}
	return nil
}

func encodeXattrLine(b *bytes.Buffer, rec xattrRecord, x xattr) {
	b.WriteString(strconv.Quote(rec.Path))
	b.WriteByte('\t')
	b.WriteString(strconv.Quote(x.Name))
	b.WriteByte('\t')
	b.WriteString(hex.EncodeToString(x.Value))
	b.WriteByte('\n')
}

// writeXattrs writes the collected records before the trailer.
func (p *packer) writeXattrs() error {
	if len(p.xattrs) == 0 || p.rootHdr == nil {
		return nil
	}
	var b bytes.Buffer
	flush := func() error {
		if b.Len() <= len(xattrMagic) {
			return nil
		}
		h := *p.rootHdr
		h.Ext = append([]byte(nil), b.Bytes()...)
		if err := p.w.WriteHeader(&h); err != nil {
			return fmt.Errorf("xattr record: %w", err)
		}
		b.Reset()
		b.WriteString(xattrMagic)
		return nil
	}
	b.WriteString(xattrMagic)
	for _, rec := range p.xattrs {
		for _, x := range rec.Xattrs {
			var line bytes.Buffer
			encodeXattrLine(&line, rec, x)
			if line.Len()+len(xattrMagic) > XattrRecordMax {
				return fmt.Errorf("xattr %s of /%s is too large (%d bytes)", x.Name, rec.Path, len(x.Value))
			}
			if b.Len()+line.Len() > XattrRecordMax {
				if err := flush(); err != nil {
					return err
				}
			}
			b.Write(line.Bytes())
		}
	}
	return flush()
}

// isXattrRecord reports whether h is a clonecd xattr record.
func isXattrRecord(h *cpio.Header) bool {
	return len(h.Ext) > 0 && bytes.HasPrefix(h.Ext, []byte(xattrMagic))
}

// checkXattrRecord bounds a record and the running total before it is
// parsed.
func checkXattrRecord(h *cpio.Header, total *int64) error {
	if len(h.Ext) > XattrRecordMax {
		return fmt.Errorf("xattr record at offset %d holds %d bytes (at most %d)", h.Offset, len(h.Ext), XattrRecordMax)
	}
	*total += int64(len(h.Ext))
	if *total > XattrTotalMax {
		return fmt.Errorf("xattr records pass %d MiB in total at offset %d", XattrTotalMax>>20, h.Offset)
	}
	return nil
}

// parseXattrRecord decodes a record's lines.
func parseXattrRecord(h *cpio.Header) ([]xattrRecord, error) {
	var out []xattrRecord
	lines := strings.Split(strings.TrimSuffix(string(h.Ext[len(xattrMagic):]), "\n"), "\n")
	for i, line := range lines {
		if line == "" {
			continue
		}
		f := strings.Split(line, "\t")
		if len(f) != 3 {
			return nil, fmt.Errorf("xattr record at offset %d, line %d: want 3 tab-separated fields", h.Offset, i+2)
		}
		path, err1 := strconv.Unquote(f[0])
		name, err2 := strconv.Unquote(f[1])
		val, err3 := hex.DecodeString(f[2])
		if err := errors.Join(err1, err2, err3); err != nil {
			return nil, fmt.Errorf("xattr record at offset %d, line %d: %w", h.Offset, i+2, err)
		}
		if n := len(out); n > 0 && out[n-1].Path == path {
			out[n-1].Xattrs = append(out[n-1].Xattrs, xattr{name, val})
		} else {
			out = append(out, xattrRecord{path, []xattr{{name, val}}})
		}
	}
	return out, nil
}

// xattrRecord applies a record as it arrives: the packer writes records
// after every entry, so their paths exist. Files still in the writers'
// hands are finished first (chown clears file capabilities).
func (x *extractor) xattrRecord(h *cpio.Header) error {
	if err := checkXattrRecord(h, &x.xattrSize); err != nil {
		return err
	}
	if x.o.NoXattrs {
		return nil
	}
	recs, err := parseXattrRecord(h)
	if err != nil {
		return err
	}
	x.w.barrier()
	for _, rec := range recs {
		if err := x.setXattrs(rec); err != nil {
			return err
		}
	}
	return nil
}

func (x *extractor) setXattrs(rec xattrRecord) error {
	rel, err := CleanName(rec.Path)
	if err != nil {
		return fmt.Errorf("xattr record for %q: %w", rec.Path, err)
	}
	if !x.seen.has(rel) {
		return fmt.Errorf("xattr record for %s, which the archive does not hold before it", displayName(rel))
	}
	if rel == "" && !x.rootAttrs {
		return nil // a merge leaves DIR's own attributes alone
	}
	var xs []xattr
	for _, xa := range rec.Xattrs {
		if x.o.Untrusted && !strings.HasPrefix(xa.Name, "user.") {
			x.warn("%s: xattr %s not restored (untrusted archive)", displayName(rel), xa.Name)
			continue
		}
		xs = append(xs, xa)
	}
	if len(xs) == 0 {
		return nil
	}
	fd := x.root
	if rel != "" {
		parent, base := split(rel)
		pfd, err := x.openDir(parent)
		if err != nil {
			return err
		}
		var st unix.Stat_t
		if err := unix.Fstatat(pfd, base, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return fmt.Errorf("xattrs of %s: %w", displayName(rel), err)
		}
		if t := st.Mode & unix.S_IFMT; t != unix.S_IFREG && t != unix.S_IFDIR {
			x.warn("%s: xattrs on this file type are not restored", displayName(rel))
			return nil
		}
		fd, err = unix.Openat(pfd, base, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("xattrs of %s: %w", displayName(rel), err)
		}
		defer unix.Close(fd)
	}
	for _, xa := range xs {
		err := unix.Fsetxattr(fd, xa.Name, xa.Value, 0)
		if errors.Is(err, unix.ENOTSUP) && !strings.HasPrefix(xa.Name, "security.capability") {
			x.warn("%s: xattr %s not supported by the target filesystem", displayName(rel), xa.Name)
			continue
		}
		if err != nil {
			return fmt.Errorf("setting xattr %s on %s: %w", xa.Name, displayName(rel), err)
		}
		x.st.Xattrs++
	}
	return nil
}
