package nodesync

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/klauspost/compress/zstd"
	"golang.org/x/sys/unix"
)

// Encodings of a stored blob (and of a frame of a batch response).
const (
	EncRaw  = "raw"  // the content as is
	EncZstd = "zstd" // one zstd frame of the content, its size in the frame header
)

// Store is a content-addressed blob store: DIR/ab/abcd… (64 hex digits,
// the sha256 of the content) holds a content as is, DIR/ab/abcd….zst
// holds it as one zstd frame when that is at least a tenth smaller. A
// blob appears under its name only once its bytes are on disk (written
// as a temporary file, the filesystem synced, then renamed). Files are
// 0600 and directories 0700: the image holds the node's secrets.
type Store struct {
	dir string
}

// OpenStore opens (creating it if needed) the blob store in dir.
func OpenStore(dir string) (*Store, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("blob store: %w", err)
	}
	return &Store{dir: dir}, nil
}

// Dir is the store's directory.
func (s *Store) Dir() string { return s.dir }

func (s *Store) name(sum Sum) string {
	h := sum.String()
	return filepath.Join(s.dir, h[:2], h)
}

// Has reports whether the store holds sum.
func (s *Store) Has(sum Sum) bool {
	if sum == EmptySum {
		return true
	}
	n := s.name(sum)
	for _, p := range []string{n + ".zst", n} {
		if _, err := os.Lstat(p); err == nil {
			return true
		}
	}
	return false
}

// Blob is a stored blob open for reading.
type Blob struct {
	*os.File
	Encoding string // EncRaw or EncZstd
	Size     int64  // the content's size
	Stored   int64  // the file's size
}

// Open opens the blob of sum; fs.ErrNotExist when the store lacks it.
func (s *Store) Open(sum Sum) (*Blob, error) {
	n := s.name(sum)
	for _, enc := range []string{EncZstd, EncRaw} {
		p := n
		if enc == EncZstd {
			p += ".zst"
		}
		f, err := os.Open(p)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		fi, err := f.Stat()
		if err != nil {
			f.Close()
			return nil, err
		}
		b := &Blob{File: f, Encoding: enc, Size: fi.Size(), Stored: fi.Size()}
		if enc == EncZstd {
			if b.Size, err = frameSize(f); err != nil {
				f.Close()
				return nil, fmt.Errorf("blob %s: %w", p, err)
			}
		}
		return b, nil
	}
	return nil, fmt.Errorf("blob %s: %w", sum, fs.ErrNotExist)
}

// frameSize reads the content size from a zstd frame header.
func frameSize(f *os.File) (int64, error) {
	buf := make([]byte, zstd.HeaderMaxSize)
	n, err := f.ReadAt(buf, 0)
	if err != nil && err != io.EOF {
		return 0, err
	}
	var h zstd.Header
	if err := h.Decode(buf[:n]); err != nil {
		return 0, fmt.Errorf("zstd header: %w", err)
	}
	if !h.HasFCS {
		return 0, errors.New("zstd frame without its content size")
	}
	return int64(h.FrameContentSize), nil
}

// Content returns a reader of the blob's content (decoded).
func (b *Blob) Content() (io.ReadCloser, error) {
	if b.Encoding == EncRaw {
		return io.NopCloser(io.NewSectionReader(b.File, 0, b.Stored)), nil
	}
	d, err := zstd.NewReader(io.NewSectionReader(b.File, 0, b.Stored), zstd.WithDecoderConcurrency(1))
	if err != nil {
		return nil, err
	}
	return d.IOReadCloser(), nil
}

// Put stores data durably and returns its sum.
func (s *Store) Put(data []byte) (Sum, error) {
	w := newBlobWriter(s, 1)
	sum, err := w.addBytes(data)
	if err == nil {
		err = w.commit()
	} else {
		w.abort()
	}
	return sum, err
}

// blobWriter adds blobs: compressing in workers, writing temporary
// files, and renaming them into place at commit after one syncfs.
type blobWriter struct {
	s    *Store
	jobs chan []byte
	wg   sync.WaitGroup
	// mu guards the fields below it.
	mu       sync.Mutex
	pending  [][2]string // temporary name, final name
	inflight map[Sum]bool
	dirs     map[string]bool
	err      error
	newBlobs int
	newBytes int64 // content bytes of new blobs
	stored   int64 // bytes written
}

// maxMem is the largest content compressed in memory; larger contents
// are streamed.
const maxMem = 32 << 20

func newBlobWriter(s *Store, workers int) *blobWriter {
	w := &blobWriter{s: s, jobs: make(chan []byte, workers), inflight: map[Sum]bool{}, dirs: map[string]bool{}}
	for range workers {
		w.wg.Add(1)
		go w.worker()
	}
	return w
}

func (w *blobWriter) fail(err error) {
	w.mu.Lock()
	if w.err == nil {
		w.err = err
	}
	w.mu.Unlock()
}

func (w *blobWriter) worker() {
	defer w.wg.Done()
	// Single segment: the frame header then always holds the content
	// size (zstd leaves it out of other frames under 256 bytes), which
	// the handler needs for Content-Length and Range.
	enc, _ := zstd.NewWriter(nil, zstd.WithEncoderLevel(blobLevel), zstd.WithEncoderConcurrency(1), zstd.WithSingleSegment(true))
	var buf []byte
	for data := range w.jobs {
		sum := Sum(sha256Sum(data))
		buf = enc.EncodeAll(data, buf[:0])
		var err error
		if pays(len(buf), len(data)) {
			err = w.writeFile(sum, EncZstd, int64(len(data)), buf)
		} else {
			err = w.writeFile(sum, EncRaw, int64(len(data)), data)
		}
		if err != nil {
			w.fail(err)
		}
	}
}

// blobLevel is the zstd level of stored blobs (see doc.go for the
// figures behind the choice).
const blobLevel = zstd.SpeedDefault

// pays reports whether a compressed size is worth keeping.
func pays(compressed, raw int) bool { return compressed < raw-raw/10 }

// claim marks sum as being added; false when the store has it already.
func (w *blobWriter) claim(sum Sum) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.inflight[sum] || w.s.Has(sum) {
		return false
	}
	w.inflight[sum] = true
	return true
}

// addBytes adds a content held in memory (at most maxMem bytes is best).
func (w *blobWriter) addBytes(data []byte) (Sum, error) {
	sum := Sum(sha256Sum(data))
	if len(data) == 0 || !w.claim(sum) {
		return sum, nil
	}
	w.jobs <- data
	return sum, nil
}

// ensureDir makes the directory of sum's blob.
func (w *blobWriter) ensureDir(sum Sum) (string, error) {
	dir := filepath.Dir(w.s.name(sum))
	w.mu.Lock()
	known := w.dirs[dir]
	w.mu.Unlock()
	if !known {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return "", fmt.Errorf("blob store: %w", err)
		}
		w.mu.Lock()
		w.dirs[dir] = true
		w.mu.Unlock()
	}
	return dir, nil
}

// tempFile creates a temporary file beside sum's blob.
func (w *blobWriter) tempFile(sum Sum) (*os.File, string, error) {
	dir, err := w.ensureDir(sum)
	if err != nil {
		return nil, "", err
	}
	tmp := filepath.Join(dir, tempPrefix+randHex()+".tmp")
	f, err := os.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	return f, tmp, err
}

// tempPrefix starts the names of temporary files, in the store and in a
// node's tree; sync removes the ones a crash left.
const tempPrefix = ".~clonecd."

func randHex() string {
	var b [8]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func (w *blobWriter) writeFile(sum Sum, enc string, size int64, data []byte) error {
	f, tmp, err := w.tempFile(sum)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("blob store: %w", err)
	}
	w.done(sum, enc, tmp, size, int64(len(data)))
	return nil
}

func (w *blobWriter) done(sum Sum, enc, tmp string, size, stored int64) {
	final := w.s.name(sum)
	if enc == EncZstd {
		final += ".zst"
	}
	w.mu.Lock()
	w.pending = append(w.pending, [2]string{tmp, final})
	w.newBlobs++
	w.newBytes += size
	w.stored += stored
	w.mu.Unlock()
}

// addStream adds a content of size bytes read from r through a temporary
// file, compressed when zstd makes its first MiB a tenth smaller.
func (w *blobWriter) addStream(r io.Reader, size int64) (Sum, error) {
	var sum Sum
	f, tmp, err := w.tempFile(sum) // under "00/": renamed below
	if err != nil {
		return sum, err
	}
	defer func() {
		f.Close()
		if tmp != "" {
			os.Remove(tmp)
		}
	}()
	h := newHasher()
	n, err := io.Copy(io.MultiWriter(f, h), io.LimitReader(r, size))
	if err == nil && n != size {
		err = io.ErrUnexpectedEOF
	}
	if err != nil {
		return sum, err
	}
	sum = h.sum()
	if !w.claim(sum) {
		return sum, nil
	}
	head := make([]byte, min(size, 1<<20))
	if _, err := f.ReadAt(head, 0); err != nil {
		return sum, err
	}
	enc, _ := zstd.NewWriter(nil, zstd.WithEncoderLevel(blobLevel), zstd.WithEncoderConcurrency(1))
	if !pays(len(enc.EncodeAll(head, nil)), len(head)) {
		if _, err := w.ensureDir(sum); err != nil {
			return sum, err
		}
		if err := f.Close(); err != nil {
			return sum, err
		}
		w.done(sum, EncRaw, tmp, size, size)
		tmp = ""
		return sum, nil
	}
	z, ztmp, err := w.tempFile(sum)
	if err != nil {
		return sum, err
	}
	enc.ResetContentSize(z, size)
	_, err = io.Copy(enc, io.NewSectionReader(f, 0, size))
	err = errors.Join(err, enc.Close())
	fi, serr := z.Stat()
	err = errors.Join(err, serr, z.Close())
	if err != nil {
		os.Remove(ztmp)
		return sum, fmt.Errorf("blob store: %w", err)
	}
	w.done(sum, EncZstd, ztmp, size, fi.Size())
	return sum, nil
}

// commit waits for the workers, syncs the filesystem and renames every
// new blob into place.
func (w *blobWriter) commit() error {
	close(w.jobs)
	w.wg.Wait()
	if w.err != nil {
		w.removePending()
		return w.err
	}
	if len(w.pending) == 0 {
		return nil
	}
	if err := syncfs(w.s.dir); err != nil {
		w.removePending()
		return err
	}
	for i, p := range w.pending {
		if err := os.Rename(p[0], p[1]); err != nil {
			w.pending = w.pending[i:]
			w.removePending()
			return fmt.Errorf("blob store: %w", err)
		}
	}
	w.pending = nil
	return syncfs(w.s.dir)
}

// abort stops the workers and removes what they wrote.
func (w *blobWriter) abort() {
	close(w.jobs)
	w.wg.Wait()
	w.removePending()
}

func (w *blobWriter) removePending() {
	for _, p := range w.pending {
		os.Remove(p[0])
	}
	w.pending = nil
}

// syncfs flushes the filesystem holding dir.
func syncfs(dir string) error {
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("%s: %w", dir, err)
	}
	defer unix.Close(fd)
	if err := unix.Syncfs(fd); err != nil {
		return fmt.Errorf("%s: syncfs: %w", dir, err)
	}
	return nil
}

// isTemp reports whether a name is one of our temporary files.
func isTemp(name string) bool { return strings.HasPrefix(name, tempPrefix) }
