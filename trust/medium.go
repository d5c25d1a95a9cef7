package trust

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strings"

	"github.com/clonecd/clonecd/medium"
)

// Unsigned is what Status says of a medium read without a trusted key:
// the cloner logs it and puts it in the node's reported state.
const Unsigned = "UNSIGNED"

// Status says how a medium was trusted.
type Status struct {
	Signed  bool
	Key     PublicKey // the key that signed, when Signed
	Comment string    // the signature's trusted comment, when Signed
}

// String is "signed by key ID" or "UNSIGNED".
func (s Status) String() string {
	if !s.Signed {
		return Unsigned
	}
	return "signed by key " + s.Key.ID()
}

// ReadManifest reads a medium's MANIFEST and MANIFEST.minisig, verifies
// the signature with v's keys, parses the manifest and checks that its
// version is the medium's CLONE_CD_VERSION. The manifest's CheckBytes and
// NewReader (or ReadFile and Open below) then check each file before the
// step that uses it.
//
// With no trusted key (v nil or empty) the status is UNSIGNED: a MANIFEST
// the medium has is still read and checked against CLONE_CD_VERSION (it
// catches damage, not forgery), and a medium without one returns a nil
// manifest and no error.
func (v *Verifier) ReadManifest(fsys fs.FS) (*medium.Manifest, Status, error) {
	keys := v.Keys()
	b, err := readFS(fsys, medium.ManifestFile, medium.MaxManifest)
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			return nil, Status{}, err
		}
		if len(keys) == 0 {
			return nil, Status{}, nil
		}
		return nil, Status{}, &Error{medium.ManifestFile, ErrUnsigned,
			fmt.Sprintf("missing: the medium is not signed, and this cloner trusts only signed media (keys %s); publish the version with --key", keyIDs(keys))}
	}
	var (
		m  *medium.Manifest
		st Status
	)
	if len(keys) == 0 {
		if m, err = medium.ParseManifest(bytes.NewReader(b)); err != nil {
			return nil, Status{}, err
		}
	} else {
		sig, err := readFS(fsys, medium.SignatureFile, maxSignature)
		if errors.Is(err, fs.ErrNotExist) {
			return nil, Status{}, &Error{medium.SignatureFile, ErrUnsigned,
				fmt.Sprintf("missing: %s is not signed, and this cloner trusts only signed media (keys %s); publish the version with --key", medium.ManifestFile, keyIDs(keys))}
		} else if err != nil {
			return nil, Status{}, err
		}
		if m, st.Key, st.Comment, err = verifyManifest(b, sig, keys); err != nil {
			return nil, Status{}, err
		}
		st.Signed = true
	}
	vb, err := readFS(fsys, medium.Version, 64)
	if err != nil {
		return nil, Status{}, err
	}
	if got := strings.TrimSpace(string(vb)); got != m.Version {
		return nil, Status{}, fmt.Errorf("%s says %q, but %s is for version %s", medium.Version, got, medium.ManifestFile, m.Version)
	}
	return m, st, nil
}

// ReadFile reads name from fsys and checks it against m. A file m does
// not list is reported as missing (an error wrapping fs.ErrNotExist, so
// optional files stay optional) without being read: a file added to a
// signed version is ignored. A listed file that is missing, or differs,
// is an error that does not wrap fs.ErrNotExist: the step that needs it
// stops. With m nil (a medium without a manifest) it is fs.ReadFile.
func ReadFile(fsys fs.FS, m *medium.Manifest, name string) ([]byte, error) {
	if m == nil {
		return fs.ReadFile(fsys, name)
	}
	want, ok := m.Lookup(name)
	if !ok {
		return nil, fmt.Errorf("%s: %w (ignored even if the medium has it)", name, errNotListed)
	}
	f, err := fsys.Open(name)
	if err != nil {
		return nil, listedMissing(name, err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, want.Size+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if int64(len(b)) > want.Size {
		return nil, fmt.Errorf("%s: larger than the %d bytes %s says", name, want.Size, medium.ManifestFile)
	}
	if err := m.CheckBytes(name, b); err != nil {
		return nil, err
	}
	return b, nil
}

// Open opens name in fsys for streaming; the reader fails instead of
// returning io.EOF when the content is not what m says (medium.NewReader),
// so what was read is trusted only once EOF came. A file m does not list
// is reported as by ReadFile. With m nil it is fsys.Open.
func Open(fsys fs.FS, m *medium.Manifest, name string) (io.ReadCloser, error) {
	if m == nil {
		return fsys.Open(name)
	}
	if _, ok := m.Lookup(name); !ok {
		return nil, fmt.Errorf("%s: %w (ignored even if the medium has it)", name, errNotListed)
	}
	f, err := fsys.Open(name)
	if err != nil {
		return nil, listedMissing(name, err)
	}
	r, err := m.NewReader(name, f)
	if err != nil {
		f.Close()
		return nil, err
	}
	return struct {
		io.Reader
		io.Closer
	}{r, f}, nil
}

// VerifiedFS is fsys as a cloner reads it once ReadManifest returned m:
// a file m lists is checked against m as it is read (read to its end, it
// is what m says, or the read fails with a *medium.MismatchError naming
// it, never io.EOF; fs.ReadFile reads to the end), a file m does not list
// is missing (fs.ErrNotExist, so optional files stay optional), and a
// listed file that is missing is an error that is not fs.ErrNotExist.
// Stat answers for listed files only. With m nil it is fsys.
//
// A check at the end of a read is a check before use only for a step that
// reads a file whole before it acts (the layout, ks.cfg, the nodes table,
// the kernel and initrd); the image's stream is trusted once it ended
// without an error.
func VerifiedFS(fsys fs.FS, m *medium.Manifest) fs.FS {
	if m == nil {
		return fsys
	}
	return verifiedFS{fsys, m}
}

type verifiedFS struct {
	fsys fs.FS
	m    *medium.Manifest
}

func (v verifiedFS) Open(name string) (fs.File, error) {
	if _, ok := v.m.Lookup(name); !ok {
		return nil, &fs.PathError{Op: "open", Path: name, Err: errNotListed}
	}
	f, err := v.fsys.Open(name)
	if err != nil {
		return nil, listedMissing(name, err)
	}
	r, err := v.m.NewReader(name, f)
	if err != nil {
		f.Close()
		return nil, err
	}
	return verifiedFile{f, r}, nil
}

func (v verifiedFS) Stat(name string) (fs.FileInfo, error) {
	if _, ok := v.m.Lookup(name); !ok {
		return nil, &fs.PathError{Op: "stat", Path: name, Err: errNotListed}
	}
	fi, err := fs.Stat(v.fsys, name)
	if err != nil {
		return nil, listedMissing(name, err)
	}
	return fi, nil
}

// verifiedFile reads through the manifest's checking reader.
type verifiedFile struct {
	fs.File
	r io.Reader
}

func (f verifiedFile) Read(p []byte) (int, error) { return f.r.Read(p) }

// errNotListed wraps both medium.ErrNotListed and fs.ErrNotExist.
var errNotListed = fmt.Errorf("%w, so treated as missing: %w", medium.ErrNotListed, fs.ErrNotExist)

// listedMissing turns "does not exist" into an error that is not
// fs.ErrNotExist: the signed manifest says the file is there.
func listedMissing(name string, err error) error {
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%s: listed in %s but missing from the medium", name, medium.ManifestFile)
	}
	return err
}

// readFS reads a file of fsys of at most max bytes. Errors name the file.
func readFS(fsys fs.FS, name string, max int64) ([]byte, error) {
	f, err := fsys.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return readLimited(f, name, max)
}
