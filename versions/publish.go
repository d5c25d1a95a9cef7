package versions

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/clonecd/clonecd/image"
	"github.com/clonecd/clonecd/internal/atomicfile"
	"github.com/clonecd/clonecd/medium"
	"github.com/clonecd/clonecd/trust"
)

// File modes in the store: the image holds the golden node's secrets.
const (
	dirMode  = 0o700
	fileMode = 0o600
)

// PublishOptions tunes Publish. The zero value publishes the image as the
// next version after the highest one, with the current version's layout
// and no optional files, and makes it current.
type PublishOptions struct {
	// Version to publish as; "" means the next after the highest
	// published version (1.0 in an empty store).
	Version string
	Note    string
	// Layout is the layout file; "" means the current version's.
	Layout string
	// Files are optional medium files by their name in package medium
	// (medium.Nodes, medium.Kickstart, medium.Conf, medium.Kernel,
	// medium.Initrd, ...: medium.Optional); the value is the source path.
	Files map[string]string
	// NoPromote leaves the current version as it is (a canary: clone
	// chosen nodes with the new version first). The first version of a
	// store always becomes current.
	NoPromote bool
	// Force makes a version lower than the current one current; without
	// it that is refused (0.20 typed for 1.20), unless NoPromote.
	Force bool
	// Date is the publication date; zero means now (tests, imports).
	Date time.Time
	// Key signs the version's MANIFEST (MANIFEST.minisig beside it,
	// package trust) inside the temporary directory, before the version
	// is renamed into place: a version is never visible half signed. Nil
	// publishes it unsigned (`clonecd publish` asks for --unsigned).
	Key *trust.SecretKey
	// Progress, if not nil, is told how far Publish has read the image:
	// first while it checks it whole (stage "checking"), then while it
	// copies it into the store ("copying"), with the bytes read so far
	// of total. A terminal's progress meter hangs off it (package
	// progress); it is called from Publish's goroutine.
	Progress func(stage string, done, total int64)
}

// The stages PublishOptions.Progress is told about.
const (
	StageCheck = "checking"
	StageCopy  = "copying"
)

// Publish adds image (a gzip'd or zstd cpio from `clonecd pack`, kept
// under its medium name, node.cpio.gz or node.cpio.zst) with its
// layout and optional files as a new version. Everything that can be
// refused is refused before the first write: the options, the layout,
// the whole image (image.CheckFile) and IMAGE.sha256 when it exists. The
// files are then copied into a temporary directory of the store with the
// version's MANIFEST, and under the store's lock the directory is renamed
// into place and, unless o.NoPromote, made current.
func (s *Store) Publish(img string, o PublishOptions) (*Entry, error) {
	p, err := s.preparePublish(img, &o)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Join(s.Dir, versionsDir), dirMode); err != nil {
		return nil, err
	}
	tmp, err := os.MkdirTemp(filepath.Join(s.Dir, versionsDir), ".publish-")
	if err != nil {
		return nil, err
	}
	done := false
	defer func() {
		if !done {
			os.RemoveAll(tmp)
		}
	}()
	m := &medium.Manifest{}
	sum, size, mtime, err := copyInto(tmp, p.name, img, m, stage(o.Progress, StageCopy))
	if err != nil {
		return nil, err
	}
	if sum != p.check.SHA256 || size != p.check.Size {
		return nil, fmt.Errorf("%s changed while it was published (sha256 %s, then %s); publish it again", img, p.check.SHA256, sum)
	}
	for _, name := range p.files {
		if _, _, _, err := copyInto(tmp, name, o.Files[name], m, nil); err != nil {
			return nil, err
		}
	}
	if err := addTorrent(tmp, m); err != nil {
		return nil, err
	}
	date := o.Date
	if date.IsZero() {
		date = s.now()
	}
	e := &Entry{Record: Record{Date: date.UTC().Truncate(time.Second), Size: size, SHA256: sum, Note: o.Note, ImageMTime: mtime}}

	unlock, err := s.lock()
	if err != nil {
		return nil, err
	}
	defer unlock()
	if err := s.adoptLocked(); err != nil {
		return nil, err
	}
	// Under the lock: a prune removes the blobs no version lists.
	if err := s.publishFiles(tmp, m); err != nil {
		return nil, err
	}
	list, err := s.list()
	if err != nil {
		return nil, err
	}
	cur := current(list)
	layout := p.layout
	if layout == nil {
		if cur == nil {
			return nil, errors.New("no layout given and no current version to take one from (give the layout file, node.sfdisk)")
		}
		if layout, err = os.ReadFile(cur.Layout()); err != nil {
			return nil, fmt.Errorf("the current version's layout: %w", err)
		}
	}
	if err := writeInto(tmp, medium.Layout, layout, m); err != nil {
		return nil, err
	}
	e.Version = o.Version
	if e.Version == "" {
		e.Version = Version{1, 0}.String()
		if len(list) > 0 {
			hi, _ := ParseVersion(list[len(list)-1].Version)
			e.Version = hi.Next().String()
		}
	}
	if _, err := os.Lstat(s.versionDir(e.Version)); err == nil {
		return nil, errExists(e.Version, s.Dir)
	}
	promote := cur == nil || !o.NoPromote
	if promote && cur != nil && !o.Force && CompareStrings(e.Version, cur.Version) < 0 {
		return nil, errLower(e.Version, cur.Version)
	}
	if err := s.finishDir(tmp, e, m, o.Key); err != nil {
		return nil, err
	}
	if err := atomicfile.Rename(tmp, s.versionDir(e.Version)); err != nil {
		return nil, err
	}
	done = true
	e.Dir = s.versionDir(e.Version)
	if o.Key != nil {
		e.Signed, e.KeyID = true, o.Key.ID()
	}
	if promote {
		if err := s.setCurrent(e.Version, "publish"); err != nil {
			return nil, err
		}
		e.Current = true
	} else {
		s.logHistory("publish", e.Version, "")
	}
	return e, nil
}

func errExists(v, dir string) error {
	return fmt.Errorf("version %s already exists in %s (versions are never overwritten; choose another or prune it)", v, dir)
}

func errLower(v, cur string) error {
	return fmt.Errorf("version %s is lower than the current version %s (a typo?); publish it with --force to make it current anyway, or with --no-promote as a canary", v, cur)
}

// published is what preparePublish checked.
type published struct {
	check  *image.CheckResult
	name   string   // the image's medium name, by its compression
	layout []byte   // nil: the current version's
	files  []string // names of o.Files, sorted
}

// preparePublish checks everything Publish can check before it writes.
func (s *Store) preparePublish(img string, o *PublishOptions) (*published, error) {
	p := &published{}
	if o.Version != "" {
		v, err := ParseVersion(o.Version)
		if err != nil {
			return nil, err
		}
		o.Version = v.String()
	}
	if err := regular(img); err != nil { // the image first: the likeliest typo
		return nil, err
	}
	for name, from := range o.Files {
		if name == medium.Files {
			return nil, fmt.Errorf("%s: publish writes it from the image; leave it out", name)
		}
		if !slices.Contains(medium.Optional, name) {
			return nil, fmt.Errorf("%s: a version carries only %s besides the image and layout", name, strings.Join(medium.Optional, ", "))
		}
		if err := regular(from); err != nil {
			return nil, err
		}
		p.files = append(p.files, name)
	}
	sort.Strings(p.files)
	if o.Layout != "" {
		b, err := os.ReadFile(o.Layout)
		if err != nil {
			return nil, err
		}
		if err := checkLayout(o.Layout, b); err != nil {
			return nil, err
		}
		p.layout = b
	}
	cur, err := s.Current()
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	if cur == nil && o.Layout == "" {
		return nil, errors.New("no layout given and no current version to take one from (give the layout file, node.sfdisk)")
	}
	if o.Version != "" {
		if _, err := s.Get(o.Version); err == nil {
			return nil, errExists(o.Version, s.Dir)
		}
	}
	if cur != nil && o.Version != "" && !o.NoPromote && !o.Force && CompareStrings(o.Version, cur.Version) < 0 {
		return nil, errLower(o.Version, cur.Version)
	}
	if err := regular(img); err != nil {
		return nil, err
	}
	if p.check, err = checkImage(img, stage(o.Progress, StageCheck)); err != nil {
		return nil, err
	}
	if p.name = p.check.Compression.ImageName(); p.name == "" {
		return nil, fmt.Errorf("%s is an uncompressed cpio archive: a version's image is gzip or zstd (clonecd pack [--compress zstd] makes one)", img)
	}
	if err := medium.CheckImageName(img, p.name); err != nil {
		return nil, err
	}
	want, err := medium.ReadSum(os.DirFS(filepath.Dir(img)), filepath.Base(img))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	if want != "" && want != p.check.SHA256 {
		return nil, fmt.Errorf("%s has sha256 %s but %s says %s", img, p.check.SHA256, medium.SumName(img), want)
	}
	return p, nil
}

func regular(p string) error {
	st, err := os.Stat(p)
	if err != nil {
		return err
	}
	if !st.Mode().IsRegular() {
		return fmt.Errorf("%s is not a regular file", p)
	}
	return nil
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
	return fmt.Errorf("%s does not look like an sfdisk layout (no label: or partition lines)", name)
}

// Adopt makes a Medusa-style directory (a plain node.cpio.gz) a store:
// its files move (hard links) into versions/V, V from its
// CLONE_CD_VERSION (else 1.0), which becomes current, and the flat names
// become the store's aliases. The image is read whole first
// (image.Check); a broken one is refused. A store that is one already is
// left as it is.
func (s *Store) Adopt() error {
	if err := s.Exists(); err != nil {
		return err
	}
	unlock, err := s.lock()
	if err != nil {
		return err
	}
	defer unlock()
	return s.adoptLocked()
}

// adoptLocked is Adopt under the store's lock.
func (s *Store) adoptLocked() error {
	flat, err := s.flat()
	if flat == nil || err != nil {
		return err
	}
	if _, err := os.Stat(s.versionDir(flat.Version)); err == nil {
		return fmt.Errorf("%s: plain %s and version directory %s both exist; move one away", s.Dir, medium.ImageGzip, s.versionDir(flat.Version))
	}
	img := filepath.Join(s.Dir, medium.ImageGzip)
	chk, err := image.CheckFile(img)
	if err != nil {
		return fmt.Errorf("adopting a Medusa-style directory: %w (move it away to publish into %s)", err, s.Dir)
	}
	if err := os.MkdirAll(filepath.Join(s.Dir, versionsDir), dirMode); err != nil {
		return err
	}
	tmp, err := os.MkdirTemp(filepath.Join(s.Dir, versionsDir), ".adopt-")
	if err != nil {
		return err
	}
	done := false
	defer func() {
		if !done {
			os.RemoveAll(tmp)
		}
	}()
	m := &medium.Manifest{}
	for _, name := range append([]string{medium.ImageGzip, medium.Layout}, medium.Optional...) {
		from := flat.Path(name)
		st, err := os.Lstat(from)
		if err != nil || !st.Mode().IsRegular() {
			continue
		}
		if name == medium.ImageGzip {
			if err := os.Link(from, filepath.Join(tmp, name)); err != nil {
				return fmt.Errorf("adopting %s: %w", from, err)
			}
			m.Add(medium.File{Name: name, Size: chk.Size, SHA256: chk.SHA256})
			continue
		}
		if _, _, _, err := copyInto(tmp, name, from, m, nil); err != nil {
			return err
		}
	}
	e := &Entry{Record: Record{Version: flat.Version, Date: flat.Date, Size: chk.Size, SHA256: chk.SHA256,
		Note: "adopted from " + img, ImageMTime: flat.ImageMTime}}
	if err := s.finishDir(tmp, e, m, nil); err != nil {
		return err
	}
	if err := atomicfile.Rename(tmp, s.versionDir(e.Version)); err != nil {
		return err
	}
	done = true
	// The data now lives under versions/V; the flat names become aliases.
	for _, name := range aliases(medium.ImageGzip) {
		p := filepath.Join(s.Dir, name)
		if st, err := os.Lstat(p); err == nil && st.Mode().IsRegular() {
			if err := os.Remove(p); err != nil {
				return err
			}
		}
	}
	return s.setCurrent(e.Version, "adopt")
}

// setCurrent points DIR/current at versions/v (symlink to a temporary
// name, then rename) and makes sure the flat aliases exist.
func (s *Store) setCurrent(v, why string) error {
	img, err := medium.FindImage(os.DirFS(s.versionDir(v)))
	if err != nil {
		return fmt.Errorf("version %s: %w", v, err)
	}
	tmp := filepath.Join(s.Dir, ".current.tmp")
	os.Remove(tmp)
	if err := os.Symlink(filepath.Join(versionsDir, v), tmp); err != nil {
		return err
	}
	if err := atomicfile.Rename(tmp, filepath.Join(s.Dir, currentLink)); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("making %s current: %w", v, err)
	}
	// The other compression's aliases would dangle: remove them (only
	// symlinks; a plain file is the admin's).
	for _, other := range medium.Images {
		if other == img {
			continue
		}
		for _, name := range []string{other, medium.SumName(other)} {
			p := filepath.Join(s.Dir, name)
			if st, err := os.Lstat(p); err == nil && st.Mode()&fs.ModeSymlink != 0 {
				if err := os.Remove(p); err != nil {
					return err
				}
			}
		}
	}
	for _, name := range aliases(img) {
		p := filepath.Join(s.Dir, name)
		target := filepath.Join(currentLink, name)
		if t, err := os.Readlink(p); err == nil && t == target {
			continue
		}
		if st, err := os.Lstat(p); err == nil && st.Mode().IsRegular() {
			// A plain file the admin put there: never overwrite it.
			return fmt.Errorf("%s is a plain file, not the store's alias of %s/%s; move it away", p, currentLink, name)
		}
		os.Remove(p)
		if err := os.Symlink(target, p); err != nil {
			return err
		}
	}
	if err := atomicfile.SyncDir(s.Dir); err != nil {
		return err
	}
	s.logHistory("current", v, why)
	return nil
}
