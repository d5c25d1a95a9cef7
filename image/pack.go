package image

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"syscall"

	"golang.org/x/sys/unix"
	"golang.org/x/term"

	"github.com/clonecd/clonecd/cpio"
)

// PackOptions tune Pack. The zero value writes a newc archive, gzip'd at
// level 6 on every CPU, leaving out DefaultExcludes.
type PackOptions struct {
	Format cpio.Format
	// Filter decides what is left out; nil means the defaults.
	Filter *Filter
	// Compress is gzip (the zero value), zstd or none.
	Compress Compression
	// Level is the compression level: gzip 1-9, zstd 1-19 (as zstd(1));
	// 0 means Compress.DefaultLevel() (gzip 6, zstd 3).
	Level   int
	Threads int // compression threads; 0 means one per CPU
	// NoXattrs leaves extended attributes out.
	NoXattrs bool
	// Warn receives warnings (skipped sockets, files that changed); nil
	// discards them.
	Warn func(string)
	// Progress counts bytes of file data and entries; may be nil.
	Progress Counter
	// Skip are files (the image being written, say) left out wherever
	// they are in the tree.
	Skip []os.FileInfo
}

// Counter receives progress: bytes of data and entries. *progress.Meter
// is one.
type Counter interface{ Add(n, items int64) }

// ItemsOnly passes on entries but not bytes, for a meter that counts the
// compressed bytes itself.
func ItemsOnly(c Counter) Counter { return itemsOnly{c} }

type itemsOnly struct{ c Counter }

func (i itemsOnly) Add(_, items int64) { i.c.Add(0, items) }

func addProgress(c Counter, n, items int64) {
	if c != nil {
		c.Add(n, items)
	}
}

// Stats counts what Pack, Unpack or Verify handled.
type Stats struct {
	Entries   int   // archive entries (not counting xattr records)
	Files     int   // regular files (inodes)
	Dirs      int   // directories
	Symlinks  int   // symbolic links
	Devices   int   // char/block devices, FIFOs, sockets
	Hardlinks int   // extra names of regular files
	Xattrs    int   // extended attributes
	Bytes     int64 // file data
	Excluded  int   // paths left out by the filter (pack)
	Skipped   int   // sockets (pack), devices under Untrusted (unpack) left out
}

type linkKey struct {
	dev uint64
	ino uint64
}

type pendingLink struct {
	names []string
	paths []string
	st    unix.Stat_t
	ino   uint32
	want  int
	order int
}

type packer struct {
	root    string
	rootDev uint64
	o       PackOptions
	w       *cpio.Writer
	st      Stats
	nextIno uint32
	links   map[linkKey]*pendingLink
	order   int
	buf     []byte
	xattrs  []xattrRecord
	rootHdr *cpio.Header
}

func (p *packer) warn(format string, a ...any) {
	if p.o.Warn != nil {
		p.o.Warn(fmt.Sprintf(format, a...))
	}
}

// Pack writes the tree at root to w as a cpio archive compressed by
// o.Compress: sorted, each directory after its contents (like find
// -depth), not crossing filesystems, hardlinks stored once with the data
// on the last link (like GNU cpio), xattrs in a record GNU cpio ignores.
// A terminal is refused as w, as gzip(1) does.
func Pack(root string, w io.Writer, o PackOptions) (*Stats, error) {
	if f, ok := w.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		return nil, ErrTerminal
	}
	if o.Filter == nil {
		f, err := NewFilter(false, nil, nil)
		if err != nil {
			return nil, err
		}
		o.Filter = f
	}
	var st unix.Stat_t
	if err := unix.Stat(root, &st); err != nil {
		return nil, err
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR {
		return nil, fmt.Errorf("%s is not a directory", root)
	}
	cw, err := compressor(w, o.Compress, o.Level, o.Threads)
	if err != nil {
		return nil, err
	}
	p := &packer{root: root, rootDev: st.Dev, o: o, w: cpio.NewWriter(cw),
		links: map[linkKey]*pendingLink{}, buf: make([]byte, 1<<20)}
	err = p.pack(&st)
	if cerr := cw.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("%s: %w", o.Compress, cerr)
	}
	return &p.st, err
}

// ErrTerminal is Pack's refusal to write compressed data to a terminal.
var ErrTerminal = errors.New("refusing to write a compressed image to a terminal: redirect standard output or give a file (-o FILE)")

func (p *packer) pack(st *unix.Stat_t) error {
	if err := p.walk("", p.root); err != nil {
		return err
	}
	if err := p.entry("", p.root, st); err != nil {
		return err
	}
	if err := p.flushLinks(); err != nil {
		return err
	}
	if err := p.writeXattrs(); err != nil {
		return err
	}
	return p.w.Close()
}

// walk packs the contents of directory dir (archive name rel).
func (p *packer) walk(rel, dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	names, err := f.Readdirnames(-1)
	f.Close()
	if err != nil {
		return fmt.Errorf("reading directory %s: %w", dir, err)
	}
	sort.Strings(names)
	for _, name := range names {
		crel := name
		if rel != "" {
			crel = rel + "/" + name
		}
		cpath := joinPath(dir, name)
		var st unix.Stat_t
		if err := unix.Lstat(cpath, &st); err != nil {
			if errors.Is(err, unix.ENOENT) {
				p.warn("%s vanished while packing", cpath)
				continue
			}
			return err
		}
		isDir := st.Mode&unix.S_IFMT == unix.S_IFDIR
		if p.o.Filter.Excluded("/"+crel, isDir) || p.skipped(&st) {
			p.st.Excluded++
			continue
		}
		// Children before their directory, like find -depth: GNU cpio
		// -idm then keeps directory times and modes.
		if isDir && st.Dev == p.rootDev {
			if err := p.walk(crel, cpath); err != nil {
				return err
			}
		}
		if err := p.entry(crel, cpath, &st); err != nil {
			return err
		}
	}
	return nil
}

func (p *packer) skipped(st *unix.Stat_t) bool {
	for _, fi := range p.o.Skip {
		if s, ok := fi.Sys().(*syscall.Stat_t); ok && s.Dev == st.Dev && s.Ino == st.Ino {
			return true
		}
	}
	return false
}

func (p *packer) header(rel string, st *unix.Stat_t) *cpio.Header {
	name := rel
	if name == "" {
		name = "."
	}
	p.nextIno++
	mtime := st.Mtim.Sec
	if mtime < 0 || mtime > cpio.MaxSize {
		p.warn("/%s: mtime %d does not fit in cpio; stored as 0", rel, mtime)
		mtime = 0
	}
	return &cpio.Header{
		Name: name, Mode: st.Mode, Uid: int(st.Uid), Gid: int(st.Gid), Nlink: 1,
		Mtime: mtime, Ino: p.nextIno, Format: p.o.Format,
		Rdevmajor: unix.Major(st.Rdev), Rdevminor: unix.Minor(st.Rdev),
	}
}

func (p *packer) entry(rel, path string, st *unix.Stat_t) error {
	h := p.header(rel, st)
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFSOCK:
		p.warn("%s: socket skipped", path)
		p.st.Skipped++
		return nil
	case unix.S_IFDIR:
		h.Nlink = 2
		p.st.Dirs++
		if rel == "" {
			p.rootHdr = h
		}
		if err := p.collectXattrs(rel, path); err != nil {
			return err
		}
		return p.writeHeader(h)
	case unix.S_IFLNK:
		target, err := os.Readlink(path)
		if err != nil {
			return err
		}
		h.Linkname = target
		p.st.Symlinks++
		return p.writeHeader(h)
	case unix.S_IFCHR, unix.S_IFBLK, unix.S_IFIFO:
		p.st.Devices++
		return p.writeHeader(h)
	case unix.S_IFREG:
	default:
		p.warn("%s: unknown file type %o skipped", path, st.Mode&unix.S_IFMT)
		p.st.Skipped++
		return nil
	}
	if p.o.Filter.IsEmptied("/" + rel) {
		p.st.Files++
		return p.writeHeader(h)
	}
	if st.Size > cpio.MaxSize {
		return fmt.Errorf("%s is %d bytes: cpio (newc/crc) cannot store files of 4 GiB or more; leave it out with --exclude /%s: %w",
			path, st.Size, rel, cpio.ErrTooLarge)
	}
	if err := p.collectXattrs(rel, path); err != nil {
		return err
	}
	if st.Nlink > 1 {
		key := linkKey{st.Dev, st.Ino}
		g := p.links[key]
		if g == nil {
			p.order++
			g = &pendingLink{st: *st, ino: h.Ino, want: int(st.Nlink), order: p.order}
			p.links[key] = g
		}
		g.names = append(g.names, h.Name)
		g.paths = append(g.paths, path)
		if len(g.names) == g.want {
			delete(p.links, key)
			return p.writeLinks(g)
		}
		return nil
	}
	p.st.Files++
	return p.writeFile(h, path, st.Size)
}

// writeLinks writes a hardlink group: every name but the last without
// data, the last with it, as GNU cpio does.
func (p *packer) writeLinks(g *pendingLink) error {
	p.st.Files++
	p.st.Hardlinks += len(g.names) - 1
	for i, name := range g.names {
		h := &cpio.Header{Name: name, Mode: g.st.Mode, Uid: int(g.st.Uid), Gid: int(g.st.Gid),
			Nlink: len(g.names), Mtime: g.st.Mtim.Sec, Ino: g.ino, Format: p.o.Format}
		if i < len(g.names)-1 {
			if err := p.writeHeader(h); err != nil {
				return err
			}
			continue
		}
		return p.writeFile(h, g.paths[i], g.st.Size)
	}
	return nil
}

// flushLinks writes groups whose other links are outside the tree.
func (p *packer) flushLinks() error {
	var gs []*pendingLink
	for _, g := range p.links {
		gs = append(gs, g)
	}
	sort.Slice(gs, func(i, j int) bool { return gs[i].order < gs[j].order })
	for _, g := range gs {
		if err := p.writeLinks(g); err != nil {
			return err
		}
	}
	p.links = map[linkKey]*pendingLink{}
	return nil
}

func (p *packer) writeHeader(h *cpio.Header) error {
	p.st.Entries++
	addProgress(p.o.Progress, 0, 1)
	return p.w.WriteHeader(h)
}

// writeFile writes a regular file's header and data. A file that shrank
// while packing is padded with zeros, one that grew is cut, both with a
// warning.
func (p *packer) writeFile(h *cpio.Header, path string, size int64) error {
	f, err := os.OpenFile(path, os.O_RDONLY|unix.O_NOFOLLOW|unix.O_NOATIME, 0)
	if err != nil {
		f, err = os.OpenFile(path, os.O_RDONLY|unix.O_NOFOLLOW, 0)
	}
	if err != nil {
		return err
	}
	defer f.Close()
	h.Size = size
	if p.o.Format == cpio.CRC {
		sum, err := p.sum(f, path, size)
		if err != nil {
			return err
		}
		h.Checksum = sum
	}
	if err := p.writeHeader(h); err != nil {
		return err
	}
	left := size
	for left > 0 {
		n, err := f.Read(p.buf[:min(left, int64(len(p.buf)))])
		if n > 0 {
			if _, werr := p.w.Write(p.buf[:n]); werr != nil {
				return fmt.Errorf("writing %s: %w", path, werr)
			}
			left -= int64(n)
			p.st.Bytes += int64(n)
			addProgress(p.o.Progress, int64(n), 0)
		}
		if err == io.EOF {
			if p.o.Format == cpio.CRC {
				return fmt.Errorf("%s shrank while packing (%d bytes missing)", path, left)
			}
			p.warn("%s shrank by %d bytes while packing; padded with zeros", path, left)
			for left > 0 {
				z := min(left, int64(len(zeroBuf)))
				if _, err := p.w.Write(zeroBuf[:z]); err != nil {
					return err
				}
				left -= z
			}
			break
		}
		if err != nil {
			return fmt.Errorf("reading %s: %w", path, err)
		}
	}
	if n, _ := f.Read(p.buf[:1]); n > 0 {
		p.warn("%s grew while packing; stored its first %d bytes", path, size)
	}
	return nil
}

var zeroBuf [64 << 10]byte

// sum computes the crc format's checksum of the file's first size bytes
// and rewinds it.
func (p *packer) sum(f *os.File, path string, size int64) (uint32, error) {
	var s uint32
	left := size
	for left > 0 {
		n, err := f.Read(p.buf[:min(left, int64(len(p.buf)))])
		s = cpio.Sum(s, p.buf[:n])
		left -= int64(n)
		if err == io.EOF && left > 0 {
			return 0, fmt.Errorf("%s shrank while packing (%d bytes missing)", path, left)
		}
		if err != nil && err != io.EOF {
			return 0, fmt.Errorf("reading %s: %w", path, err)
		}
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return 0, fmt.Errorf("%s: %w", path, err)
	}
	return s, nil
}

// Measure adds up the bytes and entries that Pack would store, for a
// progress meter's ETA.
func Measure(root string, f *Filter) (bytes int64, entries int) {
	var rootSt unix.Stat_t
	if unix.Stat(root, &rootSt) != nil {
		return 0, 0
	}
	var walk func(rel, dir string)
	walk = func(rel, dir string) {
		d, err := os.Open(dir)
		if err != nil {
			return
		}
		names, _ := d.Readdirnames(-1)
		d.Close()
		for _, name := range names {
			crel := rel + "/" + name
			var st unix.Stat_t
			if unix.Lstat(joinPath(dir, name), &st) != nil {
				continue
			}
			isDir := st.Mode&unix.S_IFMT == unix.S_IFDIR
			if f != nil && f.Excluded(crel, isDir) {
				continue
			}
			entries++
			if st.Mode&unix.S_IFMT == unix.S_IFREG && (st.Nlink == 1) {
				bytes += st.Size
			}
			if isDir && st.Dev == rootSt.Dev {
				walk(crel, joinPath(dir, name))
			}
		}
	}
	walk("", root)
	return bytes, entries + 1
}

// joinPath joins without doubling a slash ("/" + "etc" is "/etc").
func joinPath(dir, name string) string {
	if len(dir) > 0 && dir[len(dir)-1] == '/' {
		return dir + name
	}
	return dir + "/" + name
}
