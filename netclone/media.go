package netclone

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
)

// ErrChecksum is returned at the end of an image stream whose sha256 does
// not match node.cpio.gz.sha256. Opening the image again starts over.
var ErrChecksum = errors.New("sha256 mismatch")

// ErrChanged is returned when a stream cannot resume because the server
// now serves a different file (its ETag changed).
var ErrChanged = errors.New("image changed on the server during the transfer")

// MediaOptions tunes the network media.
type MediaOptions struct {
	Node        string        // sent as X-Clonecd-Node (state, canary version)
	Version     string        // fetch this version ("" = what the server says)
	Retries     int           // consecutive failed attempts before giving up (0: 10)
	Backoff     time.Duration // first wait after a failure, doubling (0: 500ms)
	MaxBackoff  time.Duration // longest wait (0: 10s)
	IdleTimeout time.Duration // a stream with no data this long is reconnected (0: 30s)
	Client      *http.Client  // nil: a client without overall timeout
	Logf        func(format string, a ...any)
}

func (o *MediaOptions) defaults() {
	if o.Retries <= 0 {
		o.Retries = 10
	}
	if o.Backoff <= 0 {
		o.Backoff = 500 * time.Millisecond
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = 10 * time.Second
	}
	if o.IdleTimeout <= 0 {
		o.IdleTimeout = 30 * time.Second
	}
	if o.Client == nil {
		o.Client = &http.Client{Transport: &http.Transport{
			Proxy:                 http.ProxyFromEnvironment,
			ResponseHeaderTimeout: 0, // queued streams wait for admission
			DisableCompression:    true,
		}}
	}
	if o.Logf == nil {
		o.Logf = func(string, ...any) {}
	}
}

func (o *MediaOptions) wait(ctx context.Context, fails int, retryAfter time.Duration) error {
	d := o.Backoff << min(fails-1, 16)
	if d > o.MaxBackoff || d <= 0 {
		d = o.MaxBackoff
	}
	if retryAfter > 0 {
		d = retryAfter
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// Media is the clone media served by `clonecd serve`, as an fs.FS: every
// file of one version (pinned when the media is opened, so a promote
// during the clone cannot mix versions). Opening node.cpio.gz returns a
// stream that resumes with Range/If-Range after a dropped connection
// (with backoff, up to Retries failures in a row) and checks its sha256
// at the end.
type Media struct {
	Base    *url.URL // server URL
	Version string   // the version served
	opts    MediaOptions
	ctx     context.Context
}

// NewMedia connects to the server at serverURL and pins the version to
// fetch: opts.Version, else the node's canary assignment, else current.
func NewMedia(ctx context.Context, serverURL string, opts MediaOptions) (*Media, error) {
	opts.defaults()
	u, err := url.Parse(strings.TrimRight(serverURL, "/") + "/")
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") {
		return nil, fmt.Errorf("bad server URL %q", serverURL)
	}
	m := &Media{Base: u, opts: opts, ctx: ctx}
	p := "CLONE_CD_VERSION"
	if opts.Version != "" {
		p = "v/" + opts.Version + "/CLONE_CD_VERSION"
	}
	b, err := m.get(p)
	if err != nil {
		return nil, err
	}
	m.Version = strings.TrimSpace(string(b))
	if !validName(m.Version) {
		return nil, fmt.Errorf("%s: bad version %q", m.url(p), m.Version)
	}
	return m, nil
}

func (m *Media) url(name string) string { return m.Base.String() + name }

func (m *Media) path(name string) string {
	if m.Version == "" {
		return name
	}
	return "v/" + url.PathEscape(m.Version) + "/" + name
}

func (m *Media) request(ctx context.Context, method, name string) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, method, m.url(name), nil)
	if err != nil {
		return nil, err
	}
	if m.opts.Node != "" {
		req.Header.Set(NodeHeader, m.opts.Node)
	}
	return req, nil
}

// get fetches a small file whole, retrying transient failures.
func (m *Media) get(name string) ([]byte, error) {
	var last error
	for fails := 1; ; fails++ {
		req, err := m.request(m.ctx, http.MethodGet, name)
		if err != nil {
			return nil, err
		}
		var retryAfter time.Duration
		resp, err := m.opts.Client.Do(req)
		if err == nil {
			b, rerr := io.ReadAll(io.LimitReader(resp.Body, 256<<20))
			resp.Body.Close()
			switch {
			case resp.StatusCode == http.StatusOK && rerr == nil:
				return b, nil
			case resp.StatusCode == http.StatusNotFound:
				return nil, &fs.PathError{Op: "open", Path: m.url(name), Err: fs.ErrNotExist}
			case resp.StatusCode >= 400 && resp.StatusCode < 500:
				return nil, fmt.Errorf("GET %s: %s: %s", m.url(name), resp.Status, bytes.TrimSpace(b))
			case rerr != nil:
				err = rerr
			default:
				err = fmt.Errorf("%s", resp.Status)
				retryAfter = parseRetryAfter(resp.Header.Get("Retry-After"))
			}
		}
		last = fmt.Errorf("GET %s: %w", m.url(name), err)
		if m.ctx.Err() != nil {
			return nil, last
		}
		if fails >= m.opts.Retries {
			return nil, fmt.Errorf("%w (gave up after %d attempts)", last, fails)
		}
		m.opts.Logf("netclone: %v; retrying", last)
		if err := m.opts.wait(m.ctx, fails, retryAfter); err != nil {
			return nil, last
		}
	}
}

func parseRetryAfter(s string) time.Duration {
	if n, err := strconv.Atoi(strings.TrimSpace(s)); err == nil && n >= 0 && n < 3600 {
		return time.Duration(n) * time.Second
	}
	return 0
}

// Open opens a file of the media.
func (m *Media) Open(name string) (fs.File, error) {
	if !fs.ValidPath(name) {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrInvalid}
	}
	if name == ImageFile {
		return m.OpenImage()
	}
	b, err := m.get(m.path(name))
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			pe.Path = name
			return nil, pe
		}
		return nil, err
	}
	return &memFile{Reader: bytes.NewReader(b), info: fileInfo{name: name, size: int64(len(b))}}, nil
}

// ReadFile implements fs.ReadFileFS for small files.
func (m *Media) ReadFile(name string) ([]byte, error) {
	if name == ImageFile {
		return nil, fmt.Errorf("netclone: %s is streamed, not read whole", name)
	}
	f, err := m.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(f)
}

// OpenImage starts the image stream. Its Read returns ErrChecksum instead
// of io.EOF when the sha256 at the end does not match.
func (m *Media) OpenImage() (*Stream, error) {
	var want string
	if b, err := m.get(m.path(ImageFile + ".sha256")); err == nil {
		if want, err = ParseSHA256(string(b)); err != nil {
			return nil, fmt.Errorf("%s.sha256: %w", ImageFile, err)
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	s := &Stream{m: m, name: m.path(ImageFile), want: want, h: sha256.New(), size: -1}
	if err := s.connect(); err != nil {
		return nil, err
	}
	return s, nil
}

// Stream is a resumable, checksummed image download.
type Stream struct {
	m       *Media
	name    string
	want    string // expected sha256 ("" = unchecked)
	h       hash.Hash
	etag    string
	size    int64 // -1 until known
	off     int64
	body    io.ReadCloser
	mu      sync.Mutex // guards cancel (the idle timer calls it)
	cancel  context.CancelFunc
	idle    *time.Timer
	fails   int
	Resumes int // reconnections after the first
	done    bool
}

// Size is the image size (-1 if the server did not say).
func (s *Stream) Size() int64 { return s.size }

// Offset is how many bytes have been read.
func (s *Stream) Offset() int64 { return s.off }

// SHA256 is the expected hash ("" if the server has none).
func (s *Stream) SHA256() string { return s.want }

// connect (re)opens the HTTP stream at s.off, retrying with backoff.
func (s *Stream) connect() error {
	o := &s.m.opts
	for {
		err := s.connectOnce()
		if err == nil {
			return nil
		}
		var perm *permanentError
		if errors.As(err, &perm) {
			return perm.err
		}
		s.fails++
		if s.m.ctx.Err() != nil {
			return err
		}
		if s.fails >= o.Retries {
			return fmt.Errorf("%w (gave up after %d failed attempts in a row)", err, s.fails)
		}
		o.Logf("netclone: %v; retry %d/%d at byte %d", err, s.fails, o.Retries, s.off)
		var ra *retryAfterError
		var after time.Duration
		if errors.As(err, &ra) {
			after = ra.d
		}
		if err := o.wait(s.m.ctx, s.fails, after); err != nil {
			return err
		}
	}
}

type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }

type retryAfterError struct {
	err error
	d   time.Duration
}

func (e *retryAfterError) Error() string { return e.err.Error() }

func (s *Stream) connectOnce() error {
	ctx, cancel := context.WithCancel(s.m.ctx)
	req, err := s.m.request(ctx, http.MethodGet, s.name)
	if err != nil {
		cancel()
		return &permanentError{err}
	}
	if s.off > 0 {
		req.Header.Set("Range", fmt.Sprintf("bytes=%d-", s.off))
		if s.etag != "" {
			req.Header.Set("If-Range", s.etag)
		}
	}
	u := s.m.url(s.name)
	resp, err := s.m.opts.Client.Do(req)
	if err != nil {
		cancel()
		return fmt.Errorf("GET %s: %w", u, err)
	}
	fail := func(e error) error {
		resp.Body.Close()
		cancel()
		return e
	}
	switch {
	case resp.StatusCode == http.StatusPartialContent && s.off > 0:
		start, total, ok := parseContentRange(resp.Header.Get("Content-Range"))
		if !ok || start != s.off {
			return fail(&permanentError{fmt.Errorf("GET %s: server resumed at %q, wanted byte %d", u, resp.Header.Get("Content-Range"), s.off)})
		}
		if s.size >= 0 && total >= 0 && total != s.size {
			return fail(&permanentError{fmt.Errorf("GET %s: %w (size %d, was %d)", u, ErrChanged, total, s.size)})
		}
		if et := resp.Header.Get("ETag"); s.etag != "" && et != "" && et != s.etag {
			return fail(&permanentError{fmt.Errorf("GET %s: %w (ETag %s, was %s)", u, ErrChanged, et, s.etag)})
		}
		s.Resumes++
	case resp.StatusCode == http.StatusOK && s.off == 0:
		s.etag = resp.Header.Get("ETag")
		s.size = resp.ContentLength
	case resp.StatusCode == http.StatusOK: // If-Range did not match
		return fail(&permanentError{fmt.Errorf("GET %s: %w (ETag now %s, was %s)", u, ErrChanged, resp.Header.Get("ETag"), s.etag)})
	case resp.StatusCode == http.StatusRequestedRangeNotSatisfiable && s.size >= 0 && s.off == s.size:
		resp.Body.Close()
		s.body = io.NopCloser(strings.NewReader(""))
		s.setCancel(cancel)
		return nil
	case resp.StatusCode == http.StatusNotFound:
		return fail(&permanentError{&fs.PathError{Op: "open", Path: u, Err: fs.ErrNotExist}})
	case resp.StatusCode == http.StatusServiceUnavailable || resp.StatusCode == http.StatusTooManyRequests:
		return fail(&retryAfterError{fmt.Errorf("GET %s: %s", u, resp.Status), parseRetryAfter(resp.Header.Get("Retry-After"))})
	case resp.StatusCode >= 400 && resp.StatusCode < 500:
		return fail(&permanentError{fmt.Errorf("GET %s: %s", u, resp.Status)})
	default:
		return fail(fmt.Errorf("GET %s: %s", u, resp.Status))
	}
	s.body = resp.Body
	s.setCancel(cancel)
	if s.idle == nil {
		s.idle = time.AfterFunc(s.m.opts.IdleTimeout, func() { s.cancelBody() })
	}
	s.idle.Reset(s.m.opts.IdleTimeout)
	return nil
}

func (s *Stream) setCancel(c context.CancelFunc) {
	s.mu.Lock()
	s.cancel = c
	s.mu.Unlock()
}

func (s *Stream) cancelBody() {
	s.mu.Lock()
	c := s.cancel
	s.mu.Unlock()
	if c != nil {
		c()
	}
}

// parseContentRange reads "bytes START-END/TOTAL" (TOTAL may be *: -1).
func parseContentRange(v string) (start, total int64, ok bool) {
	v, found := strings.CutPrefix(v, "bytes ")
	if !found {
		return 0, 0, false
	}
	rng, tot, found := strings.Cut(v, "/")
	if !found {
		return 0, 0, false
	}
	a, _, found := strings.Cut(rng, "-")
	if !found {
		return 0, 0, false
	}
	start, err := strconv.ParseInt(a, 10, 64)
	if err != nil || start < 0 {
		return 0, 0, false
	}
	total = -1
	if tot != "*" {
		if total, err = strconv.ParseInt(tot, 10, 64); err != nil || total < 0 {
			return 0, 0, false
		}
	}
	return start, total, true
}

// Read reads the image, reconnecting after drops.
func (s *Stream) Read(p []byte) (int, error) {
	if s.done {
		return 0, io.EOF
	}
	for {
		if s.body == nil {
			if err := s.connect(); err != nil {
				return 0, err
			}
		}
		n, err := s.body.Read(p)
		if n > 0 {
			s.h.Write(p[:n])
			s.off += int64(n)
			s.fails = 0
			s.idle.Reset(s.m.opts.IdleTimeout)
		}
		if err == io.EOF && (s.size < 0 || s.off == s.size) {
			s.closeBody()
			if s.size >= 0 && s.off != s.size {
				return n, fmt.Errorf("%s: short stream: %d of %d bytes", s.name, s.off, s.size)
			}
			s.done = true
			if s.want != "" {
				if got := hex.EncodeToString(s.h.Sum(nil)); got != s.want {
					return n, fmt.Errorf("%s: %w: got %s, node.cpio.gz.sha256 says %s", s.m.url(s.name), ErrChecksum, got, s.want)
				}
			}
			if n > 0 {
				return n, nil
			}
			return 0, io.EOF
		}
		if err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			s.closeBody()
			if s.m.ctx.Err() != nil {
				return n, s.m.ctx.Err()
			}
			if s.size >= 0 && s.off > s.size {
				return n, &permanentError{fmt.Errorf("%s: server sent more than %d bytes", s.name, s.size)}
			}
			s.fails++
			if s.fails >= s.m.opts.Retries {
				return n, fmt.Errorf("%s at byte %d: %w (gave up after %d failed attempts in a row)", s.m.url(s.name), s.off, err, s.fails)
			}
			s.m.opts.Logf("netclone: %s dropped at byte %d: %v; resuming (%d/%d)", s.name, s.off, err, s.fails, s.m.opts.Retries)
			if werr := s.m.opts.wait(s.m.ctx, s.fails, 0); werr != nil {
				return n, werr
			}
			if n > 0 {
				return n, nil
			}
			continue
		}
		return n, nil
	}
}

func (s *Stream) closeBody() {
	if s.body != nil {
		s.body.Close()
		s.body = nil
	}
	s.cancelBody()
	s.setCancel(nil)
}

// Close ends the stream.
func (s *Stream) Close() error {
	s.closeBody()
	if s.idle != nil {
		s.idle.Stop()
	}
	return nil
}

// Stat describes the image.
func (s *Stream) Stat() (fs.FileInfo, error) {
	return fileInfo{name: ImageFile, size: s.size}, nil
}

type memFile struct {
	*bytes.Reader
	info fileInfo
}

func (f *memFile) Stat() (fs.FileInfo, error) { return f.info, nil }
func (f *memFile) Close() error               { return nil }

type fileInfo struct {
	name string
	size int64
}

func (i fileInfo) Name() string       { return i.name[strings.LastIndexByte(i.name, '/')+1:] }
func (i fileInfo) Size() int64        { return i.size }
func (i fileInfo) Mode() fs.FileMode  { return 0o444 }
func (i fileInfo) ModTime() time.Time { return time.Time{} }
func (i fileInfo) IsDir() bool        { return false }
func (i fileInfo) Sys() any           { return nil }
