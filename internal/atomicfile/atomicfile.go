package atomicfile

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/google/renameio/v2"
)

// File is a file being written; Commit puts it in place, Cleanup (always
// deferred) removes it when Commit was not reached.
type File struct {
	*renameio.PendingFile
	name string   // the target, for errors
	dir  *os.File // the target's directory, synced by Commit
	root *os.Root // non-nil when created by CreateIn
}

// Create starts writing path with permissions perm (not widened by the
// umask's absence: the file is created perm & ^umask, then set to perm).
func Create(path string, perm os.FileMode) (*File, error) {
	dir := filepath.Dir(path)
	d, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	pf, err := renameio.NewPendingFile(path, renameio.WithTempDir(dir), renameio.WithStaticPermissions(perm))
	if err != nil {
		d.Close()
		return nil, err
	}
	return &File{PendingFile: pf, name: path, dir: d}, nil
}

// CreateIn starts writing name inside root: every component of name is
// resolved inside root (a symlink cannot lead out of it), and the
// temporary file sits in name's own directory so the rename never crosses
// a mount point.
func CreateIn(root *os.Root, name string, perm os.FileMode) (*File, error) {
	sub, err := root.OpenRoot(filepath.Dir(name))
	if err != nil {
		return nil, err
	}
	d, err := sub.Open(".")
	if err != nil {
		sub.Close()
		return nil, err
	}
	pf, err := renameio.NewPendingFile(filepath.Base(name), renameio.WithRoot(sub), renameio.WithStaticPermissions(perm))
	if err != nil {
		d.Close()
		sub.Close()
		return nil, err
	}
	return &File{PendingFile: pf, name: name, dir: d, root: sub}, nil
}

// Commit fsyncs the file, renames it over the target and fsyncs the
// directory.
func (f *File) Commit() error {
	defer f.release()
	if err := f.CloseAtomicallyReplace(); err != nil {
		return fmt.Errorf("%s: %w", f.name, err)
	}
	if err := f.dir.Sync(); err != nil {
		return fmt.Errorf("%s: syncing its directory: %w", f.name, err)
	}
	return nil
}

// Cleanup removes the temporary file unless Commit succeeded.
func (f *File) Cleanup() error {
	err := f.PendingFile.Cleanup()
	f.release()
	return err
}

func (f *File) release() {
	if f.dir != nil {
		f.dir.Close()
		f.dir = nil
	}
	if f.root != nil {
		f.root.Close()
		f.root = nil
	}
}

// WriteFile replaces path with data, atomically and durably.
func WriteFile(path string, data []byte, perm os.FileMode) error {
	f, err := Create(path, perm)
	if err != nil {
		return err
	}
	return write(f, data)
}

// WriteFileIn replaces name inside root with data, atomically and durably.
func WriteFileIn(root *os.Root, name string, data []byte, perm os.FileMode) error {
	f, err := CreateIn(root, name, perm)
	if err != nil {
		return err
	}
	return write(f, data)
}

func write(f *File, data []byte) error {
	defer f.Cleanup()
	if _, err := f.Write(data); err != nil {
		return fmt.Errorf("%s: %w", f.name, err)
	}
	return f.Commit()
}

// SyncDir fsyncs a directory, making the renames and creations in it
// durable.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("%s: sync: %w", dir, err)
	}
	return nil
}

// Rename renames oldpath to newpath and fsyncs the directories of both.
func Rename(oldpath, newpath string) error {
	if err := os.Rename(oldpath, newpath); err != nil {
		return err
	}
	if err := SyncDir(filepath.Dir(newpath)); err != nil {
		return err
	}
	if od := filepath.Dir(oldpath); od != filepath.Dir(newpath) {
		return SyncDir(od)
	}
	return nil
}
