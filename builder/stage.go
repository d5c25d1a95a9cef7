package builder

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// MaxFileSize is the largest file an ISO written here can hold: ISO 9660
// extents are 32-bit and go-diskfs writes no multi-extent files, so a file
// of 4 GiB or more would be silently truncated. We refuse it instead.
const MaxFileSize = 1<<32 - 1

// Stage is a fresh workspace directory that becomes the ISO's root.
// go-diskfs' Finalize deletes it and gives the ISO root its mode, so it is
// created 0755 next to the output (same filesystem, so large inputs are
// hard-linked rather than copied).
type Stage struct {
	Dir string
}

// NewStage creates an empty 0755 workspace inside parent.
func NewStage(parent string) (*Stage, error) {
	dir, err := os.MkdirTemp(parent, ".clonecd-iso-")
	if err != nil {
		return nil, fmt.Errorf("creating ISO workspace in %s: %w", parent, err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("ISO workspace %s: %w", dir, err)
	}
	return &Stage{Dir: dir}, nil
}

// Remove deletes the workspace (hard links only: the originals stay).
func (s *Stage) Remove() error { return os.RemoveAll(s.Dir) }

func (s *Stage) path(dest string) (string, error) {
	clean := filepath.Clean("/" + dest)
	if clean == "/" || strings.Contains(dest, "\x00") {
		return "", fmt.Errorf("bad ISO path %q", dest)
	}
	p := filepath.Join(s.Dir, clean)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return "", fmt.Errorf("ISO workspace: %w", err)
	}
	return p, nil
}

// WriteFile puts data at dest (a path inside the ISO).
func (s *Stage) WriteFile(dest string, data []byte, mode os.FileMode) error {
	p, err := s.path(dest)
	if err != nil {
		return err
	}
	if err := os.WriteFile(p, data, mode); err != nil {
		return fmt.Errorf("staging %s: %w", dest, err)
	}
	return os.Chmod(p, mode)
}

// Link puts the regular file src at dest, hard-linked when possible and
// copied otherwise (another filesystem). Files of 4 GiB or more are
// refused with an error naming src.
func (s *Stage) Link(src, dest string) (int64, error) {
	st, err := os.Stat(src)
	if err != nil {
		return 0, err
	}
	if !st.Mode().IsRegular() {
		return 0, fmt.Errorf("%s: not a regular file", src)
	}
	if err := checkSize(src, st.Size()); err != nil {
		return 0, err
	}
	p, err := s.path(dest)
	if err != nil {
		return 0, err
	}
	if err := os.Link(src, p); err == nil {
		return st.Size(), nil
	}
	return st.Size(), copyFile(src, p)
}

func checkSize(name string, size int64) error {
	if size > MaxFileSize {
		return fmt.Errorf("%s is %d bytes: ISO 9660 files must be smaller than 4 GiB (split the image or use the network cloner)", name, size)
	}
	return nil
}

func copyFile(src, dst string) (err error) {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return fmt.Errorf("staging %s: %w", src, err)
	}
	defer func() {
		if cerr := out.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("staging %s: %w", src, cerr)
		}
	}()
	if _, err := io.Copy(out, in); err != nil {
		return fmt.Errorf("copying %s: %w", src, err)
	}
	return nil
}

// checkTree refuses a tree the ISO writer cannot represent faithfully:
// files of 4 GiB or more and special files. It returns the number of files
// and their total size.
func checkTree(dir string) (files int, total int64, err error) {
	err = filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		switch {
		case fi.Mode().IsRegular():
			if err := checkSize(rel, fi.Size()); err != nil {
				return err
			}
			files++
			total += fi.Size()
		case fi.Mode()&os.ModeSymlink != 0:
		default:
			return fmt.Errorf("%s: %v is not supported on the ISO", rel, fi.Mode().Type())
		}
		return nil
	})
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return 0, 0, err
	}
	return files, total, err
}
