package versions

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"

	"syscall"
	"time"

	"github.com/clonecd/clonecd/fleet"
	"github.com/clonecd/clonecd/medium"
	"github.com/clonecd/clonecd/trust"
)

// The store's own names (the medium's come from package medium).
const (
	versionsDir = "versions"
	currentLink = "current"
	nodesDir    = "nodes"
	historyFile = "history"
	lockFile    = ".lock"
	metaFile    = "meta.json"
	blobsDir    = "blobs"
	// flatNodes is a Medusa-style directory's identity table: its
	// DIR/nodes is the node store.
	flatNodes = "nodes.table"
)

// aliases are the flat Medusa-style names in the store's top directory
// for a current version whose image is img (medium.ImageGzip or
// medium.ImageZstd); each is a symlink to current/NAME.
func aliases(img string) []string {
	return []string{img, medium.SumName(img), medium.Layout, medium.Version}
}

// DefaultDir is the store directory when none is given: $CLONECD_STORE or
// /root/clone_image (the Medusa master's path).
func DefaultDir() string {
	if d := os.Getenv("CLONECD_STORE"); d != "" {
		return d
	}
	return "/root/clone_image"
}

// Record is what the store records about a version (its meta.json).
type Record struct {
	Version   string    `json:"version"`
	Date      time.Time `json:"date"`
	Size      int64     `json:"size"` // of the image
	SHA256    string    `json:"sha256"`
	Note      string    `json:"note,omitempty"`
	Bad       bool      `json:"bad,omitempty"`
	BadReason string    `json:"bad_reason,omitempty"`
	// ImageMTime is node.cpio.gz's modification time when published.
	ImageMTime time.Time `json:"image_mtime,omitempty"`
}

// Entry is one published version: its Record and what the store knows
// about it now.
type Entry struct {
	Record
	// Changed says node.cpio.gz's size or mtime differ from when it was
	// published: someone wrote to it (e.g. cp onto the flat alias
	// DIR/node.cpio.gz, the old Medusa habit). Its sha256 file no longer
	// matches; publish the new image as a new version instead.
	Changed bool `json:"-"`
	Current bool `json:"-"`
	// Flat is a Medusa-style directory read in place (not adopted).
	Flat bool `json:"-"`
	// Signed says the version has MANIFEST.minisig, made by key KeyID
	// (read from the signature, not verified: the cloner and fetch
	// --trust verify it against the keys they trust).
	Signed bool   `json:"-"`
	KeyID  string `json:"-"`
	// Dir holds the version's files (see Path).
	Dir string `json:"-"`
	// Nodes names the nodes whose last reported state names this version
	// (being cloned with it, or cloned with it last); NodeStates has
	// their states. Filled by List only.
	Nodes      []string      `json:"-"`
	NodeStates []fleet.State `json:"-"`
}

// Path returns where the version keeps the medium file name (a name of
// package medium: medium.ImageGzip, medium.Kernel, ...). The file may not
// exist. A store written by older clonecd kept the kernel and initrd flat
// (vmlinuz, initrd.img); a Medusa-style directory keeps its identity
// table as nodes.table.
func (e *Entry) Path(name string) string {
	p := filepath.Join(e.Dir, filepath.FromSlash(name))
	switch {
	case name == medium.Kernel || name == medium.Initrd:
		if _, err := os.Stat(p); errors.Is(err, fs.ErrNotExist) {
			old := filepath.Join(e.Dir, path.Base(name))
			if _, err := os.Stat(old); err == nil {
				return old
			}
		}
	case name == medium.Nodes && e.Flat:
		return filepath.Join(e.Dir, flatNodes)
	}
	return p
}

// ImageName is the medium name of the version's image: medium.ImageGzip
// or medium.ImageZstd, whichever its directory holds (medium.FindImage);
// medium.ImageGzip when it holds neither.
func (e *Entry) ImageName() string {
	return imageIn(e.Dir)
}

// imageIn is the medium name of the image directory dir holds
// (medium.ImageGzip when none).
func imageIn(dir string) string {
	if n, err := medium.FindImage(os.DirFS(dir)); err == nil {
		return n
	}
	return medium.ImageGzip
}

// Image returns the path of the version's image (ImageName).
func (e *Entry) Image() string { return e.Path(e.ImageName()) }

// Layout returns the path of the version's node.sfdisk.
func (e *Entry) Layout() string { return e.Path(medium.Layout) }

// BlobDir is the store's blob store (package nodesync): every file's
// content of every published image, by its sha256. Publish fills it;
// the server serves it at nodesync.Prefix. It may not exist.
func (s *Store) BlobDir() string { return filepath.Join(s.Dir, blobsDir) }

// Store is an image store directory (see the package comment).
type Store struct {
	Dir string
	now func() time.Time
}

// Open returns the store in dir ("" = DefaultDir()). It creates and
// changes nothing: a store that does not exist yet is made by the first
// Publish.
func Open(dir string) (*Store, error) {
	if dir == "" {
		dir = DefaultDir()
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	return &Store{Dir: abs, now: time.Now}, nil
}

// ErrNoStore is the error of reading a store directory that does not
// exist (it also matches fs.ErrNotExist) or is not a directory.
var ErrNoStore = errors.New("no image store")

type noStoreError struct {
	dir     string
	missing bool
}

func (e *noStoreError) Error() string {
	if e.missing {
		return fmt.Sprintf("no image store in %s: it does not exist (clonecd publish IMAGE --layout LAYOUT --dir %s makes one)", e.dir, e.dir)
	}
	return fmt.Sprintf("no image store in %s: not a directory", e.dir)
}

func (e *noStoreError) Is(target error) bool {
	return target == ErrNoStore || e.missing && target == fs.ErrNotExist
}

// Exists fails with a message for the admin when the store's directory is
// missing or not a directory.
func (s *Store) Exists() error {
	st, err := os.Stat(s.Dir)
	if errors.Is(err, fs.ErrNotExist) {
		return &noStoreError{s.Dir, true}
	}
	if err != nil {
		return err
	}
	if !st.IsDir() {
		return &noStoreError{s.Dir, false}
	}
	return nil
}

// Nodes returns the store's node store (DIR/nodes) with the given limits.
func (s *Store) Nodes(lim fleet.Limits) *fleet.Store {
	return fleet.Open(filepath.Join(s.Dir, nodesDir), lim)
}

// lock takes the store's exclusive lock, making the store's directory if
// needed; the returned function releases it.
func (s *Store) lock() (func(), error) {
	if err := os.MkdirAll(s.Dir, 0o700); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(filepath.Join(s.Dir, lockFile), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: lock: %w", f.Name(), err)
	}
	return func() {
		if err := s.shareOwner(); err != nil {
			fmt.Fprintf(os.Stderr, "clonecd: %v\n", err)
		}
		f.Close()
	}, nil
}

// lockChange takes the lock for a change other than Publish and Adopt;
// a Medusa-style directory is refused before the lock writes anything
// into it.
func (s *Store) lockChange() (func(), error) {
	e, err := s.flat()
	if err != nil {
		return nil, err
	}
	if e != nil {
		return nil, errFlat(e)
	}
	return s.lock()
}

// errFlat refuses to change the one version of a Medusa-style directory
// that was not adopted.
func errFlat(e *Entry) error {
	return fmt.Errorf("%s is a Medusa-style directory (a plain %s) whose one version %s is current; publishing a new version into it (clonecd publish) makes it a store first", e.Dir, medium.ImageGzip, e.Version)
}

func (s *Store) versionDir(v string) string { return filepath.Join(s.Dir, versionsDir, v) }

// currentName returns the version DIR/current points at, or "".
func (s *Store) currentName() string {
	t, err := os.Readlink(filepath.Join(s.Dir, currentLink))
	if err != nil {
		return ""
	}
	return filepath.Base(t)
}

// List returns the published versions, oldest first, with Current and the
// nodes that run each filled in.
func (s *Store) List() ([]Entry, error) {
	list, err := s.list()
	if err != nil {
		return nil, err
	}
	nodes, err := s.Nodes(fleet.Limits{}).All()
	if err != nil {
		return nil, err
	}
	for i := range list {
		for _, n := range nodes {
			if n.Version == list[i].Version {
				list[i].Nodes = append(list[i].Nodes, n.Node)
				list[i].NodeStates = append(list[i].NodeStates, n)
			}
		}
	}
	return list, nil
}

// list reads every version, without node states.
func (s *Store) list() ([]Entry, error) {
	if err := s.Exists(); err != nil {
		return nil, err
	}
	if flat, err := s.flat(); flat != nil || err != nil {
		if err != nil {
			return nil, err
		}
		return []Entry{*flat}, nil
	}
	des, err := os.ReadDir(filepath.Join(s.Dir, versionsDir))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	cur := s.currentName()
	var out []Entry
	for _, de := range des {
		name := de.Name()
		if !de.IsDir() || medium.ValidVersion(name) != nil {
			continue // temporary directories (.publish-*) and strangers
		}
		e, err := s.read(name)
		if err != nil {
			return nil, err
		}
		e.Current = name == cur
		out = append(out, *e)
	}
	sort.Slice(out, func(i, j int) bool { return CompareStrings(out[i].Version, out[j].Version) < 0 })
	return out, nil
}

// flat describes a Medusa-style directory (a plain node.cpio.gz and no
// DIR/current) as one current version, or returns nil.
func (s *Store) flat() (*Entry, error) {
	if _, err := os.Lstat(filepath.Join(s.Dir, currentLink)); err == nil {
		return nil, nil
	}
	st, err := os.Lstat(filepath.Join(s.Dir, medium.ImageGzip))
	if err != nil || !st.Mode().IsRegular() {
		return nil, nil
	}
	v, err := s.flatVersion()
	if err != nil {
		return nil, err
	}
	e := &Entry{Record: Record{Version: v.String(), Date: st.ModTime().UTC(), Size: st.Size(), ImageMTime: st.ModTime().UTC(),
		Note: "Medusa-style directory, read in place"}, Current: true, Flat: true, Dir: s.Dir}
	if sum, err := medium.ReadSum(os.DirFS(s.Dir), medium.ImageGzip); err == nil {
		e.SHA256 = sum
	}
	return e, nil
}

// flatVersion is the version of a Medusa-style directory: its
// CLONE_CD_VERSION, else 1.0.
func (s *Store) flatVersion() (Version, error) {
	vf := filepath.Join(s.Dir, medium.Version)
	if st, err := os.Lstat(vf); err == nil && st.Mode().IsRegular() {
		return ReadFile(vf)
	}
	return Version{1, 0}, nil
}

// read describes version v from its directory.
func (s *Store) read(v string) (*Entry, error) {
	dir := s.versionDir(v)
	e := &Entry{}
	b, err := os.ReadFile(filepath.Join(dir, metaFile))
	if err == nil {
		if err := json.Unmarshal(b, &e.Record); err != nil {
			return nil, fmt.Errorf("%s: %w", filepath.Join(dir, metaFile), err)
		}
	} else if errors.Is(err, fs.ErrNotExist) {
		// A version directory made by hand: describe it from its files.
		st, err := os.Stat(filepath.Join(dir, imageIn(dir)))
		if err != nil {
			return nil, fmt.Errorf("version %s: %w", v, err)
		}
		e.Size, e.Date = st.Size(), st.ModTime().UTC()
		if sum, err := medium.ReadSum(os.DirFS(dir), imageIn(dir)); err == nil {
			e.SHA256 = sum
		}
	} else {
		return nil, err
	}
	e.Version, e.Dir = v, dir
	if sig, err := os.ReadFile(filepath.Join(dir, medium.SignatureFile)); err == nil {
		e.Signed = true
		if e.KeyID, err = trust.SignatureKeyID(sig); err != nil {
			e.KeyID = "damaged"
		}
	}
	if st, err := os.Stat(filepath.Join(dir, imageIn(dir))); err != nil {
		e.Changed = true
	} else if st.Size() != e.Size || (!e.ImageMTime.IsZero() && !st.ModTime().Equal(e.ImageMTime)) {
		e.Changed = true
	}
	return e, nil
}

// ErrNoVersion matches the error of a version the store or a server does
// not have (a *NoVersionError).
var ErrNoVersion = errors.New("no such version")

// Get returns version v. Its error wraps ErrNoVersion and fs.ErrNotExist
// when the store has no version v.
func (s *Store) Get(v string) (*Entry, error) {
	pv, err := ParseVersion(v)
	if err != nil {
		return nil, err
	}
	if err := s.Exists(); err != nil {
		return nil, err
	}
	v = pv.String()
	flat, err := s.flat()
	if err != nil {
		return nil, err
	}
	if flat != nil {
		if flat.Version == v {
			return flat, nil
		}
	} else if st, err := os.Stat(s.versionDir(v)); err == nil && st.IsDir() {
		e, err := s.read(v)
		if err != nil {
			return nil, err
		}
		e.Current = s.currentName() == v
		return e, nil
	}
	return nil, &NoVersionError{Where: "image store " + s.Dir, Version: v}
}

// NoVersionError says where a version is missing (an image store, a
// server). It matches ErrNoVersion and fs.ErrNotExist.
type NoVersionError struct {
	Where   string // "image store /root/clone_image", "the server http://master:8080"
	Version string // "": the current version
	Hint    string // what to do, for the current version ("": publish on the master)
}

func (e *NoVersionError) Error() string {
	if e.Version != "" {
		return e.Where + " has no version " + e.Version
	}
	hint := e.Hint
	if hint == "" {
		hint = "clonecd publish on the master makes one"
	}
	return e.Where + " has no current version (" + hint + ")"
}

// Is makes the error match ErrNoVersion and fs.ErrNotExist.
func (e *NoVersionError) Is(target error) bool {
	return target == ErrNoVersion || target == fs.ErrNotExist
}

// Current returns the current version. Its error wraps fs.ErrNotExist when
// nothing has been published.
func (s *Store) Current() (*Entry, error) {
	if err := s.Exists(); err != nil {
		return nil, err
	}
	if flat, err := s.flat(); flat != nil || err != nil {
		return flat, err
	}
	cur := s.currentName()
	if cur == "" {
		return nil, &NoVersionError{Where: "image store " + s.Dir, Hint: "clonecd publish IMAGE --layout LAYOUT --dir " + s.Dir}
	}
	return s.Get(cur)
}

// current is the entry of list marked current, or nil.
func current(list []Entry) *Entry {
	var cur *Entry
	for i := range list {
		if list[i].Current {
			cur = &list[i]
		}
	}
	return cur
}
