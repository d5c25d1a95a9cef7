package nodesync

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"sync"

	"golang.org/x/sys/unix"
)

// tree is the node's root. It is opened through an os.Root, and every
// path below is then resolved one component at a time with O_NOFOLLOW
// on directory descriptors: no symlink in the node's tree is ever
// followed, absolute or relative, so nothing sync writes lands anywhere
// but at its own path.
type tree struct {
	root *os.Root
	top  *os.File
	fd   int // top's descriptor
	// mu guards dirs, the open directories by path ("/" is fd).
	mu   sync.Mutex
	dirs map[string]int
}

func openTree(dir string) (*tree, error) {
	r, err := os.OpenRoot(dir)
	if err != nil {
		return nil, err
	}
	top, err := r.Open(".")
	if err != nil {
		r.Close()
		return nil, err
	}
	fd := int(top.Fd())
	return &tree{root: r, top: top, fd: fd, dirs: map[string]int{"/": fd}}, nil
}

func (t *tree) close() {
	t.mu.Lock()
	t.drop()
	t.mu.Unlock()
	t.top.Close()
	t.root.Close()
}

// drop closes the cached directories (not the root); t.mu held.
func (t *tree) drop() {
	for p, fd := range t.dirs {
		if p != "/" {
			unix.Close(fd)
		}
	}
	t.dirs = map[string]int{"/": t.fd}
}

// trim bounds the cache; called between entries only, when no cached
// descriptor is in use.
func (t *tree) trim() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.dirs) > 2048 {
		t.drop()
	}
}

// forget closes the cached descriptors of path and below (it was removed
// or replaced).
func (t *tree) forget(path string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for p, fd := range t.dirs {
		if p != "/" && (p == path || strings.HasPrefix(p, path+"/")) {
			unix.Close(fd)
			delete(t.dirs, p)
		}
	}
}

// dir returns a descriptor of the directory at path.
func (t *tree) dir(path string) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.dirLocked(path)
}

func (t *tree) dirLocked(path string) (int, error) {
	if fd, ok := t.dirs[path]; ok {
		return fd, nil
	}
	pfd, base, err := t.parentLocked(path)
	if err != nil {
		return -1, err
	}
	fd, err := unix.Openat(pfd, base, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		if errors.Is(err, unix.ELOOP) || errors.Is(err, unix.ENOTDIR) {
			return -1, fmt.Errorf("%s is not a directory (a symlink?): refusing to go through it", path)
		}
		return -1, fmt.Errorf("%s: %w", path, err)
	}
	t.dirs[path] = fd
	return fd, nil
}

// parent returns the descriptor of path's directory and path's last
// component.
func (t *tree) parent(path string) (int, string, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.parentLocked(path)
}

func (t *tree) parentLocked(path string) (int, string, error) {
	if path == "/" {
		return -1, "", errors.New("the root has no parent")
	}
	pfd, err := t.dirLocked(parentOf(path))
	return pfd, path[strings.LastIndexByte(path, '/')+1:], err
}

func (t *tree) lstat(path string, st *unix.Stat_t) error {
	if path == "/" {
		return unix.Fstat(t.fd, st)
	}
	pfd, base, err := t.parent(path)
	if err != nil {
		return err
	}
	return unix.Fstatat(pfd, base, st, unix.AT_SYMLINK_NOFOLLOW)
}

// openFile opens a regular file for reading, not following a symlink.
func (t *tree) openFile(path string) (*os.File, error) {
	pfd, base, err := t.parent(path)
	if err != nil {
		return nil, err
	}
	fd, err := unix.Openat(pfd, base, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return os.NewFile(uintptr(fd), path), nil
}

// hash returns the sha256 of a local regular file.
func (t *tree) hash(path string, buf []byte) (Sum, int64, error) {
	f, err := t.openFile(path)
	if err != nil {
		return Sum{}, 0, err
	}
	defer f.Close()
	h := newHasher()
	n, err := io.CopyBuffer(h, f, buf)
	if err != nil {
		return Sum{}, n, fmt.Errorf("%s: %w", path, err)
	}
	return h.sum(), n, nil
}

// listXattrs returns the xattrs of a file named by path (not following
// a symlink), sorted by name.
func listXattrs(path string) ([]Xattr, error) {
	return readXattrs(func(b []byte) (int, error) { return unix.Llistxattr(path, b) },
		func(name string, b []byte) (int, error) { return unix.Lgetxattr(path, name, b) })
}

// fdXattrs returns the xattrs of an open file, sorted by name.
func fdXattrs(fd int) ([]Xattr, error) {
	return readXattrs(func(b []byte) (int, error) { return unix.Flistxattr(fd, b) },
		func(name string, b []byte) (int, error) { return unix.Fgetxattr(fd, name, b) })
}

func readXattrs(list func([]byte) (int, error), get func(string, []byte) (int, error)) ([]Xattr, error) {
	buf := make([]byte, 256)
	var n int
	var err error
	for {
		n, err = list(buf)
		if errors.Is(err, unix.ERANGE) {
			buf = make([]byte, 2*len(buf)+4096)
			continue
		}
		break
	}
	if errors.Is(err, unix.ENOTSUP) || err == nil && n == 0 {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []Xattr
	for _, name := range strings.Split(strings.TrimRight(string(buf[:n]), "\x00"), "\x00") {
		val := make([]byte, 128)
		for {
			m, err := get(name, val)
			if errors.Is(err, unix.ERANGE) {
				val = make([]byte, 2*len(val)+4096)
				continue
			}
			if errors.Is(err, unix.ENODATA) {
				val = nil
				break
			}
			if err != nil {
				return nil, err
			}
			val = val[:m]
			break
		}
		if val != nil {
			out = append(out, Xattr{name, val})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

func sameXattrs(a, b []Xattr) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Name != b[i].Name || string(a[i].Value) != string(b[i].Value) {
			return false
		}
	}
	return true
}

// setXattrs makes fd's xattrs want, given that it has have.
func setXattrs(fd int, want, have []Xattr) error {
	keep := map[string]bool{}
	for _, x := range want {
		keep[x.Name] = true
	}
	for _, x := range have {
		if !keep[x.Name] {
			if err := unix.Fremovexattr(fd, x.Name); err != nil && !errors.Is(err, unix.ENODATA) {
				return fmt.Errorf("removing xattr %s: %w", x.Name, err)
			}
		}
	}
	old := map[string]string{}
	for _, x := range have {
		old[x.Name] = string(x.Value)
	}
	for _, x := range want {
		if v, ok := old[x.Name]; ok && v == string(x.Value) {
			continue
		}
		if err := unix.Fsetxattr(fd, x.Name, x.Value, 0); err != nil {
			return fmt.Errorf("setting xattr %s: %w", x.Name, err)
		}
	}
	return nil
}

// readNames lists a directory's entries (without . and ..).
func readNames(dirfd int) ([]string, error) {
	fd, err := unix.Openat(dirfd, ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	defer unix.Close(fd)
	buf := make([]byte, 32<<10)
	var names []string
	for {
		n, err := unix.Getdents(fd, buf)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return nil, err
		}
		if n <= 0 {
			return names, nil
		}
		_, _, names = unix.ParseDirent(buf[:n], -1, names)
	}
}
