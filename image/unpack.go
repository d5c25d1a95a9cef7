package image

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	"github.com/klauspost/pgzip"
	"golang.org/x/sys/unix"

	"github.com/clonecd/clonecd/cpio"
)

// UnpackOptions tune Unpack.
type UnpackOptions struct {
	// NoChown leaves files owned by the unpacking user. Without root,
	// failing chowns are ignored anyway.
	NoChown bool
	// NoXattrs does not restore extended attributes.
	NoXattrs bool
	// Warn receives warnings (xattrs the filesystem does not support).
	Warn func(string)
	// Progress counts bytes of file data and entries; may be nil.
	Progress Counter
}

// Decompress returns a reader of the archive in r: gunzipped when r starts
// with the gzip magic, else r itself (with the bytes peeked put back).
func Decompress(r io.Reader) (io.ReadCloser, error) {
	br := bufio.NewReaderSize(r, 1<<20)
	magic, err := br.Peek(2)
	if err != nil {
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			return nil, fmt.Errorf("image is empty or shorter than a header")
		}
		return nil, err
	}
	if magic[0] == 0x1f && magic[1] == 0x8b {
		gz, err := pgzip.NewReaderN(br, 1<<20, 8)
		if err != nil {
			return nil, fmt.Errorf("gzip: %w", err)
		}
		gz.Multistream(true)
		return gzErrReader{gz}, nil
	}
	return io.NopCloser(br), nil
}

// gzErrReader names gzip as the source of decompression errors.
type gzErrReader struct{ *pgzip.Reader }

func (g gzErrReader) Read(p []byte) (int, error) {
	n, err := g.Reader.Read(p)
	if err != nil && err != io.EOF {
		err = fmt.Errorf("gzip: %w", err)
	}
	return n, err
}

func (g gzErrReader) WriteTo(w io.Writer) (int64, error) { return io.Copy(w, onlyReader{g}) }

// Unpack restores the archive in r (gzip'd or plain; newc or crc) into
// dir, which must exist. It refuses absolute paths, ".." components,
// writing through any symlink and duplicate names; nothing is ever written
// outside dir. Directory modes and times are set last; ownership before
// modes (setuid survives); xattrs after ownership.
func Unpack(r io.Reader, dir string, o UnpackOptions) (*Stats, error) {
	rc, err := Decompress(r)
	if err != nil {
		return nil, fmt.Errorf("unpack: %w", err)
	}
	defer rc.Close()
	x, err := newExtractor(dir, o)
	if err != nil {
		return nil, err
	}
	defer x.close()
	cr := cpio.NewReader(rc)
	for {
		h, err := cr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return &x.st, fmt.Errorf("unpack: %w", err)
		}
		if err := x.entry(h, cr); err != nil {
			var ce *cpio.Error
			if errors.As(err, &ce) {
				return &x.st, fmt.Errorf("unpack: %w", err)
			}
			return &x.st, fmt.Errorf("unpack: entry %q at offset %d: %w", h.Name, h.Offset, err)
		}
	}
	if err := x.finish(); err != nil {
		return &x.st, fmt.Errorf("unpack: %w", err)
	}
	return &x.st, nil
}

// UnpackFile unpacks the image file (or standard input for "-") into dir.
func UnpackFile(image, dir string, o UnpackOptions) (*Stats, error) {
	var r io.Reader = os.Stdin
	if image != "-" {
		f, err := os.Open(image)
		if err != nil {
			return nil, fmt.Errorf("unpack: %w", err)
		}
		defer f.Close()
		r = f
	}
	st, err := Unpack(r, dir, o)
	if err != nil && image != "-" {
		err = fmt.Errorf("%s: %w", image, err)
	}
	return st, err
}

// CleanName turns an archive name into a path relative to the target
// ("" for the root itself). It refuses absolute paths and ".." components.
func CleanName(name string) (string, error) {
	if strings.HasPrefix(name, "/") {
		return "", fmt.Errorf("absolute path refused")
	}
	if len(name) >= unix.PathMax {
		return "", fmt.Errorf("name of %d bytes is too long", len(name))
	}
	parts := strings.Split(name, "/")
	out := parts[:0]
	for _, p := range parts {
		switch p {
		case "", ".":
			continue
		case "..":
			return "", fmt.Errorf(`".." component refused`)
		}
		out = append(out, p)
	}
	return strings.Join(out, "/"), nil
}

type dirAttr struct {
	rel      string
	uid, gid int
	mode     uint32
	mtime    int64
}

type linkGroup struct {
	rel     string
	hasData bool
}

type extractor struct {
	dir    string
	root   int
	o      UnpackOptions
	st     Stats
	dirs   map[string]int
	seen   map[string]bool
	links  map[linkKey]*linkGroup
	dattrs []dirAttr
	xattrs []xattrRecord
	chown  bool
	strict bool // chown failures are errors
}

func newExtractor(dir string, o UnpackOptions) (*extractor, error) {
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("unpack: target directory %s: %w", dir, err)
	}
	return &extractor{dir: dir, root: fd, o: o, dirs: map[string]int{"": fd},
		seen: map[string]bool{}, links: map[linkKey]*linkGroup{},
		chown: !o.NoChown, strict: os.Geteuid() == 0}, nil
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
// directories (0755) and never following a symlink.
func (x *extractor) openDir(rel string) (int, error) {
	if fd, ok := x.dirs[rel]; ok {
		return fd, nil
	}
	parent, base := split(rel)
	pfd, err := x.openDir(parent)
	if err != nil {
		return -1, err
	}
	fd, err := unix.Openat(pfd, base, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if errors.Is(err, unix.ENOENT) {
		if err := unix.Mkdirat(pfd, base, 0o755); err != nil && !errors.Is(err, unix.EEXIST) {
			return -1, fmt.Errorf("creating directory %s: %w", rel, err)
		}
		fd, err = unix.Openat(pfd, base, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	}
	if err != nil {
		var st unix.Stat_t
		if unix.Fstatat(pfd, base, &st, unix.AT_SYMLINK_NOFOLLOW) == nil && st.Mode&unix.S_IFMT == unix.S_IFLNK {
			return -1, fmt.Errorf("%s is a symlink: refusing to write through it", rel)
		}
		return -1, fmt.Errorf("opening directory %s: %w", rel, err)
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

func (x *extractor) owner(err error, what string) error {
	if err == nil || !x.strict {
		return nil
	}
	return fmt.Errorf("%s: %w", what, err)
}

func (x *extractor) entry(h *cpio.Header, cr *cpio.Reader) error {
	x.trimDirs()
	if isXattrRecord(h) {
		recs, err := parseXattrRecord(h)
		if err != nil {
			return err
		}
		x.xattrs = append(x.xattrs, recs...)
		return nil
	}
	rel, err := CleanName(h.Name)
	if err != nil {
		return err
	}
	if x.seen[rel] {
		return fmt.Errorf("duplicate name: %s appears twice in the archive", displayName(rel))
	}
	x.seen[rel] = true
	x.st.Entries++
	addProgress(x.o.Progress, 0, 1)
	mode := h.Mode & 0o7777
	typ := h.Type()
	if typ == cpio.TypeDir {
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
	if rel == "" {
		return fmt.Errorf("the root must be a directory")
	}
	parent, base := split(rel)
	pfd, err := x.openDir(parent)
	if err != nil {
		return err
	}
	switch typ {
	case cpio.TypeReg:
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

func displayName(rel string) string { return "/" + rel }

// regular creates a regular file or hardlink. Hardlinks share the header's
// ino; the data may come with the first link (u-root) or the last (GNU).
func (x *extractor) regular(h *cpio.Header, cr *cpio.Reader, rel string, pfd int, base string, mode uint32) error {
	var g *linkGroup
	if h.Nlink > 1 {
		key := linkKey{uint64(h.Devmajor)<<32 | uint64(h.Devminor), uint64(h.Ino)}
		g = x.links[key]
		if g != nil {
			x.st.Hardlinks++
			gparent, gbase := split(g.rel)
			gfd, err := x.openDir(gparent)
			if err != nil {
				return err
			}
			if h.Size > 0 && !g.hasData {
				// GNU order: data on the last link. Write it into the
				// inode the earlier links share.
				fd, err := unix.Openat(gfd, gbase, unix.O_WRONLY|unix.O_TRUNC|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
				if err != nil {
					return fmt.Errorf("hardlink target %s: %w", displayName(g.rel), err)
				}
				err = x.fill(fd, h, cr, mode)
				if cerr := unix.Close(fd); err == nil {
					err = cerr
				}
				if err != nil {
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
			return nil
		}
		x.links[key] = &linkGroup{rel: rel, hasData: h.Size > 0}
	}
	x.st.Files++
	flags := unix.O_WRONLY | unix.O_CREAT | unix.O_EXCL | unix.O_NOFOLLOW | unix.O_CLOEXEC
	fd, err := unix.Openat(pfd, base, flags, 0o600)
	if errors.Is(err, unix.EEXIST) {
		if err := clear(pfd, base); err != nil {
			return err
		}
		fd, err = unix.Openat(pfd, base, flags, 0o600)
	}
	if err != nil {
		return fmt.Errorf("create: %w", err)
	}
	err = x.fill(fd, h, cr, mode)
	if cerr := unix.Close(fd); err == nil {
		err = cerr
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
	if x.chown {
		if err := x.owner(unix.Fchown(fd, h.Uid, h.Gid), "chown"); err != nil {
			return err
		}
	}
	if err := unix.Fchmod(fd, mode); err != nil {
		return fmt.Errorf("chmod: %w", err)
	}
	tv := []unix.Timeval{{Sec: h.Mtime}, {Sec: h.Mtime}}
	if err := unix.Futimes(fd, tv); err != nil {
		return fmt.Errorf("setting time: %w", err)
	}
	return nil
}

// finish applies xattrs, then directory owners, modes and times, deepest
// first.
func (x *extractor) finish() error {
	if !x.o.NoXattrs {
		for _, rec := range x.xattrs {
			x.trimDirs()
			if err := x.setXattrs(rec); err != nil {
				return err
			}
		}
	}
	sort.SliceStable(x.dattrs, func(i, j int) bool {
		return strings.Count(x.dattrs[i].rel, "/") > strings.Count(x.dattrs[j].rel, "/")
	})
	x.dropDirs()
	for _, d := range x.dattrs {
		x.trimDirs()
		var fd int
		var err error
		if d.rel == "" {
			fd = x.root
		} else {
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
		err = x.dirAttrs(fd, d)
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
	return unix.Futimes(fd, []unix.Timeval{{Sec: d.mtime}, {Sec: d.mtime}})
}

func (x *extractor) setXattrs(rec xattrRecord) error {
	rel, err := CleanName(rec.Path)
	if err != nil {
		return fmt.Errorf("xattr record for %q: %w", rec.Path, err)
	}
	if !x.seen[rel] {
		return fmt.Errorf("xattr record for %s, which the archive does not hold", displayName(rel))
	}
	var fd int
	if rel == "" {
		fd = x.root
	} else {
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
			if x.o.Warn != nil {
				x.o.Warn(fmt.Sprintf("%s: xattrs on this file type are not restored", displayName(rel)))
			}
			return nil
		}
		fd, err = unix.Openat(pfd, base, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("xattrs of %s: %w", displayName(rel), err)
		}
		defer unix.Close(fd)
	}
	for _, xa := range rec.Xattrs {
		err := unix.Fsetxattr(fd, xa.Name, xa.Value, 0)
		if errors.Is(err, unix.ENOTSUP) && !strings.HasPrefix(xa.Name, "security.capability") {
			if x.o.Warn != nil {
				x.o.Warn(fmt.Sprintf("%s: xattr %s not supported by the target filesystem", displayName(rel), xa.Name))
			}
			continue
		}
		if err != nil {
			return fmt.Errorf("setting xattr %s on %s: %w", xa.Name, displayName(rel), err)
		}
		x.st.Xattrs++
	}
	return nil
}
