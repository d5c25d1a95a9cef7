package image

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sync/errgroup"
	"golang.org/x/sync/semaphore"
	"golang.org/x/sys/unix"
)

// Unpack's pipeline. The caller's goroutine reads the stream: it parses
// headers, creates every name (directories, files, links, devices) in
// archive order, and reads each regular file's data into pooled buffers.
// Writers (an errgroup) pwrite the chunks, possibly several of one file
// at once, and the last one done with a file sets its owner, mode and
// time and closes it. So the order that matters holds: a name exists
// before anything refers to it (created by the reader), a file's
// metadata comes after all its data, xattrs wait until every file in
// flight is finished (barrier, as chown clears capabilities), and
// directories get their modes and times after all writers are done.
// Hardlink groups are written by the reader itself: their data may come
// with any of the names. A file whose data does not arrive whole (the
// stream ends, a crc mismatch, a failed write) is marked bad and removed
// once the writers have stopped; a writer's failure stops the reader
// before its next entry. Writers never stop early, so every file handed
// out is finished and the barrier cannot hang.

const (
	chunkSize = 1 << 20 // largest chunk a writer gets
	memLimit  = 8 << 20 // file data read but not yet written: small, so that it stays in cache
	// Chunks go to the writers in batches of up to batchBytes or
	// batchLen: one wake-up per batch, not per small file.
	batchBytes = 512 << 10
	batchLen   = 64
)

var bufClasses = [...]int{4 << 10, 32 << 10, 256 << 10, chunkSize}
var bufPools [len(bufClasses)]sync.Pool

// outFile is a regular file being written. refs counts the chunks in
// flight plus the reader's hold; whoever drops it to 0 finishes the file.
type outFile struct {
	fd    int
	rel   string
	uid   int
	gid   int
	mode  uint32
	mtime int64
	refs  atomic.Int32
	bad   atomic.Bool // data incomplete: remove the file
}

type chunk struct {
	f   *outFile
	off int64
	buf *[]byte // nil for a file without data
	n   int
}

type writers struct {
	jobs   chan []chunk // nil: everything runs in the reader
	batch  []chunk      // not yet sent
	bytes  int          // in batch
	g      errgroup.Group
	mem    *semaphore.Weighted
	files  sync.WaitGroup // files not yet finished
	stop   atomic.Bool    // a writer failed: the reader stops
	chown  bool
	strict bool // chown failures are errors (root)

	inlineErr error // the first error when jobs is nil

	brokenMu sync.Mutex
	broken   []string // files whose data did not arrive whole
}

func startWriters(n int, chown, strict bool) *writers {
	w := &writers{mem: semaphore.NewWeighted(memLimit), chown: chown, strict: strict}
	if n <= 1 {
		return w
	}
	w.jobs = make(chan []chunk, 64)
	for i := 0; i < n; i++ {
		w.g.Go(func() error {
			var first error
			for batch := range w.jobs {
				for _, c := range batch {
					if err := w.do(c); err != nil && first == nil {
						first = err
					}
				}
			}
			return first
		})
	}
	return w
}

// buffer returns a pooled buffer of at least n bytes, waiting while
// memLimit bytes are in flight (after sending its own batch).
func (w *writers) buffer(n int) *[]byte {
	for i, c := range bufClasses {
		if n <= c {
			if !w.mem.TryAcquire(int64(c)) {
				w.flush()
				w.mem.Acquire(context.Background(), int64(c))
			}
			if b, ok := bufPools[i].Get().(*[]byte); ok {
				return b
			}
			b := make([]byte, c)
			return &b
		}
	}
	panic(fmt.Sprintf("image: buffer of %d bytes", n))
}

func (w *writers) putBuffer(b *[]byte) {
	for i, c := range bufClasses {
		if cap(*b) == c {
			bufPools[i].Put(b)
			w.mem.Release(int64(c))
			return
		}
	}
}

// send hands a chunk to the writers (or writes it now).
func (w *writers) send(c chunk) {
	if w.jobs == nil {
		if err := w.do(c); err != nil && w.inlineErr == nil {
			w.inlineErr = err
		}
		return
	}
	w.batch = append(w.batch, c)
	w.bytes += c.n
	if w.bytes >= batchBytes || len(w.batch) >= batchLen {
		w.flush()
	}
}

// flush sends the batch.
func (w *writers) flush() {
	if len(w.batch) > 0 {
		w.jobs <- w.batch
		w.batch, w.bytes = make([]chunk, 0, batchLen), 0
	}
}

func (w *writers) do(c chunk) error {
	f := c.f
	var err error
	if c.buf != nil {
		if !f.bad.Load() {
			if werr := pwriteFull(f.fd, (*c.buf)[:c.n], c.off); werr != nil {
				err = fmt.Errorf("writing %s: %w", displayName(f.rel), werr)
				w.fail(f)
			}
		}
		w.putBuffer(c.buf)
	}
	if ferr := w.release(f); err == nil {
		err = ferr
	}
	return err
}

func (w *writers) fail(f *outFile) {
	f.bad.Store(true)
	w.stop.Store(true)
}

// release drops a hold on f; the last one sets its metadata (unless its
// data is incomplete) and closes it.
func (w *writers) release(f *outFile) error {
	if f.refs.Add(-1) != 0 {
		return nil
	}
	defer w.files.Done()
	var err error
	if !f.bad.Load() {
		if err = w.meta(f); err != nil {
			err = fmt.Errorf("%s: %w", displayName(f.rel), err)
			w.fail(f)
		}
	}
	if cerr := unix.Close(f.fd); cerr != nil && err == nil && !f.bad.Load() {
		err = fmt.Errorf("writing %s: %w", displayName(f.rel), cerr)
		w.fail(f)
	}
	if f.bad.Load() {
		w.brokenMu.Lock()
		w.broken = append(w.broken, f.rel)
		w.brokenMu.Unlock()
	}
	return err
}

// meta sets owner, mode and time, in that order (chown clears setuid).
func (w *writers) meta(f *outFile) error {
	if w.chown {
		if err := unix.Fchown(f.fd, f.uid, f.gid); err != nil && w.strict {
			return fmt.Errorf("chown: %w", err)
		}
	}
	if err := unix.Fchmod(f.fd, f.mode); err != nil {
		return fmt.Errorf("chmod: %w", err)
	}
	if err := futimens(f.fd, f.mtime); err != nil {
		return fmt.Errorf("setting time: %w", err)
	}
	return nil
}

// futimens sets a descriptor's atime and mtime as glibc's futimens does:
// utimensat with a NULL path. (unix.Futimes goes through /proc/self/fd,
// which a bare initramfs may not have mounted.)
func futimens(fd int, sec int64) error {
	ts := [2]unix.Timespec{{Sec: sec}, {Sec: sec}}
	_, _, e := unix.Syscall6(unix.SYS_UTIMENSAT, uintptr(fd), 0, uintptr(unsafe.Pointer(&ts[0])), 0, 0, 0)
	if e != 0 {
		return e
	}
	return nil
}

// barrier waits until every file handed out is finished.
func (w *writers) barrier() {
	if w.jobs != nil {
		w.flush()
	}
	w.files.Wait()
}

// wait stops the writers and returns the first error one had.
func (w *writers) wait() error {
	if w.jobs == nil {
		w.files.Wait()
		return w.inlineErr
	}
	w.flush()
	close(w.jobs)
	err := w.g.Wait()
	w.files.Wait()
	return err
}

func pwriteFull(fd int, p []byte, off int64) error {
	for len(p) > 0 {
		n, err := unix.Pwrite(fd, p, off)
		if err != nil {
			if errors.Is(err, unix.EINTR) {
				continue
			}
			return err
		}
		p, off = p[n:], off+int64(n)
	}
	return nil
}
