package nodesync

import (
	"errors"
	"fmt"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/clonecd/clonecd/internal/atomicfile"
)

// links makes each hard link the inode of its group's first path: a
// link made beside it, renamed over it.
func (s *syncer) links() {
	s.each(func(o *op) bool { return o.e.Type == Hardlink }, func(o *op) error {
		if s.isFailed(o.e.Target) {
			return fmt.Errorf("%s, of which it is a hard link, was not updated", o.e.Target)
		}
		return s.link(o)
	})
}

func (s *syncer) link(o *op) error {
	if err := s.clearDir(o); err != nil {
		return err
	}
	lfd, lbase, err := s.t.parent(o.e.Target)
	if err != nil {
		return err
	}
	pfd, base, err := s.t.parent(o.e.Path)
	if err != nil {
		return err
	}
	tmp := tempPrefix + randHex()
	s.touch(parentOf(o.e.Path))
	if err := unix.Linkat(lfd, lbase, pfd, tmp, 0); err != nil {
		return fmt.Errorf("hard link to %s: %w", o.e.Target, err)
	}
	err = unix.Renameat(pfd, tmp, pfd, base)
	// rename does nothing when both names are already the same inode.
	unix.Unlinkat(pfd, tmp, 0)
	if err != nil {
		return fmt.Errorf("rename into place: %w", err)
	}
	return nil
}

// clearDir removes the directory an entry of another type replaces.
func (s *syncer) clearDir(o *op) error {
	if o.local == nil || localType(o.local.Mode) != Dir || o.e.Type == Dir {
		return nil
	}
	return s.removeTree(o.e.Path)
}

// specials makes symlinks, devices, fifos and sockets: made beside
// their target with their owner, mode and time, renamed over it.
func (s *syncer) specials() {
	s.each(func(o *op) bool {
		return o.kind != Metadata && o.e.Type != Dir && o.e.Type != Regular && o.e.Type != Hardlink
	}, s.special)
}

func (s *syncer) special(o *op) error {
	e := o.e
	if err := s.clearDir(o); err != nil {
		return err
	}
	pfd, base, err := s.t.parent(e.Path)
	if err != nil {
		return err
	}
	tmp := tempPrefix + randHex()
	s.touch(parentOf(e.Path))
	if e.Type == Symlink {
		err = unix.Symlinkat(e.Target, pfd, tmp)
	} else {
		err = unix.Mknodat(pfd, tmp, modeBits(e.Type)|e.Mode, int(unix.Mkdev(e.Major, e.Minor)))
	}
	if err != nil {
		return fmt.Errorf("creating a %s beside it: %w", e.Type, err)
	}
	err = s.metaAt(pfd, tmp, e)
	if err == nil {
		if err = unix.Renameat(pfd, tmp, pfd, base); err != nil {
			err = fmt.Errorf("rename into place: %w", err)
		}
	}
	if err != nil {
		unix.Unlinkat(pfd, tmp, 0)
	}
	return err
}

// metaAt sets the owner, mode and time of a symlink, device, fifo or
// socket by name in directory pfd, never following a symlink.
func (s *syncer) metaAt(pfd int, name string, e *Entry) error {
	if err := unix.Fchownat(pfd, name, e.Uid, e.Gid, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("chown: %w", err)
	}
	if e.Type != Symlink {
		// Not a symlink (it was just made, or lstat said so): fchmodat
		// cannot refuse to follow one, and need not.
		if err := unix.Fchmodat(pfd, name, e.Mode, 0); err != nil {
			return fmt.Errorf("chmod: %w", err)
		}
	}
	ts := []unix.Timespec{{Sec: e.Mtime}, {Sec: e.Mtime}}
	if err := unix.UtimesNanoAt(pfd, name, ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("setting time: %w", err)
	}
	return nil
}

// metadata sets owner, mode, xattrs and time of the entries whose
// content is right.
func (s *syncer) metadata() {
	s.each(func(o *op) bool { return o.kind == Metadata && o.e.Type != Dir }, s.meta)
}

func (s *syncer) meta(o *op) error {
	e := o.e
	pfd, base, err := s.t.parent(e.Path)
	if err != nil {
		return err
	}
	if e.Type != Regular && e.Type != Fifo {
		return s.metaAt(pfd, base, e)
	}
	fd, err := unix.Openat(pfd, base, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return err
	}
	if st.Ino != o.local.Ino || st.Dev != o.local.Dev {
		return errors.New("changed while sync ran")
	}
	return setMeta(fd, e, true)
}

// removeTree removes a directory the image replaces by another type, and
// what it holds (none of it is in the image).
func (s *syncer) removeTree(path string) error {
	if s.s.pinned[path] {
		return fmt.Errorf("the directory there holds entries sync leaves alone")
	}
	var below []string
	for _, p := range s.s.paths {
		if strings.HasPrefix(p, path+"/") {
			below = append(below, p)
		}
	}
	for i := len(below) - 1; i >= 0; i-- {
		if err := s.remove(below[i]); err != nil {
			return fmt.Errorf("removing %s: %w", below[i], err)
		}
	}
	if err := s.removeQuiet(path); err != nil {
		return fmt.Errorf("removing the directory there: %w", err)
	}
	return nil
}

// remove removes one local entry (a directory must be empty by now) and
// reports it.
func (s *syncer) remove(path string) error {
	if err := s.removeQuiet(path); err != nil {
		return err
	}
	st := s.s.local[path]
	c := Change{Path: path, Kind: Removed, Type: localType(st.Mode), What: "not in the image"}
	if c.Type == Regular {
		c.Size = st.Size
	}
	s.rep.add(c)
	return nil
}

// removeQuiet removes a local entry the image replaces.
func (s *syncer) removeQuiet(path string) error {
	st := s.s.local[path]
	pfd, base, err := s.t.parent(path)
	if err != nil {
		return err
	}
	flag := 0
	if localType(st.Mode) == Dir {
		flag = unix.AT_REMOVEDIR
	}
	if err := unix.Unlinkat(pfd, base, flag); err != nil && !errors.Is(err, unix.ENOENT) {
		return err
	}
	if flag != 0 {
		s.t.forget(path)
	}
	s.gone[path] = true
	s.touch(parentOf(path))
	return nil
}

// removals removes what the image no longer has, children first; not at
// all with NoDelete or after a failure (as rsync skips deletions after
// an I/O error). Temporary files of an interrupted sync always go.
func (s *syncer) removals() {
	for _, path := range s.s.temps {
		if pfd, base, err := s.t.parent(path); err == nil {
			unix.Unlinkat(pfd, base, 0)
			s.touch(parentOf(path))
		}
	}
	var todo []string
	for _, p := range s.p.removals {
		if !s.gone[p] && !s.s.pinned[p] {
			todo = append(todo, p)
		}
	}
	if s.o.NoDelete || len(s.rep.Failed) > 0 {
		s.rep.DeletesSkipped = len(todo)
		return
	}
	for i := len(todo) - 1; i >= 0; i-- {
		s.t.trim()
		if err := s.remove(todo[i]); err != nil {
			s.fail(todo[i], fmt.Errorf("removing: %w", err))
		}
	}
}

// version writes /etc/clonecd-version once everything is current.
func (s *syncer) version() error {
	if s.o.Version == "" || len(s.rep.Failed) > 0 {
		return nil
	}
	name := strings.TrimPrefix(versionFile, "/")
	data := []byte(s.o.Version + "\n")
	if old, err := s.t.root.ReadFile(name); err == nil && string(old) == string(data) {
		return nil
	}
	if err := atomicfile.WriteFileIn(s.t.root, name, data, 0o644); err != nil {
		return err
	}
	s.touch(parentOf(versionFile))
	return nil
}

// dirTimes sets the time of every directory whose entries changed or
// whose time differed, children first.
func (s *syncer) dirTimes() {
	meta := map[string]bool{}
	for _, o := range s.p.ops {
		if o.e.Type == Dir {
			meta[o.e.Path] = true
		}
	}
	for i := len(s.f.Entries) - 1; i >= 0; i-- {
		e := &s.f.Entries[i]
		if e.Type != Dir || !s.touched[e.Path] && !meta[e.Path] {
			continue
		}
		if _, left := s.p.leftDirs[e.Path]; left || s.isFailed(e.Path) || s.blocked(e.Path) {
			continue
		}
		s.t.trim()
		var err error
		if e.Path == "/" {
			err = unix.Futimes(s.t.fd, []unix.Timeval{{Sec: e.Mtime}, {Sec: e.Mtime}})
		} else {
			var pfd int
			var base string
			if pfd, base, err = s.t.parent(e.Path); err == nil {
				ts := []unix.Timespec{{Sec: e.Mtime}, {Sec: e.Mtime}}
				err = unix.UtimesNanoAt(pfd, base, ts, unix.AT_SYMLINK_NOFOLLOW)
			}
		}
		if err != nil {
			s.fail(e.Path, fmt.Errorf("setting time: %w", err))
		}
	}
}
