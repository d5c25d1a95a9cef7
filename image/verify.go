package image

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"sort"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/clonecd/clonecd/cpio"
)

// VerifyOptions tune Verify.
type VerifyOptions struct {
	// Identity are the patterns of files listed apart (nil: IdentityFiles).
	Identity []string
	// Ignore are patterns of paths in DIR not to report as extra (nil:
	// DefaultExcludes, the runtime trees pack leaves out).
	Ignore []string
	// Skip are patterns of paths not compared at all (logs on a live
	// node, say).
	Skip []string
	// NoExtra skips the walk of DIR for files the image does not hold.
	NoExtra bool
	// NoXattrs skips comparing extended attributes.
	NoXattrs bool
	// Progress counts bytes of file data and entries; may be nil.
	Progress Counter
}

// Difference is one way DIR differs from the image.
type Difference struct {
	Path string // "/etc/passwd"
	What string // "missing", "extra", "mode 0600, image has 0644", ...
}

func (d Difference) String() string { return d.Path + ": " + d.What }

// Report is the outcome of Verify.
type Report struct {
	Differences []Difference // failures
	Identity    []Difference // in per-node identity files: expected
	Stats       Stats        // what the image holds
}

// OK reports whether DIR matches the image (identity files apart).
func (r *Report) OK() bool { return len(r.Differences) == 0 }

type verifier struct {
	root     *os.Root
	dir      string
	rep      *Report
	identity *Filter
	ignore   *Filter
	skip     *Filter
	names    map[string]bool
	groups   map[linkKey]string // archive hardlink group -> first name
	inodes   map[linkKey]string // DIR inode -> first name with it
	buf      []byte

	// xattrs of the path whose records are being compared
	xcur   string
	xcurOK bool
	xgot   map[string][]byte // in DIR
	xseen  map[string]bool   // names the image holds
	xdone  map[string]bool   // paths compared
}

func (v *verifier) diff(rel, format string, a ...any) {
	d := Difference{displayName(rel), fmt.Sprintf(format, a...)}
	if v.skip.Excluded(d.Path, false) || v.skip.Excluded(d.Path, true) {
		return
	}
	if v.identity.Excluded(d.Path, false) || v.identity.Excluded(d.Path, true) {
		v.rep.Identity = append(v.rep.Identity, d)
	} else {
		v.rep.Differences = append(v.rep.Differences, d)
	}
}

func typeName(t uint32) string {
	switch t {
	case cpio.TypeReg:
		return "regular file"
	case cpio.TypeDir:
		return "directory"
	case cpio.TypeSymlink:
		return "symlink"
	case cpio.TypeChar:
		return "char device"
	case cpio.TypeBlock:
		return "block device"
	case cpio.TypeFifo:
		return "fifo"
	case cpio.TypeSocket:
		return "socket"
	}
	return fmt.Sprintf("type %06o", t)
}

// Verify compares dir with the image in r (gzip, zstd or plain) and
// lists every difference: type, mode, owner, size, content digest, link
// target, device numbers, hardlink groups, xattrs, and files in dir the
// image does not hold. It reads the image to its end (Check's rules). The
// error is only for an unreadable or damaged image, or an unreadable dir.
func Verify(r io.Reader, dir string, o VerifyOptions) (*Report, error) {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, err
	}
	defer root.Close()
	s, err := openStream(r)
	if err != nil {
		return nil, err
	}
	defer s.Close()
	idp := o.Identity
	if idp == nil {
		idp = IdentityFiles
	}
	ign := o.Ignore
	if ign == nil {
		ign = DefaultExcludes
	}
	v := &verifier{root: root, dir: dir, rep: &Report{}, names: map[string]bool{},
		groups: map[linkKey]string{}, inodes: map[linkKey]string{}, buf: make([]byte, 1<<20),
		xdone: map[string]bool{}}
	if v.identity, err = NewFilter(true, idp, nil); err != nil {
		return nil, err
	}
	if v.ignore, err = NewFilter(true, ign, nil); err != nil {
		return nil, err
	}
	if v.skip, err = NewFilter(true, o.Skip, nil); err != nil {
		return nil, err
	}
	var xattrSize int64
	for {
		h, err := s.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return v.rep, err
		}
		if isXattrRecord(h) {
			if err := checkXattrRecord(h, &xattrSize); err != nil {
				return v.rep, err
			}
			recs, err := parseXattrRecord(h)
			if err != nil {
				return v.rep, err
			}
			if !o.NoXattrs {
				v.xattrRecords(recs)
			}
			continue
		}
		rel, err := CleanName(h.Name)
		if err != nil {
			return v.rep, entryError(h, err)
		}
		if err := v.entry(h, rel, s.cr); err != nil {
			return v.rep, entryError(h, err)
		}
		addProgress(o.Progress, h.Size, 1)
	}
	if err := s.End(); err != nil {
		return v.rep, err
	}
	if !o.NoXattrs {
		v.xattrsEnd()
	}
	if !o.NoExtra {
		if err := v.extras(); err != nil {
			return v.rep, err
		}
	}
	sort.SliceStable(v.rep.Differences, func(i, j int) bool { return v.rep.Differences[i].Path < v.rep.Differences[j].Path })
	sort.SliceStable(v.rep.Identity, func(i, j int) bool { return v.rep.Identity[i].Path < v.rep.Identity[j].Path })
	return v.rep, nil
}

func (v *verifier) lstat(rel string) (*syscall.Stat_t, error) {
	// os.Root keeps every lookup inside dir; Lstat does not follow the
	// last component.
	name := rel
	if name == "" {
		name = "."
	}
	fi, err := v.root.Lstat(name)
	if err != nil {
		return nil, err
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return nil, fmt.Errorf("lstat %s: no stat_t", name)
	}
	return st, nil
}

func (v *verifier) entry(h *cpio.Header, rel string, cr *cpio.Reader) error {
	st := &v.rep.Stats
	st.Entries++
	v.names[rel] = true
	typ := h.Type()
	switch typ {
	case cpio.TypeDir:
		st.Dirs++
	case cpio.TypeSymlink:
		st.Symlinks++
	case cpio.TypeReg:
		st.Bytes += h.Size
	default:
		st.Devices++
	}
	fi, err := v.lstat(rel)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			v.diff(rel, "missing (image has a %s)", typeName(typ))
			return nil
		}
		v.diff(rel, "cannot check: %v", err)
		return nil
	}
	if got := fi.Mode & unix.S_IFMT; got != typ {
		v.diff(rel, "is a %s, image has a %s", typeName(uint32(got)), typeName(typ))
		return nil
	}
	if typ != cpio.TypeSymlink && fi.Mode&0o7777 != h.Mode&0o7777 {
		v.diff(rel, "mode %04o, image has %04o", fi.Mode&0o7777, h.Mode&0o7777)
	}
	if int(fi.Uid) != h.Uid || int(fi.Gid) != h.Gid {
		v.diff(rel, "owner %d:%d, image has %d:%d", fi.Uid, fi.Gid, h.Uid, h.Gid)
	}
	switch typ {
	case cpio.TypeSymlink:
		name := rel
		target, err := v.root.Readlink(name)
		if err != nil {
			v.diff(rel, "cannot read link: %v", err)
		} else if target != h.Linkname {
			v.diff(rel, "link to %q, image has %q", target, h.Linkname)
		}
	case cpio.TypeChar, cpio.TypeBlock:
		if unix.Major(fi.Rdev) != h.Rdevmajor || unix.Minor(fi.Rdev) != h.Rdevminor {
			v.diff(rel, "device %d:%d, image has %d:%d", unix.Major(fi.Rdev), unix.Minor(fi.Rdev), h.Rdevmajor, h.Rdevminor)
		}
	case cpio.TypeReg:
		if h.Nlink > 1 {
			key := linkKey{uint64(h.Devmajor)<<32 | uint64(h.Devminor), uint64(h.Ino)}
			if first, ok := v.groups[key]; ok {
				st.Hardlinks++
				if other, err := v.lstat(first); err == nil && (other.Dev != fi.Dev || other.Ino != fi.Ino) {
					v.diff(rel, "not a hardlink of %s as in the image", displayName(first))
				}
				if h.Size == 0 {
					return nil // data comes with another link
				}
			} else {
				v.groups[key] = rel
				st.Files++
			}
		} else {
			st.Files++
		}
		ikey := linkKey{fi.Dev, fi.Ino}
		if first, ok := v.inodes[ikey]; ok && !v.sameGroup(first, rel, h) {
			v.diff(rel, "is a hardlink of %s, the image has separate files", displayName(first))
		} else if !ok {
			v.inodes[ikey] = rel
		}
		if h.Size == 0 && h.Nlink > 1 {
			return nil
		}
		if fi.Size != h.Size {
			v.diff(rel, "size %d, image has %d", fi.Size, h.Size)
			return nil
		}
		want := sha256.New()
		if _, err := io.CopyBuffer(want, readerOf(cr), v.buf); err != nil {
			return err
		}
		f, err := v.root.OpenFile(rel, os.O_RDONLY|unix.O_NOFOLLOW, 0)
		if err != nil {
			v.diff(rel, "cannot read: %v", err)
			return nil
		}
		got := sha256.New()
		_, err = io.CopyBuffer(got, f, v.buf)
		f.Close()
		if err != nil {
			v.diff(rel, "cannot read: %v", err)
		} else if !bytes.Equal(got.Sum(nil), want.Sum(nil)) {
			v.diff(rel, "content differs (sha256 %x, image %x)", got.Sum(nil)[:8], want.Sum(nil)[:8])
		}
	}
	return nil
}

// sameGroup: whether rel and first belong to one archive hardlink group.
func (v *verifier) sameGroup(first, rel string, h *cpio.Header) bool {
	if h.Nlink <= 1 {
		return false
	}
	key := linkKey{uint64(h.Devmajor)<<32 | uint64(h.Devminor), uint64(h.Ino)}
	return v.groups[key] == first
}

func readerOf(cr *cpio.Reader) io.Reader { return onlyReader{cr} }

// xattrRecords compares recorded xattrs with dir's as they arrive. A
// path's xattrs come together (they may straddle two records): dir's
// are listed once per path, and those the image lacks reported when the
// next path begins.
func (v *verifier) xattrRecords(recs []xattrRecord) {
	for _, rec := range recs {
		v.rep.Stats.Xattrs += len(rec.Xattrs)
		rel, err := CleanName(rec.Path)
		if err != nil || !v.names[rel] {
			continue
		}
		if !v.xcurOK || rel != v.xcur {
			v.xattrsFlush()
			v.xcur, v.xcurOK, v.xdone[rel] = rel, true, true
			v.xgot, v.xseen = v.listXattrs(rel), map[string]bool{}
		}
		if v.xgot == nil {
			continue // not a file or directory, or unreadable (reported)
		}
		for _, x := range rec.Xattrs {
			v.xseen[x.Name] = true
			g, ok := v.xgot[x.Name]
			switch {
			case !ok:
				v.diff(rel, "xattr %s missing", x.Name)
			case !bytes.Equal(g, x.Value):
				v.diff(rel, "xattr %s is %x, image has %x", x.Name, g, x.Value)
			}
		}
	}
}

// xattrsFlush reports the current path's xattrs the image does not hold.
func (v *verifier) xattrsFlush() {
	if !v.xcurOK || v.xgot == nil {
		return
	}
	for _, name := range keysNotIn(v.xgot, v.xseen) {
		v.diff(v.xcur, "xattr %s not in the image", name)
	}
}

// xattrsEnd finishes the last path and checks that every other file and
// directory has no xattrs.
func (v *verifier) xattrsEnd() {
	v.xattrsFlush()
	v.xcurOK = false
	for _, rel := range keysNotIn(v.names, v.xdone) {
		v.xcur, v.xcurOK = rel, true
		v.xgot, v.xseen = v.listXattrs(rel), nil
		v.xattrsFlush()
	}
	v.xcurOK = false
}

// keysNotIn returns m's keys that are not in done, sorted.
func keysNotIn[V any](m map[string]V, done map[string]bool) []string {
	var out []string
	for k := range m {
		if !done[k] {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}

// listXattrs returns rel's xattrs by name; nil when it is not a file or
// directory, or cannot be read (reported).
func (v *verifier) listXattrs(rel string) map[string][]byte {
	fi, err := v.lstat(rel)
	if err != nil {
		return nil
	}
	if t := fi.Mode & unix.S_IFMT; t != unix.S_IFREG && t != unix.S_IFDIR {
		return nil
	}
	got, err := listXattrs(v.dir + "/" + rel)
	if err != nil {
		v.diff(rel, "cannot list xattrs: %v", err)
		return nil
	}
	m := make(map[string][]byte, len(got))
	for _, x := range got {
		m[x.Name] = x.Value
	}
	return m
}

// extras walks dir (not crossing filesystems) for entries the image does
// not hold, skipping the runtime trees.
func (v *verifier) extras() error {
	var rootSt unix.Stat_t
	if err := unix.Stat(v.dir, &rootSt); err != nil {
		return err
	}
	var walk func(rel string) error
	walk = func(rel string) error {
		name := rel
		if name == "" {
			name = "."
		}
		f, err := v.root.Open(name)
		if err != nil {
			v.diff(rel, "cannot read directory: %v", err)
			return nil
		}
		names, err := f.Readdirnames(-1)
		f.Close()
		if err != nil {
			v.diff(rel, "cannot read directory: %v", err)
			return nil
		}
		sort.Strings(names)
		for _, n := range names {
			crel := n
			if rel != "" {
				crel = rel + "/" + n
			}
			st, err := v.lstat(crel)
			if err != nil {
				continue
			}
			isDir := st.Mode&unix.S_IFMT == unix.S_IFDIR
			if !v.names[crel] {
				if v.ignore.Excluded("/"+crel, isDir) && !v.identity.Excluded("/"+crel, isDir) {
					continue
				}
				v.diff(crel, "extra %s, not in the image", typeName(uint32(st.Mode&unix.S_IFMT)))
				continue
			}
			if isDir && st.Dev == rootSt.Dev {
				if err := walk(crel); err != nil {
					return err
				}
			}
		}
		return nil
	}
	return walk("")
}

// FormatReport writes a report as text: differences, then identity files.
func FormatReport(w io.Writer, r *Report) {
	for _, d := range r.Differences {
		fmt.Fprintf(w, "DIFF %s\n", d)
	}
	if len(r.Identity) > 0 {
		fmt.Fprintf(w, "identity files personalised by the clone (not failures):\n")
		for _, d := range r.Identity {
			fmt.Fprintf(w, "  %s\n", d)
		}
	}
}
