package nodesync

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"golang.org/x/sys/unix"
)

// syncer applies a plan. The order (see doc.go): directories, contents
// (staged beside their targets, the filesystem synced, renamed into
// place in batches), hard links, symlinks and devices, metadata, the
// version file, removals, directory times.
type syncer struct {
	ctx context.Context
	t   *tree
	f   *Files
	src Source
	o   *Options
	p   *plan
	s   *scanned
	rep *Report

	gone map[string]bool // local entries removed with a replaced directory (serial phases only)

	// mu guards rep and the fields below it: contents are staged by a
	// few goroutines at once.
	mu           sync.Mutex
	failed       map[string]bool // entries not brought up to date
	touched      map[string]bool // directories whose entries were created, renamed or removed
	pending      []staged        // staged contents not yet renamed into place
	pendingBytes int64
	inflight     sync.WaitGroup // staging jobs queued or running
}

// staged is a new file written beside its target.
type staged struct {
	o   *op
	tmp string // its name in the target's directory
}

var errBlocked = errors.New("its directory was not updated")

func (s *syncer) fail(path string, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.failed[path] {
		s.failed[path] = true
		s.rep.Failed = append(s.rep.Failed, Failure{path, err})
	}
}

// blocked reports whether a directory above path was not updated.
func (s *syncer) blocked(path string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.failed) == 0 || path == "/" {
		return false
	}
	for p := parentOf(path); ; p = parentOf(p) {
		if s.failed[p] {
			return true
		}
		if p == "/" {
			return false
		}
	}
}

func (s *syncer) done(o *op) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rep.add(o.change())
	if o.kind != Metadata && o.e.Path != "/" {
		s.touched[parentOf(o.e.Path)] = true
	}
	if s.o.Progress != nil {
		s.o.Progress.Add(0, 1)
	}
}

// touch records that a directory's entries changed.
func (s *syncer) touch(dir string) {
	s.mu.Lock()
	s.touched[dir] = true
	s.mu.Unlock()
}

// isFailed reports whether path was not brought up to date.
func (s *syncer) isFailed(path string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.failed[path]
}

// each applies fn to the ops phase selects, in node.files order; an
// entry whose directory was not updated is not either.
func (s *syncer) each(phase func(*op) bool, fn func(*op) error) {
	for _, o := range s.p.ops {
		if !phase(o) {
			continue
		}
		s.t.trim()
		err := errBlocked
		if !s.blocked(o.e.Path) {
			err = fn(o)
		}
		if err != nil {
			s.fail(o.e.Path, err)
			continue
		}
		s.done(o)
	}
}

// dirs creates missing directories and sets the owner, mode and xattrs
// of the others (times come last).
func (s *syncer) dirs() {
	s.each(func(o *op) bool { return o.e.Type == Dir }, s.dir)
}

func (s *syncer) dir(o *op) error {
	e := o.e
	if o.kind != Metadata {
		pfd, base, err := s.t.parent(e.Path)
		if err != nil {
			return err
		}
		if o.local != nil {
			if err := unix.Unlinkat(pfd, base, 0); err != nil {
				return fmt.Errorf("removing the %s there: %w", localType(o.local.Mode), err)
			}
		}
		if err := unix.Mkdirat(pfd, base, 0o700); err != nil {
			return fmt.Errorf("mkdir: %w", err)
		}
		s.t.forget(e.Path)
	}
	fd, err := s.t.dir(e.Path)
	if err != nil {
		return err
	}
	return setMeta(fd, e, false)
}

// setMeta sets the owner, then the mode (chown clears setuid), then the
// xattrs (chown clears file capabilities) of an open file, and with
// withTime its time.
func setMeta(fd int, e *Entry, withTime bool) error {
	if err := unix.Fchown(fd, e.Uid, e.Gid); err != nil {
		return fmt.Errorf("chown: %w", err)
	}
	if err := unix.Fchmod(fd, e.Mode); err != nil {
		return fmt.Errorf("chmod: %w", err)
	}
	have, err := fdXattrs(fd)
	if err == nil {
		err = setXattrs(fd, e.Xattrs, have)
	}
	if err != nil {
		return err
	}
	if withTime {
		tv := []unix.Timeval{{Sec: e.Mtime}, {Sec: e.Mtime}}
		if err := unix.Futimes(fd, tv); err != nil {
			return fmt.Errorf("setting time: %w", err)
		}
	}
	return nil
}
