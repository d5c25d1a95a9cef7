package image

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"runtime"
	"strings"

	"golang.org/x/sys/unix"
)

// UnpackOptions tune Unpack. The zero value restores a whole root as it
// was packed (owners, setuid bits, devices, xattrs) into a new or empty
// directory.
type UnpackOptions struct {
	// Merge lets Unpack write into a DIR that is not empty: what the image
	// holds replaces what is there, the rest stays. DIR's own owner,
	// mode, time and xattrs are then left as they are; a new or empty DIR
	// takes the image root's, as the restored root it is.
	Merge bool
	// RootAttrs gives DIR the image root's owner, mode, time and xattrs
	// even when merging: for a root restored into a new filesystem that
	// already holds lost+found and mount points (the cloner).
	RootAttrs bool
	// Untrusted is for an archive from outside the cluster: no device
	// nodes (skipped with a warning), no setuid or setgid bits, and of the
	// xattrs only user.* (no file capabilities, no security labels).
	Untrusted bool
	// NoChown leaves files owned by the unpacking user. Without root,
	// failing chowns are ignored anyway.
	NoChown bool
	// NoXattrs does not restore extended attributes.
	NoXattrs bool
	// Workers write file data and set metadata while the caller's
	// goroutine reads the stream and creates the names; 0 means one per
	// CPU, 2 to 8; 1 does everything in the caller's goroutine.
	Workers int
	// Warn receives warnings (xattrs the filesystem does not support,
	// what Untrusted left out); nil discards them.
	Warn func(string)
	// Progress counts bytes of file data and entries; may be nil.
	Progress Counter
}

// ErrNotEmpty is Unpack's refusal of a non-empty DIR without Merge.
var ErrNotEmpty = errors.New("directory is not empty")

// Unpack restores the image in r (gzip, zstd or plain; newc or crc) into
// dir, reading r to its end: a damaged compressed stream fails even after
// the cpio trailer (Check's rules). dir is created if missing; one that is
// not empty is refused unless o.Merge (ErrNotEmpty). Both refusals, and an
// image that is not an archive at all, happen before anything is written.
//
// Unpack refuses absolute paths, ".." components, writing through any
// symlink and duplicate names: nothing is ever written outside dir.
// Owners are set before modes (setuid survives), xattrs after owners
// (chown clears file capabilities), directory modes and times last.
//
// On an error dir keeps what was restored before it, minus any file
// whose data did not arrive whole (removed, never left under its name);
// directories not yet given their mode stay 0700.
func Unpack(r io.Reader, dir string, o UnpackOptions) (*Stats, error) {
	if _, err := prepareDir(dir, o.Merge, false); err != nil {
		return nil, err
	}
	s, err := openStream(r)
	if err != nil {
		return nil, err
	}
	defer s.Close()
	h, err := s.Next() // nil at io.EOF: an archive without entries
	if err != nil && err != io.EOF {
		return nil, err
	}
	fresh, err := prepareDir(dir, o.Merge, true)
	if err != nil {
		return nil, err
	}
	x, err := newExtractor(dir, o, fresh || o.RootAttrs)
	if err != nil {
		return nil, err
	}
	defer x.close()
	return x.run(s, h)
}

// prepareDir checks dir before an unpack: absent (created when create is
// set), or a directory, empty unless merge. It reports whether dir is
// fresh: new or empty.
func prepareDir(dir string, merge, create bool) (bool, error) {
	f, err := os.Open(dir)
	if errors.Is(err, fs.ErrNotExist) {
		if create {
			if err := os.MkdirAll(dir, 0o755); err != nil {
				return false, err
			}
		}
		return true, nil
	}
	if err != nil {
		return false, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return false, err
	}
	if !fi.IsDir() {
		return false, fmt.Errorf("%s is not a directory", dir)
	}
	names, err := f.Readdirnames(1)
	if err != nil && err != io.EOF {
		return false, err
	}
	if len(names) > 0 && !merge {
		return false, fmt.Errorf("%s: %w (it holds %s): unpack into a new or empty directory, or merge into this one (--merge)",
			dir, ErrNotEmpty, names[0])
	}
	return len(names) == 0, nil
}

// UnpackFile unpacks the image file (or standard input for "-") into dir;
// errors name the image. A missing image creates nothing.
func UnpackFile(image, dir string, o UnpackOptions) (*Stats, error) {
	var r io.Reader = os.Stdin
	if image != "-" {
		f, err := os.Open(image)
		if err != nil {
			return nil, err
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
// ("" for the root itself). It refuses absolute paths, ".." components
// and names of PATH_MAX bytes or more.
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

func workers(n int) int {
	if n <= 0 {
		n = min(8, max(2, runtime.GOMAXPROCS(0)))
	}
	return n
}
