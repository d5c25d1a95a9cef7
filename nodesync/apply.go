package nodesync

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

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

	failed       map[string]bool // entries not brought up to date
	gone         map[string]bool // local entries removed with a replaced directory
	touched      map[string]bool // directories whose entries were created, renamed or removed
	pending      []staged        // staged contents not yet renamed into place
	pendingBytes int64
	buf          []byte
}

// staged is a new file written beside its target.
type staged struct {
	o   *op
	tmp string // its name in the target's directory
}

var errBlocked = errors.New("its directory was not updated")

func (s *syncer) fail(path string, err error) {
	if !s.failed[path] {
		s.failed[path] = true
		s.rep.Failed = append(s.rep.Failed, Failure{path, err})
	}
}

// blocked reports whether a directory above path was not updated.
func (s *syncer) blocked(path string) bool {
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
	s.rep.add(o.change())
	if o.kind != Metadata && o.e.Path != "/" {
		s.touched[parentOf(o.e.Path)] = true
	}
	if s.o.Progress != nil {
		s.o.Progress.Add(0, 1)
	}
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

// contents writes every new regular file: empty ones, copies of contents
// the node holds, then the rest from the source.
func (s *syncer) contents() {
	bySum := map[Sum][]*op{}
	var order []Sum
	for _, o := range s.p.ops {
		if !o.content {
			continue
		}
		if s.blocked(o.e.Path) {
			s.fail(o.e.Path, errBlocked)
			continue
		}
		if o.local != nil && localType(o.local.Mode) == Dir {
			if err := s.removeTree(o.e.Path); err != nil {
				s.fail(o.e.Path, err)
				continue
			}
		}
		if bySum[o.e.Sum] == nil {
			order = append(order, o.e.Sum)
		}
		bySum[o.e.Sum] = append(bySum[o.e.Sum], o)
	}
	var fetch []Sum
	for _, sum := range order {
		ops := bySum[sum]
		s.t.trim()
		if ops[0].e.Size == 0 {
			if err := s.stageAll(ops, strings.NewReader("")); err != nil {
				s.failAll(ops, err)
			}
			continue
		}
		if src, ok := s.p.sources[sum]; ok && s.copyLocal(ops, src) == nil {
			s.rep.Copied += ops[0].e.Size
			continue
		}
		fetch = append(fetch, sum)
		s.maybeFlush()
	}
	s.fetch(fetch, bySum)
	s.flush()
}

func (s *syncer) failAll(ops []*op, err error) {
	for _, o := range ops {
		s.fail(o.e.Path, err)
	}
}

// copyLocal stages ops from a local file that should hold their content;
// its hash is checked on the way (it was only assumed from its size and
// time).
func (s *syncer) copyLocal(ops []*op, src string) error {
	f, err := s.t.openFile(src)
	if err != nil {
		return err
	}
	defer f.Close()
	return s.stageAll(ops, f)
}

// fetch gets the remaining contents from the source.
func (s *syncer) fetch(sums []Sum, bySum map[Sum][]*op) {
	if len(sums) == 0 {
		return
	}
	remaining := make(map[Sum]bool, len(sums))
	for _, sum := range sums {
		remaining[sum] = true
	}
	errs := map[Sum]error{}
	var err error
	if s.src == nil {
		err = errors.New("no blob source given")
	} else {
		err = s.src.Fetch(s.ctx, sums, func(sum Sum, r io.Reader) error {
			if !remaining[sum] {
				return nil
			}
			s.t.trim()
			ops := bySum[sum]
			if err := s.stageAll(ops, r); err != nil {
				errs[sum] = err
				return nil
			}
			delete(remaining, sum)
			delete(errs, sum)
			s.rep.Fetched += ops[0].e.Size
			s.rep.FetchedBlobs++
			s.maybeFlush()
			return s.ctx.Err()
		})
	}
	for _, sum := range sums {
		if !remaining[sum] {
			continue
		}
		cause := errs[sum]
		if cause == nil && err != nil {
			cause = fmt.Errorf("fetching %s: %w", sum, err)
		}
		if cause == nil {
			cause = fmt.Errorf("blob %s was not delivered", sum)
		}
		s.failAll(bySum[sum], cause)
	}
}

// stageAll stages the first op from r (checking size and sha256), the
// others as copies of the first.
func (s *syncer) stageAll(ops []*op, r io.Reader) error {
	first, err := s.stage(ops[0], r, nil)
	if err != nil {
		return err
	}
	defer first.Close()
	for _, o := range ops[1:] {
		if f, err := s.stage(o, nil, first); err != nil {
			s.fail(o.e.Path, err)
		} else {
			f.Close()
		}
	}
	return nil
}

// MismatchError is a content that does not match its sha256 or size.
type MismatchError struct {
	Sum  Sum
	Size int64 // bytes received (up to one more than wanted)
	Want int64
}

func (e *MismatchError) Error() string {
	if e.Size != e.Want {
		return fmt.Sprintf("content %s: %d bytes, want %d", e.Sum, e.Size, e.Want)
	}
	return fmt.Sprintf("content does not match its sha256 %s", e.Sum)
}

// stage writes o's new file beside its target: from r (checked), or as
// a copy of an already checked staged file.
func (s *syncer) stage(o *op, r io.Reader, from *os.File) (*os.File, error) {
	e := o.e
	pfd, _, err := s.t.parent(e.Path)
	if err != nil {
		return nil, err
	}
	tmp := tempPrefix + randHex()
	fd, err := unix.Openat(pfd, tmp, unix.O_RDWR|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("creating a file beside it: %w", err)
	}
	s.touched[parentOf(e.Path)] = true
	f := os.NewFile(uintptr(fd), tmp)
	if from != nil {
		if _, err = from.Seek(0, io.SeekStart); err == nil {
			_, err = io.Copy(f, io.LimitReader(from, e.Size)) // copy_file_range
		}
	} else {
		h := newHasher()
		var n int64
		n, err = io.CopyBuffer(io.MultiWriter(f, h), io.LimitReader(r, e.Size+1), s.buf)
		if err != nil {
			err = fmt.Errorf("content %s: %w", e.Sum, err)
		} else if n != e.Size || h.sum() != e.Sum {
			err = &MismatchError{Sum: e.Sum, Size: n, Want: e.Size}
		}
	}
	if err == nil {
		err = setMeta(fd, e, true)
	}
	if err != nil {
		f.Close()
		unix.Unlinkat(pfd, tmp, 0)
		return nil, err
	}
	s.pending = append(s.pending, staged{o, tmp})
	s.pendingBytes += e.Size
	if s.o.Progress != nil {
		s.o.Progress.Add(e.Size, 0)
	}
	return f, nil
}

func (s *syncer) maybeFlush() {
	batch := s.o.Batch
	if batch <= 0 {
		batch = 256 << 20
	}
	if s.pendingBytes >= batch || len(s.pending) >= 8192 {
		s.flush()
	}
}

// flush makes the staged files durable (one syncfs) and renames them
// over their targets: a program sees the old file or the new one, and
// after a crash each is one or the other too.
func (s *syncer) flush() {
	if len(s.pending) == 0 {
		return
	}
	err := unix.Syncfs(s.t.fd)
	for _, st := range s.pending {
		s.t.trim()
		path := st.o.e.Path
		pfd, base, perr := s.t.parent(path)
		if perr != nil {
			s.fail(path, perr)
			continue
		}
		if err == nil {
			err := unix.Renameat(pfd, st.tmp, pfd, base)
			if err == nil {
				s.done(st.o)
				continue
			}
			s.fail(path, fmt.Errorf("rename into place: %w", err))
		} else {
			s.fail(path, fmt.Errorf("syncfs: %w", err))
		}
		unix.Unlinkat(pfd, st.tmp, 0)
	}
	s.pending, s.pendingBytes = nil, 0
}
