package netclone

import (
	"io"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/clonecd/clonecd/fleet"
)

// observe wraps the server's routes: one log line per request (method,
// path, node, status, bytes, duration, remote address), the request
// counter, and the bytes of files served, counted per version as they
// are written.
func (o *ops) observe(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &recorder{ResponseWriter: w, r: r, o: o}
		next.ServeHTTP(rec, r) // the mux sets r.Pattern and the path values on r itself
		status := rec.status
		if status == 0 {
			status = http.StatusOK
		}
		o.metrics.request(r.Method, status)
		if o.s.o.NoRequestLog {
			return
		}
		node := r.PathValue("node")
		if node == "" && fleet.ValidName(r.Header.Get(NodeHeader)) == nil {
			node = r.Header.Get(NodeHeader)
		}
		level := slog.LevelInfo
		if status >= 500 {
			level = slog.LevelError
		}
		attrs := []slog.Attr{slog.String("method", r.Method), slog.String("path", r.URL.Path)}
		if node != "" {
			attrs = append(attrs, slog.String("node", node))
		}
		attrs = append(attrs, slog.Int("status", status), slog.Int64("bytes", rec.bytes),
			slog.Duration("duration", time.Since(start)), slog.String("remote", r.RemoteAddr))
		if rg := r.Header.Get("Range"); rg != "" {
			attrs = append(attrs, slog.String("range", fleet.Clean(rg, 64)))
		}
		o.log.LogAttrs(r.Context(), level, "request", attrs...)
	})
}

// isFileRoute says a route serves the image store's files.
func isFileRoute(pattern string) bool {
	return pattern == "GET /{file...}" || pattern == "GET /v/{version}/{file...}"
}

// recorder notes an answer's status and size. It keeps what the writer
// under it can do: ReadFrom (sendfile), and Unwrap for
// http.ResponseController (deadlines, Flush).
type recorder struct {
	http.ResponseWriter
	r      *http.Request
	o      *ops
	status int
	bytes  int64
	served *atomic.Int64 // the counter of the answer's version, once known
}

func (w *recorder) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *recorder) count(n int64) {
	w.bytes += n
	if n > 0 && w.status < 300 && isFileRoute(w.r.Pattern) {
		if c := w.servedCounter(); c != nil {
			c.Add(n)
		}
	}
}

// servedCounter is the counter of the version a file answer is of: the
// one serve resolved and named in VersionHeader, so that the count
// follows the server's own resolution (/v/V/: V; the store's top names:
// the node's pinned version, else the version current when the request
// came). Nil for an answer of no version (the index text).
func (w *recorder) servedCounter() *atomic.Int64 {
	if w.served == nil {
		if v := w.Header().Get(VersionHeader); v != "" {
			w.served = w.o.served.counter(v)
		}
	}
	return w.served
}

func (w *recorder) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(p)
	w.count(int64(n))
	return n, err
}

func (w *recorder) ReadFrom(src io.Reader) (int64, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	var n int64
	var err error
	if rf, ok := w.ResponseWriter.(io.ReaderFrom); ok {
		n, err = rf.ReadFrom(src)
	} else {
		n, err = io.Copy(struct{ io.Writer }{w.ResponseWriter}, src)
	}
	w.count(n)
	return n, err
}

func (w *recorder) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// byVersion counts bytes per version. The totals are its sums, so that a
// total and its parts never disagree. Its versions are those the server
// served a file of: the store's, bounded by what was published.
type byVersion struct {
	mu sync.Mutex // guards m; the counters themselves are atomic
	m  map[string]*atomic.Int64
}

// counter is version v's counter, made at its first byte.
func (b *byVersion) counter(v string) *atomic.Int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	c := b.m[v]
	if c == nil {
		if b.m == nil {
			b.m = map[string]*atomic.Int64{}
		}
		c = &atomic.Int64{}
		b.m[v] = c
	}
	return c
}

// counts is the bytes of each version so far.
func (b *byVersion) counts() map[string]int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make(map[string]int64, len(b.m))
	for v, c := range b.m {
		out[v] = c.Load()
	}
	return out
}
