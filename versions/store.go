package versions

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"syscall"
	"time"
)

// Files of one version directory (DIR/versions/V/), the same names as on
// clone media.
const (
	ImageFile  = "node.cpio.gz"
	SumFile    = "node.cpio.gz.sha256"
	LayoutFile = "node.sfdisk"
	metaFile   = "meta.json"
)

// aliases are the flat Medusa-style names in the store's top directory;
// each is a symlink to current/NAME.
var aliases = []string{ImageFile, SumFile, LayoutFile, FileName}

// DefaultDir is the store directory when none is given: $CLONECD_STORE or
// /root/clone_image (the Medusa master's path).
func DefaultDir() string {
	if d := os.Getenv("CLONECD_STORE"); d != "" {
		return d
	}
	return "/root/clone_image"
}

// Entry is one published version.
type Entry struct {
	Version   string    `json:"version"`
	Date      time.Time `json:"date"`
	Size      int64     `json:"size"`
	SHA256    string    `json:"sha256"`
	Note      string    `json:"note,omitempty"`
	Bad       bool      `json:"bad,omitempty"`
	BadReason string    `json:"bad_reason,omitempty"`
	// ImageMTime is node.cpio.gz's modification time when published.
	ImageMTime time.Time `json:"image_mtime,omitempty"`
	// Changed says node.cpio.gz's size or mtime differ from when it was
	// published: someone wrote to it (e.g. cp onto the flat alias
	// DIR/node.cpio.gz, the old Medusa habit). Its sha256 file no longer
	// matches; publish the new image as a new version instead.
	Changed bool `json:"-"`
	Current bool `json:"-"`
	// Dir holds node.cpio.gz, node.cpio.gz.sha256, node.sfdisk and
	// CLONE_CD_VERSION.
	Dir string `json:"-"`
	// Nodes names the nodes whose last reported state names this version
	// (being cloned with it, or cloned with it last); NodeStates has
	// their states.
	Nodes      []string    `json:"-"`
	NodeStates []NodeState `json:"-"`
}

// Image returns the path of the version's node.cpio.gz.
func (e *Entry) Image() string { return filepath.Join(e.Dir, ImageFile) }

// Layout returns the path of the version's node.sfdisk.
func (e *Entry) Layout() string { return filepath.Join(e.Dir, LayoutFile) }

// Store is an image store directory:
//
//	DIR/versions/V/{node.cpio.gz,node.cpio.gz.sha256,node.sfdisk,CLONE_CD_VERSION,meta.json}
//	DIR/current -> versions/V          (replaced atomically by rename)
//	DIR/node.cpio.gz -> current/node.cpio.gz, and likewise the other files
//	DIR/history                         (one line per promotion or mark)
//	DIR/nodes/NODE/state.json           (written by the server, see NodeState)
//	DIR/.lock                           (flock for every change)
type Store struct {
	Dir string
	now func() time.Time
}

// Open opens (creating if needed) the store in dir. A Medusa-style
// directory holding a plain node.cpio.gz (and CLONE_CD_VERSION) is adopted:
// the files move into versions/V and become the current version.
func Open(dir string) (*Store, error) {
	if dir == "" {
		dir = DefaultDir()
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	s := &Store{Dir: abs, now: time.Now}
	if err := os.MkdirAll(filepath.Join(abs, "versions"), 0o755); err != nil {
		// A read-only store can still be listed.
		if st, serr := os.Stat(filepath.Join(abs, "versions")); serr != nil || !st.IsDir() {
			return nil, fmt.Errorf("image store: %w", err)
		}
	}
	st, err := os.Lstat(filepath.Join(abs, ImageFile))
	if err == nil && st.Mode().IsRegular() {
		if err := s.locked(s.adopt); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// lock takes the store's exclusive lock; the returned function releases it.
func (s *Store) lock() (func(), error) {
	f, err := os.OpenFile(filepath.Join(s.Dir, ".lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("image store lock: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("image store lock %s: %w", f.Name(), err)
	}
	return func() { f.Close() }, nil
}

func (s *Store) locked(fn func() error) error {
	unlock, err := s.lock()
	if err != nil {
		return err
	}
	defer unlock()
	return fn()
}

// adopt moves a flat Medusa-style node.cpio.gz into versions/V.
func (s *Store) adopt() error {
	img := filepath.Join(s.Dir, ImageFile)
	st, err := os.Lstat(img)
	if err != nil || !st.Mode().IsRegular() {
		return nil // someone else adopted it meanwhile
	}
	v := Version{1, 0}
	vf := filepath.Join(s.Dir, FileName)
	if vst, err := os.Lstat(vf); err == nil && vst.Mode().IsRegular() {
		if v, err = ReadFile(vf); err != nil {
			return err
		}
	}
	if _, err := os.Stat(s.versionDir(v.String())); err == nil {
		return fmt.Errorf("image store %s: plain %s and %s both exist; move one away", s.Dir, img, s.versionDir(v.String()))
	}
	tmp, err := os.MkdirTemp(filepath.Join(s.Dir, "versions"), ".adopt-")
	if err != nil {
		return err
	}
	if err := os.Chmod(tmp, 0o755); err != nil {
		return err
	}
	sum, size, err := hashFile(img)
	if err != nil {
		return err
	}
	if err := os.Link(img, filepath.Join(tmp, ImageFile)); err != nil {
		return fmt.Errorf("adopting %s: %w", img, err)
	}
	lay := filepath.Join(s.Dir, LayoutFile)
	if lst, err := os.Lstat(lay); err == nil && lst.Mode().IsRegular() {
		if err := os.Link(lay, filepath.Join(tmp, LayoutFile)); err != nil {
			return fmt.Errorf("adopting %s: %w", lay, err)
		}
	}
	e := &Entry{Version: v.String(), Date: st.ModTime().UTC(), Size: size, SHA256: sum,
		Note: "adopted from " + img, ImageMTime: st.ModTime().UTC()}
	if err := s.finishDir(tmp, e); err != nil {
		return err
	}
	if err := os.Rename(tmp, s.versionDir(e.Version)); err != nil {
		return err
	}
	// The data now lives under versions/V (hard links); the flat names
	// become aliases.
	for _, name := range aliases {
		p := filepath.Join(s.Dir, name)
		if st, err := os.Lstat(p); err == nil && st.Mode().IsRegular() {
			if err := os.Remove(p); err != nil {
				return err
			}
		}
	}
	return s.setCurrent(e.Version, "adopt")
}

func (s *Store) versionDir(v string) string { return filepath.Join(s.Dir, "versions", v) }

// finishDir writes the sha256, CLONE_CD_VERSION and meta files of e into dir.
func (s *Store) finishDir(dir string, e *Entry) error {
	if err := writeAtomic(filepath.Join(dir, SumFile), []byte(e.SHA256+"  "+ImageFile+"\n"), 0o644); err != nil {
		return err
	}
	if err := writeAtomic(filepath.Join(dir, FileName), []byte(e.Version+"\n"), 0o644); err != nil {
		return err
	}
	return writeMeta(dir, e)
}

func writeMeta(dir string, e *Entry) error {
	b, err := json.MarshalIndent(e, "", "  ")
	if err != nil {
		return err
	}
	return writeAtomic(filepath.Join(dir, metaFile), append(b, '\n'), 0o644)
}

func hashFile(path string) (string, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", 0, err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return "", 0, fmt.Errorf("reading %s: %w", path, err)
	}
	return hex.EncodeToString(h.Sum(nil)), n, nil
}

// PublishOptions tunes Publish.
type PublishOptions struct {
	// Version to publish as; empty means the next one after the highest
	// published version (1.0 in an empty store).
	Version string
	Note    string
	// Layout is the layout file; empty means the current version's.
	Layout string
	// NoPromote leaves the current version as it is (for canaries: clone
	// chosen nodes with the new version first). The first version of an
	// empty store always becomes current.
	NoPromote bool
	// Date overrides the publication date (tests, imports).
	Date time.Time
	// Files are optional media files published with the version, by
	// name: "nodes" (identity table), "ks.cfg", "clonecd.conf", and the
	// network boot's "vmlinuz" and "initrd.img". Value is the source path.
	Files map[string]string
}

// ExtraFiles are the optional media files a version may carry.
var ExtraFiles = []string{"nodes", "ks.cfg", "clonecd.conf", "vmlinuz", "initrd.img"}

// Publish adds image (a gzip'd cpio, e.g. from `clonecd pack`) with its
// layout file as a new version and makes it current. version "" means the
// next one; layout "" reuses the current version's layout.
func (s *Store) Publish(image, layout, version, note string) (*Entry, error) {
	return s.PublishWith(image, PublishOptions{Version: version, Note: note, Layout: layout})
}

// PublishWith is Publish with options. The image is copied (hashing it on
// the way) into a temporary directory of the store, then renamed into
// place under the store's lock: a version directory is complete or absent.
// If IMAGE.sha256 exists beside the image, the copy must match it.
func (s *Store) PublishWith(image string, o PublishOptions) (*Entry, error) {
	if o.Version != "" {
		v, err := ParseVersion(o.Version)
		if err != nil {
			return nil, err
		}
		o.Version = v.String()
	}
	src, err := os.Open(image)
	if err != nil {
		return nil, fmt.Errorf("publish: %w", err)
	}
	defer src.Close()
	if st, err := src.Stat(); err != nil {
		return nil, err
	} else if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("publish: %s is not a regular file", image)
	}
	br := bufio.NewReader(src)
	magic, _ := br.Peek(6)
	if !bytes.HasPrefix(magic, []byte{0x1f, 0x8b}) && !bytes.HasPrefix(magic, []byte("07070")) {
		return nil, fmt.Errorf("publish: %s is not a gzip'd cpio archive (starts with %q)", image, magic)
	}
	want := ""
	if b, err := os.ReadFile(image + ".sha256"); err == nil {
		if f := strings.Fields(string(b)); len(f) > 0 {
			want = strings.ToLower(f[0])
		}
	}

	tmp, err := os.MkdirTemp(filepath.Join(s.Dir, "versions"), ".publish-")
	if err != nil {
		return nil, fmt.Errorf("publish: %w", err)
	}
	done := false
	defer func() {
		if !done {
			os.RemoveAll(tmp)
		}
	}()
	if err := os.Chmod(tmp, 0o755); err != nil {
		return nil, err
	}
	dst, err := os.OpenFile(filepath.Join(tmp, ImageFile), os.O_CREATE|os.O_WRONLY|os.O_EXCL, 0o644)
	if err != nil {
		return nil, fmt.Errorf("publish: %w", err)
	}
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(dst, h), br)
	if err == nil {
		err = dst.Sync()
	}
	if cerr := dst.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, fmt.Errorf("publish: copying %s: %w", image, err)
	}
	sum := hex.EncodeToString(h.Sum(nil))
	var mtime time.Time
	if st, err := os.Stat(filepath.Join(tmp, ImageFile)); err == nil {
		mtime = st.ModTime().UTC()
	}
	if want != "" && want != sum {
		return nil, fmt.Errorf("publish: %s has sha256 %s but %s.sha256 says %s", image, sum, image, want)
	}
	date := o.Date
	if date.IsZero() {
		date = s.now()
	}
	e := &Entry{Date: date.UTC().Truncate(time.Second), Size: n, SHA256: sum, Note: o.Note, ImageMTime: mtime}

	unlock, err := s.lock()
	if err != nil {
		return nil, err
	}
	defer unlock()
	list, err := s.list()
	if err != nil {
		return nil, err
	}
	cur := current(list)
	layout := o.Layout
	if layout == "" {
		if cur == nil {
			return nil, fmt.Errorf("publish: no layout given and no current version to take one from (use --layout node.sfdisk)")
		}
		layout = cur.Layout()
	}
	if err := copyLayout(layout, filepath.Join(tmp, LayoutFile)); err != nil {
		return nil, err
	}
	for name, from := range o.Files {
		if !slices.Contains(ExtraFiles, name) {
			return nil, fmt.Errorf("publish: %s: a version carries only %s besides the image and layout", name, strings.Join(ExtraFiles, ", "))
		}
		b, err := os.ReadFile(from)
		if err != nil {
			return nil, fmt.Errorf("publish: %s: %w", name, err)
		}
		if err := writeAtomic(filepath.Join(tmp, name), b, 0o644); err != nil {
			return nil, err
		}
	}
	switch {
	case o.Version != "":
		e.Version = o.Version
	case len(list) == 0:
		e.Version = Version{1, 0}.String()
	default:
		hi, _ := ParseVersion(list[len(list)-1].Version)
		e.Version = hi.Next().String()
	}
	if _, err := os.Lstat(s.versionDir(e.Version)); err == nil {
		return nil, fmt.Errorf("publish: version %s already exists in %s (versions are never overwritten; choose another or prune it)", e.Version, s.Dir)
	}
	if err := s.finishDir(tmp, e); err != nil {
		return nil, err
	}
	if err := os.Rename(tmp, s.versionDir(e.Version)); err != nil {
		return nil, fmt.Errorf("publish: %w", err)
	}
	done = true
	e.Dir = s.versionDir(e.Version)
	if cur == nil || !o.NoPromote {
		if err := s.setCurrent(e.Version, "publish"); err != nil {
			return nil, err
		}
		e.Current = true
	} else {
		s.logHistory("publish", e.Version, "")
	}
	return e, nil
}

func copyLayout(from, to string) error {
	b, err := os.ReadFile(from)
	if err != nil {
		return fmt.Errorf("publish: layout: %w", err)
	}
	if len(bytes.TrimSpace(b)) == 0 {
		return fmt.Errorf("publish: layout %s is empty", from)
	}
	if err := checkLayout(from, b); err != nil {
		return err
	}
	return writeAtomic(to, b, 0o644)
}

// checkLayout does a light sanity check of an sfdisk dump: it needs a
// label: or at least one partition line (DEV : start=...).
func checkLayout(name string, b []byte) error {
	for _, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if strings.HasPrefix(line, "label:") || strings.Contains(line, "start=") || strings.Contains(line, "size=") {
			return nil
		}
	}
	return fmt.Errorf("publish: %s does not look like an sfdisk layout (no label: or partition lines)", name)
}

// setCurrent points DIR/current at versions/v (symlink to a temporary
// name, then rename) and makes sure the flat aliases exist.
func (s *Store) setCurrent(v, why string) error {
	if _, err := os.Stat(filepath.Join(s.versionDir(v), ImageFile)); err != nil {
		return fmt.Errorf("version %s: %w", v, err)
	}
	tmp := filepath.Join(s.Dir, ".current.tmp")
	os.Remove(tmp)
	if err := os.Symlink(filepath.Join("versions", v), tmp); err != nil {
		return err
	}
	if err := os.Rename(tmp, filepath.Join(s.Dir, "current")); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("making %s current: %w", v, err)
	}
	for _, name := range aliases {
		p := filepath.Join(s.Dir, name)
		target := filepath.Join("current", name)
		if t, err := os.Readlink(p); err == nil && t == target {
			continue
		}
		if st, err := os.Lstat(p); err == nil && st.Mode().IsRegular() {
			// A plain file the admin put there: never overwrite it.
			return fmt.Errorf("%s is a plain file, not the store's alias of current/%s; move it away", p, name)
		}
		os.Remove(p)
		if err := os.Symlink(target, p); err != nil {
			return err
		}
	}
	s.logHistory("current", v, why)
	return nil
}

func (s *Store) logHistory(what, v, why string) {
	f, err := os.OpenFile(filepath.Join(s.Dir, "history"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return
	}
	defer f.Close()
	fmt.Fprintf(f, "%s %s %s %s\n", s.now().UTC().Format(time.RFC3339Nano), what, v, strings.ReplaceAll(why, "\n", " "))
}

// currentName returns the version DIR/current points at, or "".
func (s *Store) currentName() string {
	t, err := os.Readlink(filepath.Join(s.Dir, "current"))
	if err != nil {
		return ""
	}
	return filepath.Base(t)
}

// List returns the published versions, oldest first, with Current and the
// nodes that run each filled in.
func (s *Store) List() ([]Entry, error) { return s.list() }

// current is the entry of list marked current (the last one, were there
// several), or nil.
func current(list []Entry) *Entry {
	var cur *Entry
	for i := range list {
		if list[i].Current {
			cur = &list[i]
		}
	}
	return cur
}

func (s *Store) list() ([]Entry, error) {
	des, err := os.ReadDir(filepath.Join(s.Dir, "versions"))
	if err != nil {
		return nil, fmt.Errorf("image store: %w", err)
	}
	cur := s.currentName()
	nodes, _ := s.Nodes()
	var out []Entry
	for _, de := range des {
		name := de.Name()
		if strings.HasPrefix(name, ".") || !de.IsDir() {
			continue
		}
		if _, err := ParseVersion(name); err != nil {
			continue
		}
		e, err := s.read(name)
		if err != nil {
			return nil, err
		}
		e.Current = name == cur
		for _, n := range nodes {
			if n.Version == name {
				e.Nodes = append(e.Nodes, n.Node)
				e.NodeStates = append(e.NodeStates, n)
			}
		}
		out = append(out, *e)
	}
	sort.Slice(out, func(i, j int) bool { return CompareStrings(out[i].Version, out[j].Version) < 0 })
	return out, nil
}

func (s *Store) read(v string) (*Entry, error) {
	dir := s.versionDir(v)
	e := &Entry{}
	b, err := os.ReadFile(filepath.Join(dir, metaFile))
	if err == nil {
		if err := json.Unmarshal(b, e); err != nil {
			return nil, fmt.Errorf("%s: %w", filepath.Join(dir, metaFile), err)
		}
	} else if errors.Is(err, fs.ErrNotExist) {
		// A version directory made by hand: describe it from its files.
		st, err := os.Stat(filepath.Join(dir, ImageFile))
		if err != nil {
			return nil, fmt.Errorf("version %s: %w", v, err)
		}
		e.Size, e.Date = st.Size(), st.ModTime().UTC()
		if sb, err := os.ReadFile(filepath.Join(dir, SumFile)); err == nil {
			if f := strings.Fields(string(sb)); len(f) > 0 {
				e.SHA256 = f[0]
			}
		}
	} else {
		return nil, err
	}
	e.Version = v
	e.Dir = dir
	if st, err := os.Stat(filepath.Join(dir, ImageFile)); err != nil {
		e.Changed = true
	} else if st.Size() != e.Size || (!e.ImageMTime.IsZero() && !st.ModTime().Equal(e.ImageMTime)) {
		e.Changed = true
	}
	return e, nil
}

// Get returns version v.
func (s *Store) Get(v string) (*Entry, error) {
	pv, err := ParseVersion(v)
	if err != nil {
		return nil, err
	}
	list, err := s.list()
	if err != nil {
		return nil, err
	}
	for i := range list {
		if list[i].Version == pv.String() {
			return &list[i], nil
		}
	}
	return nil, fmt.Errorf("version %s is not in the image store %s: %w", v, s.Dir, fs.ErrNotExist)
}

// Current returns the current version. Its error wraps fs.ErrNotExist when
// nothing has been published.
func (s *Store) Current() (*Entry, error) {
	cur := s.currentName()
	if cur == "" {
		return nil, fmt.Errorf("image store %s has no current version (clonecd publish): %w", s.Dir, fs.ErrNotExist)
	}
	return s.Get(cur)
}

// Promote makes v current. A version marked bad is refused; PromoteForce
// clears the mark.
func (s *Store) Promote(v string) error {
	_, err := s.promote(v, false)
	return err
}

// PromoteForce makes v current even if it was marked bad, clearing the mark.
func (s *Store) PromoteForce(v string) error {
	_, err := s.promote(v, true)
	return err
}

func (s *Store) promote(v string, force bool) (*Entry, error) {
	unlock, err := s.lock()
	if err != nil {
		return nil, err
	}
	defer unlock()
	e, err := s.Get(v)
	if err != nil {
		return nil, err
	}
	if e.Bad {
		if !force {
			return nil, fmt.Errorf("version %s is marked bad (%s); promote --force to use it anyway", e.Version, e.BadReason)
		}
		e.Bad, e.BadReason = false, ""
		if err := writeMeta(e.Dir, e); err != nil {
			return nil, err
		}
		s.logHistory("good", e.Version, "promoted by force")
	}
	if err := s.setCurrent(e.Version, "promote"); err != nil {
		return nil, err
	}
	e.Current = true
	return e, nil
}

// MarkBad records that version v misbehaves (nodes or the admin say so).
// A bad version is never chosen by Rollback nor promoted without force.
func (s *Store) MarkBad(v, reason string) error {
	return s.locked(func() error { return s.setBad(v, true, reason) })
}

// MarkGood clears a bad mark.
func (s *Store) MarkGood(v string) error {
	return s.locked(func() error { return s.setBad(v, false, "") })
}

func (s *Store) setBad(v string, bad bool, reason string) error {
	e, err := s.Get(v)
	if err != nil {
		return err
	}
	e.Bad, e.BadReason = bad, reason
	if err := writeMeta(e.Dir, e); err != nil {
		return err
	}
	what := "good"
	if bad {
		what = "bad"
	}
	s.logHistory(what, e.Version, reason)
	return nil
}

// Rollback marks the current version bad and makes the previous good one
// current: the most recent version that was current before it and is
// neither bad nor pruned, else the highest good version below it. If there
// is none, nothing changes and the error says so.
func (s *Store) Rollback() (*Entry, error) { return s.RollbackWith("") }

// RollbackWith is Rollback recording reason with the bad mark.
func (s *Store) RollbackWith(reason string) (*Entry, error) {
	unlock, err := s.lock()
	if err != nil {
		return nil, err
	}
	defer unlock()
	list, err := s.list()
	if err != nil {
		return nil, err
	}
	cur := current(list)
	good := map[string]*Entry{}
	for i := range list {
		if !list[i].Bad {
			good[list[i].Version] = &list[i]
		}
	}
	if cur == nil {
		return nil, fmt.Errorf("rollback: image store %s has no current version", s.Dir)
	}
	delete(good, cur.Version)
	var prev *Entry
	hist := s.history()
	for i := len(hist) - 1; i >= 0 && prev == nil; i-- {
		if hist[i][1] == "current" {
			prev = good[hist[i][2]]
		}
	}
	if prev == nil {
		for i := len(list) - 1; i >= 0; i-- {
			if g := good[list[i].Version]; g != nil && CompareStrings(g.Version, cur.Version) < 0 {
				prev = g
				break
			}
		}
	}
	if prev == nil {
		return nil, fmt.Errorf("rollback: no good version to roll back to from %s (all others are bad or pruned)", cur.Version)
	}
	if reason == "" {
		reason = "rolled back"
	}
	if err := s.setBad(cur.Version, true, reason); err != nil {
		return nil, err
	}
	if err := s.setCurrent(prev.Version, "rollback from "+cur.Version); err != nil {
		return nil, err
	}
	prev.Current = true
	return prev, nil
}

// history returns the history file's lines split into fields.
func (s *Store) history() [][]string {
	b, err := os.ReadFile(filepath.Join(s.Dir, "history"))
	if err != nil {
		return nil
	}
	var out [][]string
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 3 {
			out = append(out, f)
		}
	}
	return out
}

// Prune deletes the oldest versions until keep remain. The current version
// always stays (it counts towards keep), and so does a version pinned for a
// node's next clone (DIR/nodes/NODE/assign, a canary); keep must be at
// least 1. It returns the versions it removed, oldest first.
func (s *Store) Prune(keep int) ([]Entry, error) {
	unlock, err := s.lock()
	if err != nil {
		return nil, err
	}
	defer unlock()
	plan, err := s.PrunePlan(keep)
	if err != nil {
		return nil, err
	}
	var removed []Entry
	for _, e := range plan {
		trash := filepath.Join(s.Dir, "versions", ".prune-"+e.Version)
		if err := os.Rename(e.Dir, trash); err != nil {
			return removed, fmt.Errorf("prune %s: %w", e.Version, err)
		}
		if err := os.RemoveAll(trash); err != nil {
			return removed, fmt.Errorf("prune %s: %w", e.Version, err)
		}
		s.logHistory("pruned", e.Version, "")
		removed = append(removed, e)
	}
	s.removeLeftovers()
	return removed, nil
}

// removeLeftovers deletes what interrupted runs left in DIR/versions: an
// interrupted prune's directory at once, a publish or adoption that has
// not finished within a day (it died).
func (s *Store) removeLeftovers() {
	des, _ := os.ReadDir(filepath.Join(s.Dir, "versions"))
	for _, de := range des {
		n := de.Name()
		p := filepath.Join(s.Dir, "versions", n)
		switch {
		case strings.HasPrefix(n, ".prune-"):
			os.RemoveAll(p)
		case strings.HasPrefix(n, ".publish-") || strings.HasPrefix(n, ".adopt-"):
			if info, err := de.Info(); err == nil && s.now().Sub(info.ModTime()) > 24*time.Hour {
				os.RemoveAll(p)
			}
		}
	}
}

// PrunePlan returns the versions Prune(keep) would delete, oldest first,
// without deleting anything.
func (s *Store) PrunePlan(keep int) ([]Entry, error) {
	if keep < 1 {
		return nil, fmt.Errorf("prune: keep %d: must keep at least 1 version", keep)
	}
	list, err := s.list()
	if err != nil {
		return nil, err
	}
	kept := 0
	for _, e := range list {
		if e.Current {
			kept++
		}
	}
	pinned := s.assigned()
	var plan []Entry
	for i := len(list) - 1; i >= 0; i-- {
		e := list[i]
		if e.Current || pinned[e.Version] {
			continue
		}
		if kept < keep {
			kept++
			continue
		}
		plan = append([]Entry{e}, plan...)
	}
	return plan, nil
}

// assigned returns the versions pinned in DIR/nodes/*/assign.
func (s *Store) assigned() map[string]bool {
	out := map[string]bool{}
	files, _ := filepath.Glob(filepath.Join(s.Dir, "nodes", "*", "assign"))
	for _, f := range files {
		if b, err := os.ReadFile(f); err == nil {
			if v, err := ParseVersion(string(b)); err == nil {
				out[v.String()] = true
			}
		}
	}
	return out
}
