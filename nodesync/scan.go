package nodesync

import (
	"errors"
	"fmt"
	"runtime"
	"sort"
	"strconv"
	"sync"

	"golang.org/x/sys/unix"
)

// scanned is the node's tree as sync found it.
type scanned struct {
	local  map[string]*unix.Stat_t // entries sync may change, by path
	paths  []string                // the same, sorted (parents before children)
	xattrs map[string][]Xattr      // xattrs of regular files and directories that have some
	left   map[string]string       // entries left alone, and why
	temps  []string                // temporary files an interrupted sync left
	pinned map[string]bool         // directories holding something left alone
}

// walkJob is a directory to list: its path, an open descriptor (closed
// by the walker) and its filesystem.
type walkJob struct {
	path string
	fd   int
	dev  uint64
}

// walker lists a tree with a few goroutines (stat and xattr calls are
// most of a sync that finds nothing to do).
type walker struct {
	g *guard
	// mu guards the fields below it; cond signals new jobs or the end.
	mu      sync.Mutex
	cond    *sync.Cond
	s       *scanned
	queue   []walkJob
	pending int // directories queued or being listed
	err     error
}

// walk lists the tree, not entering what the guard leaves alone nor
// another filesystem (unless it is one of CrossMounts).
func (t *tree) walk(g *guard) (*scanned, error) {
	s := &scanned{local: map[string]*unix.Stat_t{}, xattrs: map[string][]Xattr{},
		left: map[string]string{}, pinned: map[string]bool{}}
	st := new(unix.Stat_t)
	if err := unix.Fstat(t.fd, st); err != nil {
		return nil, err
	}
	s.local["/"] = st
	s.paths = append(s.paths, "/")
	xs, err := fdXattrs(t.fd)
	if err != nil {
		return nil, fmt.Errorf("/: xattrs: %w", err)
	}
	if len(xs) > 0 {
		s.xattrs["/"] = xs
	}
	fd, err := unix.Openat(t.fd, ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	w := &walker{g: g, s: s, pending: 1, queue: []walkJob{{"/", fd, st.Dev}}}
	w.cond = sync.NewCond(&w.mu)
	var wg sync.WaitGroup
	for range max(2, runtime.GOMAXPROCS(0)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w.run()
		}()
	}
	wg.Wait()
	if w.err != nil {
		return nil, w.err
	}
	sort.Strings(s.paths)
	for path := range s.left {
		for p := parentOf(path); !s.pinned[p]; p = parentOf(p) {
			s.pinned[p] = true
			if p == "/" {
				break
			}
		}
	}
	sort.Strings(s.temps)
	return s, nil
}

func (w *walker) run() {
	w.mu.Lock()
	defer w.mu.Unlock()
	for {
		for len(w.queue) == 0 && w.pending > 0 {
			w.cond.Wait()
		}
		if w.pending == 0 {
			return
		}
		j := w.queue[len(w.queue)-1]
		w.queue = w.queue[:len(w.queue)-1]
		var err error
		if w.err == nil {
			w.mu.Unlock()
			var out []found
			var subdirs []walkJob
			out, subdirs, err = w.dir(j)
			w.mu.Lock()
			w.add(out, subdirs)
		}
		unix.Close(j.fd)
		if err != nil && w.err == nil {
			w.err = err
		}
		w.pending--
		w.cond.Broadcast()
	}
}

// add records what a directory holds and queues its subdirectories
// (w.mu held).
func (w *walker) add(out []found, subdirs []walkJob) {
	s := w.s
	for _, f := range out {
		switch {
		case f.temp:
			s.temps = append(s.temps, f.path)
		case f.why != free:
			s.left[f.path] = f.why
		default:
			s.local[f.path] = f.st
			s.paths = append(s.paths, f.path)
			if len(f.xattrs) > 0 {
				s.xattrs[f.path] = f.xattrs
			}
		}
	}
	w.pending += len(subdirs)
	w.queue = append(w.queue, subdirs...)
}

// found is one entry of a directory.
type found struct {
	path   string
	st     *unix.Stat_t
	xattrs []Xattr
	why    string
	temp   bool
}

// dir lists one directory; the caller closes its descriptor, and the
// descriptors of the subdirectories it returns once they are listed.
func (w *walker) dir(j walkJob) ([]found, []walkJob, error) {
	names, err := readNames(j.fd)
	if err != nil {
		return nil, nil, fmt.Errorf("reading directory %s: %w", j.path, err)
	}
	out := make([]found, 0, len(names))
	var subdirs []walkJob
	proc := "/proc/self/fd/" + strconv.Itoa(j.fd) + "/"
	for _, name := range names {
		f := found{path: childPath(j.path, name), st: new(unix.Stat_t)}
		if err := unix.Fstatat(j.fd, name, f.st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			if errors.Is(err, unix.ENOENT) {
				continue
			}
			return out, subdirs, fmt.Errorf("%s: %w", f.path, err)
		}
		typ := f.st.Mode & unix.S_IFMT
		isDir := typ == unix.S_IFDIR
		switch {
		case isTemp(name) && !isDir:
			f.temp = true
		default:
			f.why = w.g.check(f.path, isDir)
			if f.why == free && isDir && f.st.Dev != j.dev && !w.g.cross[f.path] {
				f.why = mounted
			}
		}
		if f.why == free && !f.temp && (isDir || typ == unix.S_IFREG) {
			if f.xattrs, err = listXattrs(proc + name); err != nil {
				return out, subdirs, fmt.Errorf("%s: xattrs: %w", f.path, err)
			}
		}
		if f.why == free && !f.temp && isDir {
			cfd, err := unix.Openat(j.fd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
			if err != nil {
				return out, subdirs, fmt.Errorf("%s: %w", f.path, err)
			}
			subdirs = append(subdirs, walkJob{f.path, cfd, f.st.Dev})
		}
		out = append(out, f)
	}
	return out, subdirs, nil
}

func childPath(dir, name string) string {
	if dir == "/" {
		return "/" + name
	}
	return dir + "/" + name
}

// localType maps a stat mode to an entry type.
func localType(mode uint32) Type {
	switch mode & unix.S_IFMT {
	case unix.S_IFDIR:
		return Dir
	case unix.S_IFREG:
		return Regular
	case unix.S_IFLNK:
		return Symlink
	case unix.S_IFCHR:
		return Char
	case unix.S_IFBLK:
		return Block
	case unix.S_IFIFO:
		return Fifo
	case unix.S_IFSOCK:
		return Socket
	}
	return 0
}

// modeBits maps an entry type to its stat type bits.
func modeBits(t Type) uint32 {
	switch t {
	case Dir:
		return unix.S_IFDIR
	case Regular, Hardlink:
		return unix.S_IFREG
	case Symlink:
		return unix.S_IFLNK
	case Char:
		return unix.S_IFCHR
	case Block:
		return unix.S_IFBLK
	case Fifo:
		return unix.S_IFIFO
	case Socket:
		return unix.S_IFSOCK
	}
	return 0
}
