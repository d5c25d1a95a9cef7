package netclone

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/clonecd/clonecd/fleet"
	"github.com/clonecd/clonecd/medium"
	"github.com/clonecd/clonecd/versions"
)

// ErrChecksum is returned at the end of an image stream whose sha256 does
// not match node.cpio.gz.sha256. Opening the image again starts over.
var ErrChecksum = errors.New("sha256 mismatch")

// ErrChanged is returned when a stream cannot resume because the server
// now serves a different file (its ETag changed).
var ErrChanged = errors.New("image changed on the server during the transfer")

// ErrNotServer is the error of a URL that answers, but not as a clonecd
// server (a 404 without ServerHeader: a web server, a wrong port).
var ErrNotServer = errors.New("not a clonecd server")

// StatusError is an HTTP answer other than success.
type StatusError struct {
	Method, URL string
	Code        int
	Status      string
	Msg         string // the server's message, cleaned, one line
	Clonecd     bool   // the answer carries ServerHeader
}

func (e *StatusError) Error() string {
	if !e.Clonecd && e.Code < 500 {
		return fmt.Sprintf("%s %s: %s, not from a clonecd server (is this a clonecd serve?)", e.Method, e.URL, e.Status)
	}
	if e.Msg != "" && e.Msg != http.StatusText(e.Code) && !strings.HasSuffix(e.Status, " "+e.Msg) {
		return fmt.Sprintf("%s %s: %s: %s", e.Method, e.URL, e.Status, e.Msg)
	}
	return fmt.Sprintf("%s %s: %s", e.Method, e.URL, e.Status)
}

// Unwrap makes a clonecd server's 404 fs.ErrNotExist and any 4xx of
// another server ErrNotServer.
func (e *StatusError) Unwrap() error {
	switch {
	case !e.Clonecd && e.Code < 500:
		return ErrNotServer
	case e.Code == http.StatusNotFound:
		return fs.ErrNotExist
	}
	return nil
}

func statusError(method, u string, resp *http.Response, body []byte) *StatusError {
	msg, _, _ := strings.Cut(string(bytes.TrimSpace(body)), "\n")
	return &StatusError{Method: method, URL: u, Code: resp.StatusCode, Status: resp.Status,
		Msg: fleet.Clean(msg, 300), Clonecd: resp.Header.Get(ServerHeader) != ""}
}

// MediaOptions tunes the network media.
type MediaOptions struct {
	// Access is the credential and the TLS settings (the server's pin).
	// The server knows the node by its credential.
	Access      Access
	Node        string        // the node (the admin's credential sends it as X-Clonecd-Node)
	Version     string        // fetch this version ("" = what the server says)
	Retries     int           // consecutive failed attempts before giving up (0: 10)
	Backoff     time.Duration // first wait after a failure, doubling (0: 500ms)
	MaxBackoff  time.Duration // longest wait (0: 10s)
	IdleTimeout time.Duration // a stream with no data this long is reconnected (0: 30s)
	// BusyTimeout bounds the total time a node waits while the server
	// answers busy (503 with Retry-After: its stream queue is full); such
	// answers do not count as failures until then (0: 2 hours).
	BusyTimeout time.Duration
	Client      *http.Client // nil: a client with Access's TLS that waits up to 15 minutes for an answer (a queued stream)
	// Swarm, when not nil, takes the image from the swarm when the
	// server offers one and the version has a torrent, the HTTP stream
	// otherwise and when the swarm fails (fetch and the cloner set it unless
	// told --no-swarm or clonecd.swarm=0).
	Swarm *SwarmOptions
	Logf  func(format string, a ...any)
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
	if o.BusyTimeout <= 0 {
		o.BusyTimeout = 2 * time.Hour
	}
	if o.Client == nil {
		// 15 minutes: beyond the server's longest queue wait.
		o.Client = &http.Client{Transport: o.Access.transport(15 * time.Minute)}
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

// Media is the clone media served by `clonecd serve`, as an fs.FS and
// fs.StatFS: every file of one version (pinned when the media is opened,
// so a promote during the clone cannot mix versions). Opening the
// image (node.cpio.gz or node.cpio.zst) returns a stream that resumes with Range/If-Range after a
// dropped connection (with backoff, up to Retries failures in a row) and
// checks its sha256 at the end. Stat asks with HEAD, which does not queue
// for a stream.
type Media struct {
	Base    *url.URL // server URL
	Version string   // the version served
	opts    MediaOptions
	ctx     context.Context
}

// NewMedia connects to the server at serverURL and pins the version to
// fetch: opts.Version, else the node's canary assignment, else current.
// A server without that version, or a URL that is not a clonecd server,
// is an error that says so.
func NewMedia(ctx context.Context, serverURL string, opts MediaOptions) (*Media, error) {
	opts.defaults()
	u, err := url.Parse(strings.TrimRight(serverURL, "/") + "/")
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("bad server URL %q (want https://HOST:PORT)", serverURL)
	}
	m := &Media{Base: u, opts: opts, ctx: ctx}
	p := medium.Version
	if opts.Version != "" {
		if _, err := versions.ParseVersion(opts.Version); err != nil {
			return nil, err
		}
		p = "v/" + opts.Version + "/" + medium.Version
	}
	b, err := m.get(p)
	if errors.Is(err, fs.ErrNotExist) {
		if opts.Version != "" {
			return nil, &versions.NoVersionError{Where: "the server " + serverURL, Version: opts.Version}
		}
		return nil, &versions.NoVersionError{Where: "the server " + serverURL}
	}
	if err != nil {
		return nil, err
	}
	m.Version = strings.TrimSpace(string(b))
	if err := medium.ValidVersion(m.Version); err != nil {
		return nil, fmt.Errorf("%s: %w", m.url(p), err)
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
	m.opts.Access.authorize(req)
	return req, nil
}

// get fetches a small file whole, retrying transient failures. A clonecd
// server's 404 is an *fs.PathError wrapping fs.ErrNotExist.
func (m *Media) get(name string) ([]byte, error) {
	b, _, err := m.roundTrip(http.MethodGet, name)
	return b, err
}

// roundTrip sends a GET or HEAD for name, retrying transport errors and
// 5xx answers (after Retry-After when given), and returns the body (GET)
// and the Content-Length.
func (m *Media) roundTrip(method, name string) ([]byte, int64, error) {
	for fails := 1; ; fails++ {
		req, err := m.request(m.ctx, method, name)
		if err != nil {
			return nil, 0, err
		}
		var retryAfter time.Duration
		resp, err := m.opts.Client.Do(req)
		if err == nil {
			b, rerr := io.ReadAll(io.LimitReader(resp.Body, 256<<20))
			resp.Body.Close()
			switch {
			case resp.StatusCode == http.StatusOK && rerr == nil:
				return b, resp.ContentLength, nil
			case resp.StatusCode == http.StatusNotFound && resp.Header.Get(ServerHeader) != "":
				return nil, 0, &fs.PathError{Op: "open", Path: m.url(name), Err: fs.ErrNotExist}
			case resp.StatusCode >= 400 && resp.StatusCode < 500:
				return nil, 0, statusError(method, m.url(name), resp, b)
			case rerr != nil:
				err = fmt.Errorf("%s %s: %w", method, m.url(name), rerr)
			default:
				err = statusError(method, m.url(name), resp, b)
				retryAfter = parseRetryAfter(resp.Header.Get("Retry-After"))
			}
		}
		if m.ctx.Err() != nil {
			return nil, 0, err
		}
		if fails >= m.opts.Retries {
			return nil, 0, fmt.Errorf("%w (gave up after %d attempts)", err, fails)
		}
		m.opts.Logf("netclone: %v; retrying", err)
		if werr := m.opts.wait(m.ctx, fails, retryAfter); werr != nil {
			return nil, 0, err
		}
	}
}

func parseRetryAfter(s string) time.Duration {
	if n, err := strconv.Atoi(strings.TrimSpace(s)); err == nil && n >= 0 && n < 3600 {
		return time.Duration(n) * time.Second
	}
	return 0
}

// relative turns a PathError's URL back into the media's name.
func relative(err error, name string) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		pe.Path = name
		return pe
	}
	return err
}

// Open opens a file of the media.
func (m *Media) Open(name string) (fs.File, error) {
	if !fs.ValidPath(name) {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrInvalid}
	}
	if medium.IsImage(name) {
		return m.openImage(name)
	}
	b, err := m.get(m.path(name))
	if err != nil {
		return nil, relative(err, name)
	}
	return &memFile{Reader: bytes.NewReader(b), info: fileInfo{name: name, size: int64(len(b))}}, nil
}

// Stat describes a file of the media with a HEAD request (which does not
// wait for an image stream slot).
func (m *Media) Stat(name string) (fs.FileInfo, error) {
	if !fs.ValidPath(name) {
		return nil, &fs.PathError{Op: "stat", Path: name, Err: fs.ErrInvalid}
	}
	_, size, err := m.roundTrip(http.MethodHead, m.path(name))
	if err != nil {
		return nil, relative(err, name)
	}
	return fileInfo{name: name, size: size}, nil
}

// ReadFile implements fs.ReadFileFS for small files.
func (m *Media) ReadFile(name string) ([]byte, error) {
	if medium.IsImage(name) {
		return nil, fmt.Errorf("%s is streamed, not read whole", name)
	}
	f, err := m.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(f)
}

// OpenImage starts the stream of the version's image, node.cpio.gz or
// node.cpio.zst (FindImage). Its Read returns ErrChecksum instead of
// io.EOF when the sha256 at the end does not match.
func (m *Media) OpenImage() (*Stream, error) {
	name, want, err := m.findImage()
	if err != nil {
		return nil, err
	}
	return m.stream(name, want)
}

// FindImage names the version's image: the first of medium.Images whose
// sha256 file the server has (what the stream is checked against), else,
// from a server without sums, the first a HEAD finds.
func (m *Media) FindImage() (string, error) {
	name, _, err := m.findImage()
	return name, err
}

func (m *Media) findImage() (name, sum string, err error) {
	for _, n := range medium.Images {
		sum, err := m.sum(n)
		if err == nil {
			return n, sum, nil
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return "", "", err
		}
	}
	if name, err = medium.FindImage(m); err != nil {
		return "", "", fmt.Errorf("version %s on %s: %w", m.Version, m.Base, err)
	}
	return name, "", nil
}

// sum reads the sha256 file of the image name; fs.ErrNotExist when the
// server has none.
func (m *Media) sum(name string) (string, error) {
	sumFile := medium.SumName(name)
	b, err := m.get(m.path(sumFile))
	if err != nil {
		return "", err
	}
	return medium.ParseSum(b, sumFile)
}

// openImage starts the stream of the image name (one of medium.Images).
func (m *Media) openImage(name string) (*Stream, error) {
	want, err := m.sum(name)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	return m.stream(name, want)
}

// stream starts the stream of the image name, checked against want
// ("": unchecked).
func (m *Media) stream(name, want string) (*Stream, error) {
	if m.opts.Swarm != nil {
		s, err := m.openSwarm(name, want)
		if err == nil {
			return s, nil
		}
		if m.ctx.Err() != nil {
			return nil, m.ctx.Err()
		}
		m.opts.Logf("netclone: no swarm: %v; %s over HTTP", err, name)
	}
	s := &Stream{m: m, file: name, name: m.path(name), want: want, h: sha256.New(), size: -1}
	if err := s.connect(); err != nil {
		return nil, err
	}
	return s, nil
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
