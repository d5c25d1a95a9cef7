package cli

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/clonecd/clonecd/internal/atomicfile"
	"github.com/clonecd/clonecd/progress"
)

// warner prints warnings of a command with a progress meter: on a
// terminal the meter's line is cleared first.
func warner(w io.Writer, prefix string) func(string) {
	if progress.IsTerminal(w) {
		return func(s string) { fmt.Fprintf(w, "\r\033[K%s: warning: %s\n", prefix, s) }
	}
	return func(s string) { fmt.Fprintf(w, "%s: warning: %s\n", prefix, s) }
}

// statWriter stats w when it is a file (standard output redirected).
func statWriter(w io.Writer) (os.FileInfo, error) {
	f, ok := w.(*os.File)
	if !ok {
		return nil, os.ErrInvalid
	}
	return f.Stat()
}

// checkOutput refuses, before any work, an output path that cannot be
// written as a file: an existing directory, or one in a directory that
// does not exist.
func checkOutput(path string) error {
	if fi, err := os.Stat(path); err == nil && fi.IsDir() {
		return fmt.Errorf("output %s is a directory: give a file name", path)
	}
	dir := filepath.Dir(path)
	if fi, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("output %s: directory %s does not exist", path, dir)
	} else if err != nil {
		return fmt.Errorf("output %s: %w", path, err)
	} else if !fi.IsDir() {
		return fmt.Errorf("output %s: %s is not a directory", path, dir)
	}
	return nil
}

// openImage opens an image argument: a file, or out.Stdin for "-" (which
// closing leaves open). total is the file's size when it is a regular
// file, else 0.
func openImage(out Output, name string) (rc io.ReadCloser, total int64, err error) {
	if name == "-" {
		in := out.Stdin
		if in == nil {
			in = os.Stdin
		}
		if fi, err := statReader(in); err == nil && fi.Mode().IsRegular() {
			total = fi.Size()
		}
		return io.NopCloser(in), total, nil
	}
	f, err := os.Open(name)
	if err != nil {
		return nil, 0, err
	}
	if fi, err := f.Stat(); err == nil && fi.Mode().IsRegular() {
		total = fi.Size()
	}
	return f, total, nil
}

func statReader(r io.Reader) (os.FileInfo, error) {
	f, ok := r.(*os.File)
	if !ok {
		return nil, os.ErrInvalid
	}
	return f.Stat()
}

// writeOutput runs write on the output file path, written beside it and
// renamed over it only when write succeeded (atomicfile), or on standard
// output for "-". A path that is a device or FIFO (/dev/null) is written
// in place.
func writeOutput(out Output, path string, perm os.FileMode, write func(io.Writer) error) error {
	if path == "-" {
		return write(out.Stdout)
	}
	if fi, err := os.Stat(path); err == nil && !fi.Mode().IsRegular() && !fi.IsDir() {
		f, err := os.OpenFile(path, os.O_WRONLY, 0)
		if err != nil {
			return err
		}
		if err := write(f); err != nil {
			f.Close()
			return err
		}
		return f.Close()
	}
	if err := checkOutput(path); err != nil {
		return err
	}
	f, err := atomicfile.Create(path, perm)
	if err != nil {
		return err
	}
	defer f.Cleanup()
	if err := write(f); err != nil {
		return err
	}
	return f.Commit()
}
