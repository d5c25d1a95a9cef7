package image

import (
	"errors"
	"fmt"
	"hash/maphash"
	"io"
	"os"
	"sort"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/clonecd/clonecd/cpio"
)

type dirAttr struct {
	rel      string
	uid, gid int
	mode     uint32
	mtime    int64
}

type linkGroup struct {
	rel     string   // the first name, which the others link to
	names   []string // every name created so far
	hasData bool
}

// nameSet holds the names an archive has had, as 128-bit hashes: an
// archive of millions of entries costs tens of MiB, not its names' size.
type nameSet struct {
	s1, s2 maphash.Seed
	m      map[[2]uint64]struct{}
}

func newNameSet() nameSet {
	return nameSet{maphash.MakeSeed(), maphash.MakeSeed(), map[[2]uint64]struct{}{}}
}

func (n nameSet) key(s string) [2]uint64 {
	return [2]uint64{maphash.String(n.s1, s), maphash.String(n.s2, s)}
}

// add adds s and reports whether it was new.
func (n nameSet) add(s string) bool {
	k := n.key(s)
	if _, ok := n.m[k]; ok {
		return false
	}
	n.m[k] = struct{}{}
	return true
}

func (n nameSet) has(s string) bool { _, ok := n.m[n.key(s)]; return ok }

type extractor struct {
	dir       string
	root      int
	o         UnpackOptions
	st        Stats
	dirs      map[string]int // open directory descriptors, by name
	seen      nameSet
	links     map[linkKey]*linkGroup
	dattrs    []dirAttr
	chown     bool
	strict    bool // chown failures are errors
	rootAttrs bool // DIR takes the image root's owner, mode and time
	xattrSize int64
	w         *writers
	broken    []string // hardlinked names whose data did not arrive whole
}

func newExtractor(dir string, o UnpackOptions, rootAttrs bool) (*extractor, error) {
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("target directory %s: %w", dir, err)
	}
	return &extractor{dir: dir, root: fd, o: o, dirs: map[string]int{"": fd},
		seen: newNameSet(), links: map[linkKey]*linkGroup{},
		chown: !o.NoChown, strict: os.Geteuid() == 0, rootAttrs: rootAttrs}, nil
}

func (x *extractor) warn(format string, a ...any) {
	if x.o.Warn != nil {
		x.o.Warn(fmt.Sprintf(format, a...))
	}
}

// run restores the entries from h on, then reads the stream to its end.
func (x *extractor) run(s *stream, h *cpio.Header) (*Stats, error) {
	x.w = startWriters(workers(x.o.Workers), x.chown, x.strict)
	atEnd := h == nil // the trailer came first
	var err error
	for h != nil && !x.w.stop.Load() { // a writer failed: its error follows from wait
		if err = x.entry(h, s.cr); err != nil {
			err = entryError(h, err)
			break
		}
		if h, err = s.Next(); err != nil {
			atEnd, h = err == io.EOF, nil
		}
	}
	if atEnd {
		if err = s.End(); err != nil {
			err = fmt.Errorf("%w: the image is damaged, files restored from it may hold wrong data", err)
		}
	}
	werr := x.w.wait()
	x.removeBroken()
	if err == nil {
		err = werr
	}
	if err == nil {
		err = x.finish()
	}
	return &x.st, err
}

func (x *extractor) close() {
	for rel, fd := range x.dirs {
		if rel != "" {
			unix.Close(fd)
		}
	}
	unix.Close(x.root)
	x.dirs = nil
}

// trimDirs bounds the descriptor cache; called between entries only, so
// that no descriptor in use is closed.
func (x *extractor) trimDirs() {
	if len(x.dirs) > 1024 {
		x.dropDirs()
	}
}

func (x *extractor) dropDirs() {
	for rel, fd := range x.dirs {
		if rel != "" {
			unix.Close(fd)
		}
	}
	x.dirs = map[string]int{"": x.root}
}

// openDir returns a descriptor of directory rel, creating missing
// directories (0755, as GNU cpio -d; their entry, if the archive has
// one, sets their mode in finish) and never following a symlink.
func (x *extractor) openDir(rel string) (int, error) {
	if fd, ok := x.dirs[rel]; ok {
		return fd, nil
	}
	parent, base := split(rel)
	pfd, err := x.openDir(parent)
	if err != nil {
		return -1, err
	}
	const flags = unix.O_RDONLY | unix.O_DIRECTORY | unix.O_NOFOLLOW | unix.O_CLOEXEC
	fd, err := unix.Openat(pfd, base, flags, 0)
	if errors.Is(err, unix.ENOENT) {
		if err := unix.Mkdirat(pfd, base, 0o755); err != nil && !errors.Is(err, unix.EEXIST) {
			return -1, fmt.Errorf("creating directory %s: %w", displayName(rel), err)
		}
		fd, err = unix.Openat(pfd, base, flags, 0)
	}
	if err != nil {
		var st unix.Stat_t
		if unix.Fstatat(pfd, base, &st, unix.AT_SYMLINK_NOFOLLOW) == nil && st.Mode&unix.S_IFMT == unix.S_IFLNK {
			return -1, fmt.Errorf("%s is a symlink: refusing to write through it", rel)
		}
		return -1, fmt.Errorf("opening directory %s: %w", displayName(rel), err)
	}
	x.dirs[rel] = fd
	return fd, nil
}

func split(rel string) (parent, base string) {
	i := strings.LastIndexByte(rel, '/')
	if i < 0 {
		return "", rel
	}
	return rel[:i], rel[i+1:]
}

// clear removes whatever non-directory is at base (or an empty directory
// when the new entry is not a directory) so the entry can be created.
func clear(pfd int, base string) error {
	err := unix.Unlinkat(pfd, base, 0)
	if errors.Is(err, unix.EISDIR) || errors.Is(err, unix.EPERM) {
		err = unix.Unlinkat(pfd, base, unix.AT_REMOVEDIR)
	}
	if err != nil && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("replacing existing %s: %w", base, err)
	}
	return nil
}

func (x *extractor) owner(err error, what string) error {
	if err == nil || !x.strict {
		return nil
	}
	return fmt.Errorf("%s: %w", what, err)
}

func displayName(rel string) string { return "/" + rel }

func (x *extractor) entry(h *cpio.Header, cr *cpio.Reader) error {
	x.trimDirs()
	if isXattrRecord(h) {
		return x.xattrRecord(h)
	}
	rel, err := CleanName(h.Name)
	if err != nil {
		return err
	}
	if !x.seen.add(rel) {
		return fmt.Errorf("duplicate name: %s appears twice in the archive", displayName(rel))
	}
	x.st.Entries++
	addProgress(x.o.Progress, 0, 1)
	mode := h.Mode & 0o7777
	typ := h.Type()
	if x.o.Untrusted && typ != cpio.TypeDir && mode&0o6000 != 0 {
		x.warn("%s: setuid/setgid bits dropped (untrusted archive)", displayName(rel))
		mode &^= 0o6000
	}
	if typ == cpio.TypeDir {
		return x.directory(h, rel, mode)
	}
	if rel == "" {
		return fmt.Errorf("the root must be a directory")
	}
	if x.o.Untrusted && (typ == cpio.TypeChar || typ == cpio.TypeBlock) {
		x.warn("%s: device %d:%d not created (untrusted archive)", displayName(rel), h.Rdevmajor, h.Rdevminor)
		x.st.Skipped++
		return nil
	}
	parent, base := split(rel)
	pfd, err := x.openDir(parent)
	if err != nil {
		return err
	}
	switch typ {
	case cpio.TypeReg:
		if h.Nlink > 1 {
			return x.linked(h, cr, rel, pfd, base, mode)
		}
		return x.regular(h, cr, rel, pfd, base, mode)
	case cpio.TypeSymlink:
		x.st.Symlinks++
		if h.Linkname == "" {
			return fmt.Errorf("symlink with an empty target")
		}
		err := unix.Symlinkat(h.Linkname, pfd, base)
		if errors.Is(err, unix.EEXIST) {
			if err := clear(pfd, base); err != nil {
				return err
			}
			err = unix.Symlinkat(h.Linkname, pfd, base)
		}
		if err != nil {
			return fmt.Errorf("symlink: %w", err)
		}
	case cpio.TypeChar, cpio.TypeBlock, cpio.TypeFifo, cpio.TypeSocket:
		x.st.Devices++
		dev := int(unix.Mkdev(h.Rdevmajor, h.Rdevminor))
		err := unix.Mknodat(pfd, base, typ|mode, dev)
		if errors.Is(err, unix.EEXIST) {
			if err := clear(pfd, base); err != nil {
				return err
			}
			err = unix.Mknodat(pfd, base, typ|mode, dev)
		}
		if err != nil {
			return fmt.Errorf("mknod: %w", err)
		}
	default:
		return fmt.Errorf("unknown file type %06o", h.Mode)
	}
	if x.chown {
		if err := x.owner(unix.Fchownat(pfd, base, h.Uid, h.Gid, unix.AT_SYMLINK_NOFOLLOW), "chown"); err != nil {
			return err
		}
	}
	if typ != cpio.TypeSymlink {
		if err := unix.Fchmodat(pfd, base, mode, 0); err != nil {
			return fmt.Errorf("chmod: %w", err)
		}
	}
	ts := []unix.Timespec{{Sec: h.Mtime}, {Sec: h.Mtime}}
	if err := unix.UtimesNanoAt(pfd, base, ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("setting time: %w", err)
	}
	return nil
}

// directory creates a directory 0700 (so that nobody enters it before
// its owner and mode are set, in finish) and remembers its attributes.
func (x *extractor) directory(h *cpio.Header, rel string, mode uint32) error {
	x.st.Dirs++
	if rel != "" {
		parent, base := split(rel)
		pfd, err := x.openDir(parent)
		if err != nil {
			return err
		}
		err = unix.Mkdirat(pfd, base, 0o700)
		if errors.Is(err, unix.EEXIST) {
			var st unix.Stat_t
			if err := unix.Fstatat(pfd, base, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
				return err
			}
			if st.Mode&unix.S_IFMT != unix.S_IFDIR {
				if err := clear(pfd, base); err != nil {
					return err
				}
				err = unix.Mkdirat(pfd, base, 0o700)
			} else {
				err = nil
			}
		}
		if err != nil {
			return fmt.Errorf("mkdir: %w", err)
		}
	}
	x.dattrs = append(x.dattrs, dirAttr{rel, h.Uid, h.Gid, mode, h.Mtime})
	return nil
}

// create makes a new regular file at base, replacing what is there.
func create(pfd int, base string) (int, error) {
	const flags = unix.O_WRONLY | unix.O_CREAT | unix.O_EXCL | unix.O_NOFOLLOW | unix.O_CLOEXEC
	fd, err := unix.Openat(pfd, base, flags, 0o600)
	if errors.Is(err, unix.EEXIST) {
		if err := clear(pfd, base); err != nil {
			return -1, err
		}
		fd, err = unix.Openat(pfd, base, flags, 0o600)
	}
	if err != nil {
		return -1, fmt.Errorf("create: %w", err)
	}
	return fd, nil
}

// regular creates a file of one name and hands its data to the writers
// in chunks; the last chunk carries the reader's hold on the file, so a
// writer sets its metadata.
func (x *extractor) regular(h *cpio.Header, cr *cpio.Reader, rel string, pfd int, base string, mode uint32) error {
	x.st.Files++
	fd, err := create(pfd, base)
	if err != nil {
		return err
	}
	f := &outFile{fd: fd, rel: rel, uid: h.Uid, gid: h.Gid, mode: mode, mtime: h.Mtime}
	f.refs.Store(1)
	x.w.files.Add(1)
	if h.Size == 0 {
		x.w.send(chunk{f: f})
		return nil
	}
	for off := int64(0); off < h.Size; {
		n := int(min(h.Size-off, chunkSize))
		b := x.w.buffer(n)
		k, err := io.ReadFull(onlyReader{cr}, (*b)[:n])
		if err == nil && off+int64(n) == h.Size {
			// ReadFull drops an error that comes with the last bytes
			// (a crc mismatch): ask again.
			if _, perr := cr.Read(nil); perr != io.EOF {
				err = perr
			}
		}
		x.st.Bytes += int64(k)
		addProgress(x.o.Progress, int64(k), 0)
		if err != nil {
			x.w.putBuffer(b)
			f.bad.Store(true)
			x.w.release(f)
			return err
		}
		last := off+int64(n) == h.Size
		if !last {
			f.refs.Add(1)
		}
		x.w.send(chunk{f: f, off: off, buf: b, n: n})
		off += int64(n)
	}
	return nil
}

// linked creates a name of a hardlink group. The group's data may come
// with any name (u-root: the first; GNU cpio: the last): it goes into the
// inode the earlier names share. Groups are few, and written here in the
// reader, so that no writer touches an inode the reader writes.
func (x *extractor) linked(h *cpio.Header, cr *cpio.Reader, rel string, pfd int, base string, mode uint32) error {
	key := linkKey{uint64(h.Devmajor)<<32 | uint64(h.Devminor), uint64(h.Ino)}
	g := x.links[key]
	if g == nil {
		x.st.Files++
		fd, err := create(pfd, base)
		if err != nil {
			return err
		}
		g = &linkGroup{rel: rel, names: []string{rel}, hasData: h.Size > 0}
		x.links[key] = g
		return x.fillGroup(fd, g, h, cr, mode)
	}
	x.st.Hardlinks++
	gparent, gbase := split(g.rel)
	gfd, err := x.openDir(gparent)
	if err != nil {
		return err
	}
	if h.Size > 0 && !g.hasData {
		fd, err := unix.Openat(gfd, gbase, unix.O_WRONLY|unix.O_TRUNC|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("hardlink target %s: %w", displayName(g.rel), err)
		}
		if err := x.fillGroup(fd, g, h, cr, mode); err != nil {
			return err
		}
		g.hasData = true
	}
	err = unix.Linkat(gfd, gbase, pfd, base, 0)
	if errors.Is(err, unix.EEXIST) {
		if err := clear(pfd, base); err != nil {
			return err
		}
		err = unix.Linkat(gfd, gbase, pfd, base, 0)
	}
	if err != nil {
		return fmt.Errorf("hardlink to %s: %w", displayName(g.rel), err)
	}
	g.names = append(g.names, rel)
	return nil
}

// fillGroup fills and closes the inode of g's names; if its data does
// not arrive whole, all of them are removed.
func (x *extractor) fillGroup(fd int, g *linkGroup, h *cpio.Header, cr *cpio.Reader, mode uint32) error {
	err := x.fill(fd, h, cr, mode)
	if cerr := unix.Close(fd); err == nil {
		err = cerr
	}
	if err != nil {
		x.broken = append(x.broken, g.names...)
	}
	return err
}

// fill writes the entry's data to fd and sets owner, mode and time.
func (x *extractor) fill(fd int, h *cpio.Header, cr *cpio.Reader, mode uint32) error {
	if h.Size > 0 {
		n, err := cr.WriteTo(fdWriter(fd))
		x.st.Bytes += n
		addProgress(x.o.Progress, n, 0)
		if err != nil {
			return err
		}
	}
	return x.w.meta(&outFile{fd: fd, uid: h.Uid, gid: h.Gid, mode: mode, mtime: h.Mtime})
}

type fdWriter int

func (w fdWriter) Write(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		m, err := unix.Write(int(w), p[n:])
		if err != nil {
			if errors.Is(err, unix.EINTR) {
				continue
			}
			return n, err
		}
		n += m
	}
	return n, nil
}

// removeBroken removes the files whose data did not arrive whole, so that
// none is left under its name looking complete.
func (x *extractor) removeBroken() {
	for _, rel := range append(x.w.broken, x.broken...) {
		parent, base := split(rel)
		pfd, err := x.openDir(parent)
		if err == nil {
			err = unix.Unlinkat(pfd, base, 0)
		}
		if err != nil && !errors.Is(err, unix.ENOENT) {
			x.warn("%s is incomplete and could not be removed: %v", displayName(rel), err)
		}
	}
}

// finish sets directory owners, modes and times, deepest first. DIR
// itself takes the image root's only when it was new or empty.
func (x *extractor) finish() error {
	sort.SliceStable(x.dattrs, func(i, j int) bool {
		return strings.Count(x.dattrs[i].rel, "/") > strings.Count(x.dattrs[j].rel, "/")
	})
	x.dropDirs()
	for _, d := range x.dattrs {
		if d.rel == "" && !x.rootAttrs {
			continue
		}
		x.trimDirs()
		fd := x.root
		if d.rel != "" {
			parent, base := split(d.rel)
			pfd, err := x.openDir(parent)
			if err != nil {
				return err
			}
			fd, err = unix.Openat(pfd, base, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
			if err != nil {
				return fmt.Errorf("directory %s: %w", displayName(d.rel), err)
			}
		}
		err := x.dirAttrs(fd, d)
		if fd != x.root {
			unix.Close(fd)
		}
		if err != nil {
			return fmt.Errorf("directory %s: %w", displayName(d.rel), err)
		}
	}
	return nil
}

func (x *extractor) dirAttrs(fd int, d dirAttr) error {
	if x.chown {
		if err := x.owner(unix.Fchown(fd, d.uid, d.gid), "chown"); err != nil {
			return err
		}
	}
	if err := unix.Fchmod(fd, d.mode); err != nil {
		return fmt.Errorf("chmod: %w", err)
	}
	return futimens(fd, d.mtime)
}
