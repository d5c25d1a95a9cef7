package clone

// The new root is the image's tree, and its symlinks may be absolute
// (etc -> /etc, usr/local -> /opt/local): once the node runs they point
// inside its own root, but followed by the cloner they lead into the
// cloner's tree, or the admin's host for `clonecd clone --target`. So
// every read and write the identity, bootloader and safety steps make in
// the new root goes through an *os.Root, which never leaves its directory
// (an absolute or escaping symlink is an error, even if swapped in during
// the walk), on a path first resolved the way chroot(2) resolves it: an
// absolute link starts again at the new root, ".." stops there. Bind
// mounts onto the root's dev, proc and sys are made on the directory
// opened inside the root, and refused when the image has a symlink there.

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/clonecd/clonecd/internal/atomicfile"
)

// maxLinks bounds the symlinks followed resolving one path, as the
// kernel's ELOOP limit does.
const maxLinks = 40

// resolveIn resolves name inside root as the node will see it: every
// symlink is followed (but the last component's unless followLast), an
// absolute target starts again at root, ".." never climbs above it. The
// result is relative to root, "." for root itself. Components that do not
// exist are kept as they are (MkdirAll makes them).
func resolveIn(root *os.Root, name string, followLast bool) (string, error) {
	var done []string
	todo := strings.Split(name, "/")
	links := 0
	for len(todo) > 0 {
		c := todo[0]
		todo = todo[1:]
		switch c {
		case "", ".":
			continue
		case "..":
			if len(done) > 0 {
				done = done[:len(done)-1]
			}
			continue
		}
		p := path.Join(append(done, c)...)
		if len(todo) == 0 && !followLast {
			done = append(done, c)
			break
		}
		fi, err := root.Lstat(p)
		if errors.Is(err, fs.ErrNotExist) {
			done = append(done, c)
			continue
		}
		if err != nil {
			return "", err
		}
		if fi.Mode()&fs.ModeSymlink == 0 {
			done = append(done, c)
			continue
		}
		if links++; links > maxLinks {
			return "", fmt.Errorf("%s: too many levels of symbolic links in the new root", name)
		}
		target, err := root.Readlink(p)
		if err != nil {
			return "", err
		}
		if strings.HasPrefix(target, "/") {
			done = nil
		}
		todo = append(strings.Split(target, "/"), todo...)
	}
	if len(done) == 0 {
		return ".", nil
	}
	return path.Join(done...), nil
}

// writeIn replaces name inside root with data (temporary file, fsync,
// rename, fsync of the directory); its directories are made as needed. A
// symlink at name itself is replaced, not followed.
func writeIn(root *os.Root, name string, data []byte, perm os.FileMode) error {
	p, err := mkParentIn(root, name)
	if err != nil {
		return err
	}
	if err := atomicfile.WriteFileIn(root, p, data, perm); err != nil {
		return fmt.Errorf("writing /%s in the new root: %w", name, err)
	}
	return nil
}

// copyIn is writeIn with the content read from in.
func copyIn(root *os.Root, name string, in io.Reader, perm os.FileMode) error {
	p, err := mkParentIn(root, name)
	if err != nil {
		return err
	}
	f, err := atomicfile.CreateIn(root, p, perm)
	if err != nil {
		return fmt.Errorf("writing /%s in the new root: %w", name, err)
	}
	defer f.Cleanup()
	if _, err := io.Copy(f, in); err != nil {
		return fmt.Errorf("writing /%s in the new root: %w", name, err)
	}
	if err := f.Commit(); err != nil {
		return fmt.Errorf("writing /%s in the new root: %w", name, err)
	}
	return nil
}

// mkParentIn resolves name's directory inside root, makes it, and returns
// the resolved path of name.
func mkParentIn(root *os.Root, name string) (string, error) {
	dir, err := resolveIn(root, path.Dir(name), true)
	if err != nil {
		return "", err
	}
	if err := root.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("making /%s in the new root: %w", path.Dir(name), err)
	}
	return path.Join(dir, path.Base(name)), nil
}

// readIn reads name inside root, following symlinks as the node would.
func readIn(root *os.Root, name string) ([]byte, error) {
	p, err := resolveIn(root, name, true)
	if err != nil {
		return nil, err
	}
	return root.ReadFile(p)
}

// statIn stats name inside root, following symlinks as the node would.
func statIn(root *os.Root, name string) (os.FileInfo, error) {
	p, err := resolveIn(root, name, true)
	if err != nil {
		return nil, err
	}
	return root.Stat(p)
}

// symlinkIn makes name inside root a symlink to target, replacing what is
// there.
func symlinkIn(root *os.Root, target, name string) error {
	p, err := mkParentIn(root, name)
	if err != nil {
		return err
	}
	if err := root.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return root.Symlink(target, p)
}

// mountIn mounts src (a device, or a directory with MS_BIND) onto the
// directory rel of the new root (made when missing). rel must be a real
// directory inside the root: a symlink there (an image with
// dev -> /somewhere) is refused. The mount is made on the directory opened
// through the root, never on a path the kernel would resolve again.
func (r *run) mountIn(src, rel, fstype string, flags uintptr) error {
	fi, err := r.newRoot.Lstat(rel)
	if errors.Is(err, fs.ErrNotExist) {
		if err := r.newRoot.MkdirAll(rel, 0o755); err != nil {
			return fmt.Errorf("making /%s in the new root: %w", rel, err)
		}
		fi, err = r.newRoot.Lstat(rel)
	}
	if err != nil {
		return err
	}
	if fi.Mode()&fs.ModeSymlink != 0 {
		target, _ := r.newRoot.Readlink(rel)
		return fmt.Errorf("the image's /%s is a symlink (to %s): refusing to mount %s there", rel, target, src)
	}
	if !fi.IsDir() {
		return fmt.Errorf("the image's /%s is not a directory: refusing to mount %s there", rel, src)
	}
	d, err := r.newRoot.Open(rel)
	if err != nil {
		return err
	}
	defer d.Close()
	st, err := d.Stat()
	if err != nil {
		return err
	}
	if !os.SameFile(fi, st) {
		return fmt.Errorf("/%s in the new root changed while being mounted on", rel)
	}
	on := fmt.Sprintf("/proc/self/fd/%d", d.Fd())
	if err := unix.Mount(src, on, fstype, flags, ""); err != nil {
		return fmt.Errorf("mounting %s on /%s of the new root: %w", src, rel, err)
	}
	r.mounts = append(r.mounts, filepath.Join(r.root, rel))
	return nil
}

// copyOptions tune copyTree.
type copyOptions struct {
	// skip leaves out paths (relative to the source directory, slash
	// separated); a skipped directory is left out whole.
	skip func(rel string) bool
	// durable writes each file with fsync and a directory fsync
	// (atomicfile); otherwise files are renamed into place and the caller
	// syncs the whole filesystem once (a fresh one: restoreBoot).
	durable bool
}

// copyTree copies directories, regular files and symlinks from srcDir of
// src to dstDir inside dst, merging into what is there, keeping modes and
// owners. Each file is written beside its target and renamed over it, so a
// cut leaves the old or the new file. Symlinks are copied, never followed.
func copyTree(src fs.FS, srcDir string, dst *os.Root, dstDir string, o copyOptions) error {
	if _, err := fs.Stat(src, srcDir); err != nil {
		return err
	}
	base, err := resolveIn(dst, dstDir, true)
	if err != nil {
		return err
	}
	return fs.WalkDir(src, srcDir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel := strings.TrimPrefix(strings.TrimPrefix(p, srcDir), "/")
		if rel != "" && o.skip != nil && o.skip(rel) {
			if d.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		out := path.Join(base, rel)
		fi, err := d.Info()
		if err != nil {
			return err
		}
		switch {
		case d.IsDir():
			if err := dst.MkdirAll(out, fi.Mode().Perm()); err != nil {
				return err
			}
		case fi.Mode()&fs.ModeSymlink != 0:
			target, err := fs.ReadLink(src, p)
			if err != nil {
				return err
			}
			if err := dst.Remove(out); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return err
			}
			if err := dst.Symlink(target, out); err != nil {
				return err
			}
		case fi.Mode().IsRegular():
			if err := copyFileTo(src, p, dst, out, fi.Mode().Perm(), o.durable); err != nil {
				return err
			}
		default:
			return nil
		}
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			dst.Lchown(out, int(st.Uid), int(st.Gid))
		}
		return nil
	})
}

// copyFileTo copies one regular file into dst by a temporary file renamed
// over out.
func copyFileTo(src fs.FS, p string, dst *os.Root, out string, perm os.FileMode, durable bool) error {
	in, err := src.Open(p)
	if err != nil {
		return err
	}
	defer in.Close()
	if durable {
		f, err := atomicfile.CreateIn(dst, out, perm)
		if err != nil {
			return err
		}
		defer f.Cleanup()
		if _, err := io.Copy(f, in); err != nil {
			return fmt.Errorf("writing %s: %w", out, err)
		}
		return f.Commit()
	}
	tmp := out + ".clonecd-new"
	f, err := dst.OpenFile(tmp, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, perm)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, in); err != nil {
		f.Close()
		dst.Remove(tmp)
		return fmt.Errorf("writing %s: %w", out, err)
	}
	f.Chmod(perm) // past the umask; FAT refuses what it cannot store, which is no reason to fail
	if err := f.Close(); err != nil {
		return err
	}
	return dst.Rename(tmp, out)
}

// syncFS flushes the filesystem holding dir (syncfs(2)).
func syncFS(dir string) error {
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	if err := unix.Syncfs(fd); err != nil {
		return fmt.Errorf("syncing %s: %w", dir, err)
	}
	return nil
}
