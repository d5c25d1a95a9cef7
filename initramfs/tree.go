package initramfs

import (
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"syscall"

	"github.com/clonecd/clonecd/cpio"
	"github.com/clonecd/clonecd/progress"
	"golang.org/x/sys/unix"
)

// entry is one file of the archive: a header and where its data comes
// from (a host file or bytes).
type entry struct {
	hdr  cpio.Header
	src  string
	data []byte
}

// tree is the initramfs being assembled, keyed by absolute path.
type tree struct {
	m map[string]*entry
}

func newTree() *tree { return &tree{m: map[string]*entry{}} }

func clean(p string) string { return path.Clean("/" + p) }

func (t *tree) has(p string) bool { _, ok := t.m[clean(p)]; return ok }

func (t *tree) put(p string, e *entry) {
	p = clean(p)
	t.mkdirAll(path.Dir(p))
	e.hdr.Name = strings.TrimPrefix(p, "/")
	t.m[p] = e
}

func (t *tree) mkdirAll(p string) {
	p = clean(p)
	if p == "/" {
		return
	}
	if e, ok := t.m[p]; ok && e.hdr.Type() == cpio.TypeDir {
		return
	}
	t.mkdirAll(path.Dir(p))
	t.m[p] = &entry{hdr: cpio.Header{Name: strings.TrimPrefix(p, "/"), Mode: cpio.TypeDir | 0o755, Nlink: 2}}
}

func (t *tree) dir(p string, perm uint32) {
	t.mkdirAll(p)
	t.m[clean(p)].hdr.Mode = cpio.TypeDir | perm
}

func (t *tree) symlink(p, target string) {
	t.put(p, &entry{hdr: cpio.Header{Mode: cpio.TypeSymlink | 0o777, Nlink: 1, Linkname: target}})
}

func (t *tree) bytes(p string, perm uint32, data []byte) {
	t.put(p, &entry{hdr: cpio.Header{Mode: cpio.TypeReg | perm, Nlink: 1, Size: int64(len(data))}, data: data})
}

func (t *tree) node(p string, typ uint32, perm uint32, major, minor uint32) {
	t.put(p, &entry{hdr: cpio.Header{Mode: typ | perm, Nlink: 1, Rdevmajor: major, Rdevminor: minor}})
}

// file adds the host file src (symlinks followed) at p.
func (t *tree) file(p, src string) error {
	st, err := os.Stat(src)
	if err != nil {
		return err
	}
	if !st.Mode().IsRegular() {
		return fmt.Errorf("%s is not a regular file", src)
	}
	if st.Size() > cpio.MaxSize {
		return fmt.Errorf("%s: %w", src, cpio.ErrTooLarge)
	}
	t.put(p, &entry{hdr: cpio.Header{Mode: cpio.TypeReg | uint32(st.Mode().Perm()), Nlink: 1,
		Size: st.Size(), Mtime: st.ModTime().Unix()}, src: src})
	return nil
}

// copyTree adds the host tree src at p as it is: files, directories,
// symlinks (not followed), device nodes, FIFOs. Hardlinked files become
// independent copies.
func (t *tree) copyTree(p, src string) error {
	return filepath.WalkDir(src, func(hp string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, hp)
		dest := path.Join(p, filepath.ToSlash(rel))
		fi, err := d.Info()
		if err != nil {
			return err
		}
		h := cpio.Header{Nlink: 1, Mtime: fi.ModTime().Unix()}
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			h.Mode = st.Mode
			h.Uid, h.Gid = int(st.Uid), int(st.Gid)
			h.Rdevmajor, h.Rdevminor = unix.Major(st.Rdev), unix.Minor(st.Rdev)
		}
		e := &entry{hdr: h}
		switch {
		case fi.IsDir():
			if clean(dest) == "/" {
				return nil
			}
			e.hdr.Nlink = 2
		case fi.Mode()&fs.ModeSymlink != 0:
			if e.hdr.Linkname, err = os.Readlink(hp); err != nil {
				return err
			}
		case fi.Mode().IsRegular():
			if fi.Size() > cpio.MaxSize {
				return fmt.Errorf("%s: %w", hp, cpio.ErrTooLarge)
			}
			e.hdr.Size = fi.Size()
			e.src = hp
		case fi.Mode()&fs.ModeSocket != 0:
			return nil
		}
		t.put(dest, e)
		return nil
	})
}

// write streams the tree as newc, parents before children.
func (t *tree) write(w io.Writer, meter *progress.Meter) (int, error) {
	names := make([]string, 0, len(t.m))
	for p := range t.m {
		names = append(names, p)
	}
	sort.Strings(names)
	cw := cpio.NewWriter(w)
	buf := make([]byte, 256<<10)
	for i, p := range names {
		e := t.m[p]
		h := e.hdr
		h.Ino = uint32(i + 1)
		if err := cw.WriteHeader(&h); err != nil {
			return 0, fmt.Errorf("%s: %w", p, err)
		}
		switch {
		case e.data != nil:
			if _, err := cw.Write(e.data); err != nil {
				return 0, fmt.Errorf("%s: %w", p, err)
			}
		case e.src != "":
			f, err := os.Open(e.src)
			if err != nil {
				return 0, err
			}
			n, err := io.CopyBuffer(onlyWriter{cw}, io.LimitReader(f, h.Size), buf)
			f.Close()
			if err != nil {
				return 0, fmt.Errorf("%s from %s: %w", p, e.src, err)
			}
			if n != h.Size {
				return 0, fmt.Errorf("%s changed size while being read (%d of %d bytes)", e.src, n, h.Size)
			}
		}
		meter.Add(h.Size, 1)
	}
	return len(names), cw.Close()
}

type onlyWriter struct{ w io.Writer }

func (o onlyWriter) Write(p []byte) (int, error) { return o.w.Write(p) }
