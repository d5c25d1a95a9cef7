package nodesync

import (
	"fmt"
	"strings"

	"golang.org/x/sys/unix"
)

// op is one entry of node.files sync must change.
type op struct {
	e       *Entry
	kind    Kind
	what    string
	content bool         // a regular file: a new file is written
	local   *unix.Stat_t // what the node has there; nil: nothing
	xattrs  []Xattr      // the node's xattrs of a regular file or directory
}

func (o *op) change() Change {
	c := Change{Path: o.e.Path, Kind: o.kind, Type: o.e.Type, What: o.what}
	if o.content || o.e.Type == Hardlink && o.kind != Metadata {
		c.Size = o.e.Size
	}
	return c
}

type inode struct{ dev, ino uint64 }

// plan is what sync will do.
type plan struct {
	ops      []*op
	removals []string       // extras, parents before children
	sources  map[Sum]string // local files that hold a content already
	leftDirs map[string]string
	left     int
	hashed   int64
}

// planner compares the node with node.files.
type planner struct {
	t      *tree
	files  *Files
	s      *scanned
	g      *guard
	o      *Options
	p      *plan
	inodes map[inode][]string // local regular files with more than one link
	leader map[string]*op     // content ops of regular files, by path
	buf    []byte
}

func (t *tree) plan(f *Files, s *scanned, g *guard, o *Options) (*plan, error) {
	pl := &planner{t: t, files: f, s: s, g: g, o: o, inodes: map[inode][]string{}, leader: map[string]*op{},
		p: &plan{sources: map[Sum]string{}, leftDirs: map[string]string{}}, buf: make([]byte, 256<<10)}
	for _, path := range s.paths {
		if st := s.local[path]; st.Mode&unix.S_IFMT == unix.S_IFREG && st.Nlink > 1 {
			k := inode{st.Dev, st.Ino}
			pl.inodes[k] = append(pl.inodes[k], path)
		}
	}
	in := make(map[string]bool, len(f.Entries))
	for i := range f.Entries {
		e := &f.Entries[i]
		in[e.Path] = true
		if why := pl.leftAlone(e); why != free {
			pl.p.left++
			if e.Type == Dir {
				pl.p.leftDirs[e.Path] = why
			}
			continue
		}
		t.trim()
		o, err := pl.compare(f, e)
		if err != nil {
			return nil, err
		}
		if o != nil {
			pl.p.ops = append(pl.p.ops, o)
		}
	}
	for _, path := range s.paths {
		if !in[path] {
			pl.p.removals = append(pl.p.removals, path)
		}
	}
	if err := pl.moved(); err != nil {
		return nil, err
	}
	return pl.p, nil
}

// moved finds contents the node has under a name the image no longer
// lists (a file moved or renamed): an extra regular file of the size of a
// content sync would otherwise fetch is hashed, and is a source when it
// matches. Removals come after contents, so it is still there.
func (pl *planner) moved() error {
	want := map[int64]bool{}
	for _, o := range pl.p.ops {
		if o.content && o.e.Size > 0 {
			if _, ok := pl.p.sources[o.e.Sum]; !ok {
				want[o.e.Size] = true
			}
		}
	}
	if len(want) == 0 {
		return nil
	}
	needed := map[Sum]bool{}
	for _, o := range pl.p.ops {
		if o.content {
			needed[o.e.Sum] = true
		}
	}
	for _, path := range pl.p.removals {
		st := pl.s.local[path]
		if st.Mode&unix.S_IFMT != unix.S_IFREG || !want[st.Size] {
			continue
		}
		pl.t.trim()
		sum, n, err := pl.t.hash(path, pl.buf)
		pl.p.hashed += n
		if err != nil {
			return err
		}
		if _, ok := pl.p.sources[sum]; needed[sum] && !ok {
			pl.p.sources[sum] = path
		}
	}
	return nil
}

// leftAlone says why sync does not touch e, or free.
func (pl *planner) leftAlone(e *Entry) string {
	if e.Path == "/" {
		return free
	}
	if why := pl.p.leftDirs[parentOf(e.Path)]; why != free {
		return why
	}
	if why, ok := pl.s.left[e.Path]; ok {
		return why
	}
	if l := pl.s.local[e.Path]; l != nil && (l.Mode&unix.S_IFMT == unix.S_IFDIR) == (e.Type == Dir) {
		return free // the walk asked the guard already
	}
	return pl.g.check(e.Path, e.Type == Dir)
}

func (pl *planner) compare(f *Files, e *Entry) (*op, error) {
	if e.Type == Hardlink {
		if le, ok := pl.files.Lookup(e.Target); !ok || pl.leftAlone(le) != free {
			return nil, nil // a name of a file sync leaves alone
		}
	}
	l := pl.s.local[e.Path]
	o := &op{e: e, local: l}
	if l == nil {
		o.kind, o.what = Added, "new"
		o.content = e.Type == Regular
		if o.content {
			pl.leader[e.Path] = o
		}
		return o, nil
	}
	if lt := localType(l.Mode); lt != e.Type && !(e.Type == Hardlink && lt == Regular) {
		o.kind, o.what = Changed, "was a "+lt.String()
		o.content = e.Type == Regular
		if o.content {
			pl.leader[e.Path] = o
		}
		return o, nil
	}
	o.xattrs = pl.s.xattrs[e.Path]
	meta := metaDiff(e, l, o.xattrs)
	switch e.Type {
	case Regular:
		return pl.regular(o, meta)
	case Hardlink:
		return pl.hardlink(o)
	case Symlink:
		target, err := readlinkAt(pl.t, e.Path)
		if err != nil {
			return nil, err
		}
		if target != e.Target {
			o.kind, o.what = Changed, fmt.Sprintf("link to %q, image has %q", target, e.Target)
			return o, nil
		}
	case Char, Block:
		if unix.Major(l.Rdev) != e.Major || unix.Minor(l.Rdev) != e.Minor {
			o.kind, o.what = Changed, fmt.Sprintf("device %d:%d, image has %d:%d", unix.Major(l.Rdev), unix.Minor(l.Rdev), e.Major, e.Minor)
			return o, nil
		}
	}
	if meta == "" {
		return nil, nil
	}
	o.kind, o.what = Metadata, meta
	return o, nil
}

// regular decides between nothing, metadata and new content: size first,
// then the content's hash where the size is the same but the time, mode
// or owner differ (or always, with Checksum).
func (pl *planner) regular(o *op, meta string) (*op, error) {
	e, l := o.e, o.local
	switch {
	case l.Size != e.Size:
		o.what = fmt.Sprintf("size %d, image has %d", l.Size, e.Size)
		o.content = true
	case e.Size > 0 && (pl.o.Checksum || meta != ""):
		sum, n, err := pl.t.hash(e.Path, pl.buf)
		pl.p.hashed += n
		if err != nil {
			return nil, err
		}
		if sum != e.Sum {
			o.what, o.content = "content", true
		}
	}
	if !o.content && e.Size > 0 {
		if _, ok := pl.p.sources[e.Sum]; !ok {
			pl.p.sources[e.Sum] = e.Path // read before it is replaced, if it is
		}
	}
	if !o.content {
		if other := pl.foreignLink(e, l); other != "" {
			o.what, o.content = "hard link of "+other+", the image has separate files", true
		}
	}
	if o.content {
		o.kind = Changed
		pl.leader[e.Path] = o
		return o, nil
	}
	if meta == "" {
		return nil, nil
	}
	o.kind, o.what = Metadata, meta
	return o, nil
}

// foreignLink returns a path of the image that shares e's local inode
// without being in e's hard link group.
func (pl *planner) foreignLink(e *Entry, l *unix.Stat_t) string {
	if l.Nlink < 2 {
		return ""
	}
	group := e.Path
	if e.Type == Hardlink {
		group = e.Target
	}
	for _, p := range pl.inodes[inode{l.Dev, l.Ino}] {
		if p == e.Path || p == group {
			continue
		}
		// Another name of the same group is fine; so is an extra, which
		// sync removes.
		pe, ok := pl.files.Lookup(p)
		if ok && !(pe.Type == Hardlink && pe.Target == group) {
			return p
		}
	}
	return ""
}

// hardlink: the member must be the leader's inode.
func (pl *planner) hardlink(o *op) (*op, error) {
	e, l := o.e, o.local
	if lo := pl.leader[e.Target]; lo != nil {
		o.kind, o.what = Changed, "hard link of "+e.Target+", which changes"
		return o, nil
	}
	ll := pl.s.local[e.Target]
	if ll == nil || ll.Dev != l.Dev || ll.Ino != l.Ino {
		o.kind, o.what = Changed, "not a hard link of "+e.Target
		return o, nil
	}
	if other := pl.foreignLink(e, l); other != "" {
		o.kind, o.what = Changed, "hard link of "+other+" too"
		return o, nil
	}
	return nil, nil // metadata is the leader's
}

// metaDiff names what differs among mode, owner, time and xattrs.
func metaDiff(e *Entry, l *unix.Stat_t, xattrs []Xattr) string {
	var d []string
	if e.Type != Symlink && e.Type != Hardlink && l.Mode&0o7777 != e.Mode {
		d = append(d, fmt.Sprintf("mode %04o, image has %04o", l.Mode&0o7777, e.Mode))
	}
	if e.Type == Hardlink {
		return ""
	}
	if int(l.Uid) != e.Uid || int(l.Gid) != e.Gid {
		d = append(d, fmt.Sprintf("owner %d:%d, image has %d:%d", l.Uid, l.Gid, e.Uid, e.Gid))
	}
	if l.Mtim.Sec != e.Mtime || l.Mtim.Nsec != 0 {
		d = append(d, "time")
	}
	if (e.Type == Regular || e.Type == Dir) && !sameXattrs(xattrs, e.Xattrs) {
		d = append(d, "xattrs")
	}
	return strings.Join(d, ", ")
}

func readlinkAt(t *tree, path string) (string, error) {
	pfd, base, err := t.parent(path)
	if err != nil {
		return "", err
	}
	buf := make([]byte, 256)
	for {
		n, err := unix.Readlinkat(pfd, base, buf)
		if err != nil {
			return "", fmt.Errorf("%s: %w", path, err)
		}
		if n < len(buf) {
			return string(buf[:n]), nil
		}
		buf = make([]byte, 2*len(buf))
	}
}
