package netclone

import (
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/clonecd/clonecd/fleet"
)

// observe wraps the server's routes: one log line per request (method,
// path, node, status, bytes, duration, remote address), the request
// counter, and the bytes of files served, counted as they are written.
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
		w.o.served.Add(n)
	}
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
