package nodesync

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/klauspost/compress/zstd"
)

// Prefix is where a server mounts the blob handler:
// mux.Handle(nodesync.Prefix, store.Handler(...)).
const Prefix = "/blobs/"

// BatchType is the media type of a batch response.
const BatchType = "application/vnd.clonecd.blobs"

// HandlerOptions tune the blob handler.
type HandlerOptions struct {
	// MaxBatch bounds the sums of one POST; 0: 16384.
	MaxBatch int
	// WriteTimeout is the time a client has to take each frame of a
	// batch (renewed per frame); 0: 30 s.
	WriteTimeout time.Duration
}

// Handler serves the store's blobs (the HTTP API is in doc.go):
//
//	GET  PREFIX<sha256>   one blob: strong ETag, immutable, Range
//	POST PREFIX           a batch: the body lists sha256s, one a line
//
// It does not authenticate: the server wraps it as it wraps the image.
func (s *Store) Handler(o HandlerOptions) http.Handler {
	if o.MaxBatch == 0 {
		o.MaxBatch = 16384
	}
	if o.WriteTimeout == 0 {
		o.WriteTimeout = 30 * time.Second
	}
	return &handler{s: s, o: o}
}

type handler struct {
	s *Store
	o HandlerOptions
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	i := strings.LastIndexByte(r.URL.Path, '/') + 1
	dir, name := r.URL.Path[:i], r.URL.Path[i:]
	switch {
	case !strings.HasSuffix(dir, Prefix):
		http.NotFound(w, r)
	case name == "" && r.Method == http.MethodPost:
		h.batch(w, r)
	case name == "":
		w.Header().Set("Allow", "POST")
		http.Error(w, "POST a list of sha256s", http.StatusMethodNotAllowed)
	case r.Method == http.MethodGet || r.Method == http.MethodHead:
		h.one(w, r, name)
	default:
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
	}
}

// acceptsZstd reports whether the request's Accept-Encoding lists zstd
// (without q=0).
func acceptsZstd(r *http.Request) bool {
	for _, v := range r.Header.Values("Accept-Encoding") {
		for _, tok := range strings.Split(v, ",") {
			name, params, _ := strings.Cut(strings.TrimSpace(tok), ";")
			if strings.EqualFold(strings.TrimSpace(name), EncZstd) && strings.ReplaceAll(params, " ", "") != "q=0" {
				return true
			}
		}
	}
	return false
}

func (h *handler) one(w http.ResponseWriter, r *http.Request, name string) {
	sum, err := ParseSum(name)
	if err != nil {
		http.Error(w, "not a sha256", http.StatusNotFound)
		return
	}
	b, err := h.s.Open(sum)
	if errors.Is(err, fs.ErrNotExist) {
		http.Error(w, "no such blob", http.StatusNotFound)
		return
	}
	if err != nil {
		http.Error(w, "cannot read blob", http.StatusInternalServerError)
		return
	}
	defer b.Close()
	hd := w.Header()
	hd.Set("Cache-Control", "public, max-age=31536000, immutable")
	hd.Set("Content-Type", "application/octet-stream")
	hd.Set("Vary", "Accept-Encoding")
	hd.Set("X-Content-Type-Options", "nosniff")
	if b.Encoding == EncZstd && acceptsZstd(r) {
		hd.Set("ETag", `"`+name+`.zst"`)
		hd.Set("Content-Encoding", EncZstd)
		http.ServeContent(w, r, "", time.Time{}, b.File)
		return
	}
	hd.Set("ETag", `"`+name+`"`)
	if b.Encoding == EncRaw {
		http.ServeContent(w, r, "", time.Time{}, b.File)
		return
	}
	zs := &zstdSeeker{b: b}
	defer zs.close()
	http.ServeContent(w, r, "", time.Time{}, zs)
}

func (h *handler) batch(w http.ResponseWriter, r *http.Request) {
	body := http.MaxBytesReader(w, r.Body, int64(h.o.MaxBatch)*65+1)
	var sums []Sum
	sc := bufio.NewScanner(body)
	for sc.Scan() {
		if len(sums) == h.o.MaxBatch {
			http.Error(w, fmt.Sprintf("more than %d sha256s", h.o.MaxBatch), http.StatusRequestEntityTooLarge)
			return
		}
		sum, err := ParseSum(sc.Text())
		if err != nil {
			http.Error(w, fmt.Sprintf("line %d: %v", len(sums)+1, err), http.StatusBadRequest)
			return
		}
		sums = append(sums, sum)
	}
	if err := sc.Err(); err != nil {
		var mb *http.MaxBytesError
		if errors.As(err, &mb) {
			http.Error(w, fmt.Sprintf("more than %d sha256s", h.o.MaxBatch), http.StatusRequestEntityTooLarge)
		} else {
			http.Error(w, "reading the list: "+err.Error(), http.StatusBadRequest)
		}
		return
	}
	w.Header().Set("Content-Type", BatchType)
	w.Header().Set("Cache-Control", "no-store")
	rc := http.NewResponseController(w)
	bw := bufio.NewWriterSize(w, 64<<10)
	for _, sum := range sums {
		rc.SetWriteDeadline(time.Now().Add(h.o.WriteTimeout))
		if err := h.frame(bw, sum); err != nil {
			return // the client sees the stream end before "end"
		}
	}
	bw.WriteString("end\n")
	bw.Flush()
}

// frame writes one blob of a batch: "SUM ENC LEN\n" and LEN bytes, or
// "SUM missing 0\n".
func (h *handler) frame(w *bufio.Writer, sum Sum) error {
	b, err := h.s.Open(sum)
	if err != nil {
		_, err := fmt.Fprintf(w, "%s missing 0\n", sum)
		return err
	}
	defer b.Close()
	if _, err := fmt.Fprintf(w, "%s %s %d\n", sum, b.Encoding, b.Stored); err != nil {
		return err
	}
	_, err = io.Copy(w, io.NewSectionReader(b.File, 0, b.Stored))
	return err
}

// zstdSeeker serves a zstd blob's content to http.ServeContent: Seek
// only moves the position; Read decodes from the start again when asked
// to go back, and skips forward by decoding.
type zstdSeeker struct {
	b    *Blob
	pos  int64
	dpos int64
	d    *zstd.Decoder
}

func (z *zstdSeeker) Seek(off int64, whence int) (int64, error) {
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		off += z.pos
	case io.SeekEnd:
		off += z.b.Size
	}
	if off < 0 {
		return 0, errors.New("seek before the start")
	}
	z.pos = off
	return off, nil
}

func (z *zstdSeeker) Read(p []byte) (int, error) {
	if z.pos >= z.b.Size {
		return 0, io.EOF
	}
	if z.d == nil || z.dpos > z.pos {
		src := io.NewSectionReader(z.b.File, 0, z.b.Stored)
		var err error
		if z.d == nil {
			z.d, err = zstd.NewReader(src, zstd.WithDecoderConcurrency(1))
		} else {
			err = z.d.Reset(src)
		}
		if err != nil {
			return 0, err
		}
		z.dpos = 0
	}
	if z.dpos < z.pos {
		n, err := io.CopyN(io.Discard, z.d, z.pos-z.dpos)
		z.dpos += n
		if err != nil {
			return 0, err
		}
	}
	n, err := z.d.Read(p)
	z.dpos += int64(n)
	z.pos = z.dpos
	return n, err
}

func (z *zstdSeeker) close() {
	if z.d != nil {
		z.d.Close()
	}
}

// parseFrameHeader reads "SUM ENC LEN".
func parseFrameHeader(line string) (Sum, string, int64, error) {
	f := strings.Split(line, " ")
	if len(f) != 3 {
		return Sum{}, "", 0, fmt.Errorf("frame header %.100q: want SUM ENCODING LENGTH", line)
	}
	sum, err := ParseSum(f[0])
	if err != nil {
		return sum, "", 0, fmt.Errorf("frame header: %w", err)
	}
	n, err := strconv.ParseInt(f[2], 10, 64)
	if err != nil || n < 0 || f[1] != EncRaw && f[1] != EncZstd && (f[1] != "missing" || n != 0) {
		return sum, "", 0, fmt.Errorf("frame header %.100q: bad encoding or length", line)
	}
	return sum, f[1], n, nil
}
