package nodesync

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"sync"

	"golang.org/x/sys/unix"
)

// Contents are staged by a few goroutines: the one reading the source
// checks each content (in memory up to memBlob bytes) and hands it to a
// stager, which creates the file beside its target, writes it and sets
// its metadata; the file system's directory operations are slow enough
// that doing them one at a time leaves the CPUs idle.
const memBlob = 4 << 20

// stageJob is a content to stage for ops: verified bytes, or a local
// file to copy (checked on the way).
type stageJob struct {
	ops  []*op
	data []byte
	from string
}

var bufPool = sync.Pool{New: func() any { b := make([]byte, 256<<10); return &b }}

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
	s.t.trim()
	jobs := make(chan stageJob, 4)
	var workers sync.WaitGroup
	var fallbackMu sync.Mutex
	var fallback []Sum // local copies that did not check out
	for range runtime.GOMAXPROCS(0) + 1 {
		workers.Add(1)
		go func() {
			defer workers.Done()
			for j := range jobs {
				if err := s.stageJob(j); err != nil && j.from != "" {
					fallbackMu.Lock()
					fallback = append(fallback, j.ops[0].e.Sum)
					fallbackMu.Unlock()
				} else if err != nil {
					s.failAll(j.ops, err)
				}
				s.inflight.Done()
			}
		}()
	}
	submit := func(j stageJob) {
		s.inflight.Add(1)
		jobs <- j
	}
	var fetch []Sum
	for _, sum := range order {
		ops := bySum[sum]
		switch src, ok := s.p.sources[sum]; {
		case ops[0].e.Size == 0:
			submit(stageJob{ops: ops, data: []byte{}})
		case ok:
			submit(stageJob{ops: ops, from: src})
		default:
			fetch = append(fetch, sum)
		}
	}
	s.inflight.Wait()
	fetch = append(fetch, fallback...)
	s.fetch(fetch, bySum, submit)
	close(jobs)
	workers.Wait()
	s.flush()
}

func (s *syncer) failAll(ops []*op, err error) {
	for _, o := range ops {
		s.fail(o.e.Path, err)
	}
}

// stageJob stages one content for its ops.
func (s *syncer) stageJob(j stageJob) error {
	if j.from == "" {
		return s.stageAll(j.ops, bytes.NewReader(j.data))
	}
	f, err := s.t.openFile(j.from)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := s.stageAll(j.ops, f); err != nil {
		return err
	}
	s.mu.Lock()
	s.rep.Copied += j.ops[0].e.Size
	s.mu.Unlock()
	return nil
}

// fetch gets the remaining contents from the source: one up to memBlob
// bytes is read and checked in memory, then staged by submit; a larger
// one is staged here, checked as it is written.
func (s *syncer) fetch(sums []Sum, bySum map[Sum][]*op, submit func(stageJob)) {
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
			ops := bySum[sum]
			size := ops[0].e.Size
			if size <= memBlob {
				data, err := io.ReadAll(io.LimitReader(r, size+1))
				if err == nil && (int64(len(data)) != size || Sum(sha256Sum(data)) != sum) {
					err = &MismatchError{Sum: sum, Size: int64(len(data)), Want: size}
				}
				if err != nil {
					errs[sum] = fmt.Errorf("content %s: %w", sum, err)
					return nil
				}
				submit(stageJob{ops: ops, data: data})
			} else if err := s.stageAll(ops, r); err != nil {
				errs[sum] = err
				return nil
			}
			delete(remaining, sum)
			delete(errs, sum)
			s.mu.Lock()
			s.rep.Fetched += size
			s.rep.FetchedBlobs++
			s.mu.Unlock()
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
	s.touch(parentOf(e.Path))
	f := os.NewFile(uintptr(fd), tmp)
	if from != nil {
		if _, err = from.Seek(0, io.SeekStart); err == nil {
			_, err = io.Copy(f, io.LimitReader(from, e.Size)) // copy_file_range
		}
	} else {
		h := newHasher()
		buf := bufPool.Get().(*[]byte)
		var n int64
		n, err = io.CopyBuffer(io.MultiWriter(f, h), io.LimitReader(r, e.Size+1), *buf)
		bufPool.Put(buf)
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
	s.mu.Lock()
	s.pending = append(s.pending, staged{o, tmp})
	s.pendingBytes += e.Size
	if s.o.Progress != nil {
		s.o.Progress.Add(e.Size, 0)
	}
	s.mu.Unlock()
	return f, nil
}

// maybeFlush flushes when enough is staged; called by the goroutine that
// submits staging jobs.
func (s *syncer) maybeFlush() {
	batch := s.o.Batch
	if batch <= 0 {
		batch = 256 << 20
	}
	s.mu.Lock()
	full := s.pendingBytes >= batch || len(s.pending) >= 4096
	s.mu.Unlock()
	if full {
		s.flush()
	}
}

// flush waits for the staging jobs, makes the staged files durable (one
// syncfs) and renames them over their targets, a few at a time: a
// program sees the old file or the new one, and after a crash each is
// one or the other too.
func (s *syncer) flush() {
	s.inflight.Wait()
	s.mu.Lock()
	pending := s.pending
	s.pending, s.pendingBytes = nil, 0
	s.mu.Unlock()
	if len(pending) == 0 {
		return
	}
	serr := unix.Syncfs(s.t.fd)
	next := make(chan staged)
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for st := range next {
				s.rename(st, serr)
			}
		}()
	}
	for _, st := range pending {
		next <- st
	}
	close(next)
	wg.Wait()
	s.t.trim()
}

// rename puts one staged file in place (or removes it after serr).
func (s *syncer) rename(st staged, serr error) {
	path := st.o.e.Path
	pfd, base, err := s.t.parent(path)
	if err != nil {
		s.fail(path, err)
		return
	}
	err = fmt.Errorf("syncfs: %w", serr)
	if serr == nil {
		if err = unix.Renameat(pfd, st.tmp, pfd, base); err == nil {
			s.done(st.o)
			return
		}
		err = fmt.Errorf("rename into place: %w", err)
	}
	s.fail(path, err)
	unix.Unlinkat(pfd, st.tmp, 0)
}
