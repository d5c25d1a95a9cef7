package nodesync

import (
	"errors"
	"fmt"
	"io"
	"runtime"
	"sort"
	"strings"

	"github.com/clonecd/clonecd/cpio"
	"github.com/clonecd/clonecd/image"
)

// BuildOptions tune Build.
type BuildOptions struct {
	// Store receives every file's content; nil: the contents are only
	// hashed.
	Store *Store
	// Warn receives warnings (parent directories the image lacks, xattrs
	// on file types that cannot hold them); nil discards them.
	Warn func(string)
	// Progress counts bytes of file data and entries; may be nil.
	Progress image.Counter
}

// BuildStats counts what Build read and stored.
type BuildStats struct {
	Entries  int   // entries of node.files
	Files    int   // regular files (inodes)
	Bytes    int64 // their content
	Blobs    int   // distinct non-empty contents
	NewBlobs int   // blobs the store did not hold yet
	NewBytes int64 // content bytes of the new blobs
	Stored   int64 // bytes written to the store (compressed)
	// FilesSum and FilesSize are node.files' sha256 and size (set by
	// Publish): what the version's MANIFEST lists.
	FilesSum  Sum
	FilesSize int64
}

type linkKey struct {
	dev uint64
	ino uint32
}

type linkGroup struct {
	names   []string
	e       Entry
	hasData bool
}

type builder struct {
	o      BuildOptions
	w      *blobWriter
	f      *Files
	seen   map[string]bool
	links  map[linkKey]*linkGroup
	xattrs []xattrLine
	blobs  map[Sum]bool
	st     BuildStats
}

// Build reads an image (gzip'd or plain cpio, as image.Decompress reads
// it) and returns its node.files, putting each file's content into
// o.Store on the way. Hard links become one regular file (the group's
// first path) and hard link entries naming it; clonecd's xattr records
// are attached to their files.
func Build(r io.Reader, o BuildOptions) (*Files, *BuildStats, error) {
	rc, err := image.Decompress(r)
	if err != nil {
		return nil, nil, err
	}
	defer rc.Close()
	b := &builder{o: o, f: &Files{}, seen: map[string]bool{}, links: map[linkKey]*linkGroup{}, blobs: map[Sum]bool{}}
	if o.Store != nil {
		b.w = newBlobWriter(o.Store, runtime.GOMAXPROCS(0))
	}
	err = b.read(cpio.NewReader(rc))
	if err == nil {
		err = b.finish()
	}
	if b.w != nil {
		if err != nil {
			b.w.abort()
			return nil, nil, err
		}
		if err := b.w.commit(); err != nil {
			return nil, nil, err
		}
		b.st.NewBlobs, b.st.NewBytes, b.st.Stored = b.w.newBlobs, b.w.newBytes, b.w.stored
	}
	if err != nil {
		return nil, nil, err
	}
	b.st.Entries = len(b.f.Entries)
	b.st.Blobs = len(b.blobs)
	return b.f, &b.st, nil
}

func (b *builder) warn(format string, a ...any) {
	if b.o.Warn != nil {
		b.o.Warn(fmt.Sprintf(format, a...))
	}
}

func (b *builder) read(cr *cpio.Reader) error {
	var buf []byte
	for {
		h, err := cr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		if isXattrRecord(h) {
			recs, err := parseXattrRecord(h)
			if err != nil {
				return err
			}
			b.xattrs = append(b.xattrs, recs...)
			continue
		}
		rel, err := image.CleanName(h.Name)
		if err != nil {
			return fmt.Errorf("entry %q at offset %d: %w", h.Name, h.Offset, err)
		}
		path := "/" + rel
		if b.seen[path] {
			return fmt.Errorf("entry %q at offset %d: %s appears twice in the image", h.Name, h.Offset, path)
		}
		b.seen[path] = true
		e := Entry{Path: path, Mode: h.Mode & 0o7777, Uid: h.Uid, Gid: h.Gid, Mtime: h.Mtime}
		switch h.Type() {
		case cpio.TypeDir:
			e.Type = Dir
		case cpio.TypeSymlink:
			e.Type, e.Mode, e.Target = Symlink, 0o777, h.Linkname
		case cpio.TypeChar, cpio.TypeBlock:
			e.Type, e.Major, e.Minor = Char, h.Rdevmajor, h.Rdevminor
			if h.Type() == cpio.TypeBlock {
				e.Type = Block
			}
		case cpio.TypeFifo:
			e.Type = Fifo
		case cpio.TypeSocket:
			e.Type = Socket
		case cpio.TypeReg:
			e.Type = Regular
			if buf, err = b.content(&e, h, cr, buf); err != nil {
				return fmt.Errorf("entry %q at offset %d: %w", h.Name, h.Offset, err)
			}
			if h.Nlink > 1 {
				b.link(&e, h)
				continue
			}
		default:
			return fmt.Errorf("entry %q at offset %d: unknown file type %06o", h.Name, h.Offset, h.Mode)
		}
		b.f.Entries = append(b.f.Entries, e)
		if b.o.Progress != nil {
			b.o.Progress.Add(0, 1)
		}
	}
}

// content hashes (and stores) a regular file's data. buf is reused for
// contents the store already holds.
func (b *builder) content(e *Entry, h *cpio.Header, cr *cpio.Reader, buf []byte) ([]byte, error) {
	e.Size, e.Sum = h.Size, EmptySum
	if h.Size == 0 {
		return buf, nil
	}
	if b.o.Progress != nil {
		b.o.Progress.Add(h.Size, 0)
	}
	b.st.Bytes += h.Size
	if h.Size > maxMem {
		var err error
		if b.w != nil {
			e.Sum, err = b.w.addStream(cr, h.Size)
		} else {
			hs := newHasher()
			_, err = io.Copy(hs, cr)
			e.Sum = hs.sum()
		}
		b.blobs[e.Sum] = true
		return buf, err
	}
	if cap(buf) < int(h.Size) {
		buf = make([]byte, h.Size, max(h.Size, 64<<10))
	}
	buf = buf[:h.Size]
	if _, err := io.ReadFull(cr, buf); err != nil {
		return buf, err
	}
	e.Sum = sha256Sum(buf)
	b.blobs[e.Sum] = true
	if b.w == nil || !b.w.claim(e.Sum) {
		return buf, nil
	}
	b.w.jobs <- buf // the worker owns buf now
	return nil, nil
}

// link records a name of a hard-linked file; the data comes with one of
// the names (GNU cpio: the last; u-root: the first).
func (b *builder) link(e *Entry, h *cpio.Header) {
	key := linkKey{uint64(h.Devmajor)<<32 | uint64(h.Devminor), h.Ino}
	g := b.links[key]
	if g == nil {
		g = &linkGroup{e: *e}
		b.links[key] = g
	}
	g.names = append(g.names, e.Path)
	if h.Size > 0 || !g.hasData {
		g.e = *e
		g.hasData = h.Size > 0
	}
}

// finish turns hard link groups into entries, sorts, adds missing parent
// directories and attaches xattrs.
func (b *builder) finish() error {
	for _, g := range b.links {
		sort.Strings(g.names)
		for i, name := range g.names {
			e := g.e
			e.Path = name
			if i > 0 {
				e.Type, e.Target = Hardlink, g.names[0]
			}
			b.f.Entries = append(b.f.Entries, e)
		}
	}
	ents := b.f.Entries
	sort.Slice(ents, func(i, j int) bool { return ents[i].Path < ents[j].Path })
	byPath := make(map[string]int, len(ents))
	var added []Entry
	for i := range ents {
		e := &ents[i]
		byPath[e.Path] = i
		if e.Type == Regular {
			b.st.Files++
		}
		if e.Path == "/" {
			if e.Type != Dir {
				return errors.New("the image's root . is not a directory")
			}
			continue
		}
		for p := parentOf(e.Path); ; p = parentOf(p) {
			if i, ok := byPath[p]; ok {
				if ents[i].Type != Dir {
					return fmt.Errorf("%s: %s is a %s in the image, not a directory", e.Path, p, ents[i].Type)
				}
				break
			}
			b.warn("%s: the image lacks its directory %s: listed as 0755 root", e.Path, p)
			byPath[p] = -1
			added = append(added, Entry{Path: p, Type: Dir, Mode: 0o755})
			if p == "/" {
				break
			}
		}
	}
	if len(added) > 0 {
		ents = append(ents, added...)
		sort.Slice(ents, func(i, j int) bool { return ents[i].Path < ents[j].Path })
		b.f.Entries = ents
		for i := range ents {
			byPath[ents[i].Path] = i
		}
	}
	return b.attachXattrs(byPath)
}

func (b *builder) attachXattrs(byPath map[string]int) error {
	for _, x := range b.xattrs {
		rel, err := image.CleanName(x.rel)
		if err != nil {
			return fmt.Errorf("xattr record for %q: %w", x.rel, err)
		}
		i, ok := byPath["/"+rel]
		if !ok || !b.seen["/"+rel] {
			return fmt.Errorf("xattr record for /%s, which the image does not hold", rel)
		}
		e := &b.f.Entries[i]
		if e.Type == Hardlink {
			e = &b.f.Entries[byPath[e.Target]]
		}
		if e.Type != Regular && e.Type != Dir {
			b.warn("%s: xattr %s on a %s left out", e.Path, x.x.Name, e.Type)
			continue
		}
		e.Xattrs = append(e.Xattrs, x.x)
	}
	for i := range b.f.Entries {
		xs := b.f.Entries[i].Xattrs
		sort.SliceStable(xs, func(i, j int) bool { return xs[i].Name < xs[j].Name })
		out := xs[:0]
		for j, x := range xs {
			if j > 0 && x.Name == xs[j-1].Name {
				continue // a hard link group lists its xattrs once per name
			}
			out = append(out, x)
		}
		b.f.Entries[i].Xattrs = out
	}
	return nil
}

// parentOf("/a/b") = "/a"; parentOf("/a") = "/".
func parentOf(path string) string {
	i := strings.LastIndexByte(path, '/')
	if i <= 0 {
		return "/"
	}
	return path[:i]
}
