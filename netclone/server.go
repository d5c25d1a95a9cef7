package netclone

import (
	"bufio"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/net/netutil"

	"github.com/clonecd/clonecd/fleet"
	"github.com/clonecd/clonecd/medium"
	"github.com/clonecd/clonecd/nodesync"
	"github.com/clonecd/clonecd/trust"
	"github.com/clonecd/clonecd/versions"
)

// NodeHeader names the node on the requests its cloner makes, so that a
// queued node shows as waiting and a canary assignment is honoured. The
// server believes it from the admin only: a node is the node its
// credential names.
const NodeHeader = "X-Clonecd-Node"

// VersionHeader carries the version the server resolved for a request.
const VersionHeader = "X-Clonecd-Version"

// ServerHeader is on every answer of a clonecd server (value "clonecd"),
// so that a client tells "the server has no such thing" from "this is not
// a clonecd server".
const ServerHeader = "X-Clonecd-Server"

// ServerOptions tunes a Server. The zero value serves at most 4 image
// streams at once with the defaults below.
type ServerOptions struct {
	MaxStreams int // image streams served at once (0: 4)
	// MaxQueue bounds the requests waiting for a stream (0: 64); past it
	// a request is answered 503 with Retry-After.
	MaxQueue int
	// QueueWait bounds one request's wait in the queue (0: 10 minutes);
	// then it is answered 503 with Retry-After.
	QueueWait time.Duration
	// StallTimeout cuts a stream (any served file) whose client takes no
	// data for this long, freeing its slot (0: 30 seconds). Each chunk of
	// at most 1 MiB renews the write deadline.
	StallTimeout time.Duration
	// BodyTimeout bounds reading a request's body (0: 60 seconds).
	BodyTimeout time.Duration
	// MaxConns bounds the connections served at once by Serve (0: 1024);
	// more wait to be accepted.
	MaxConns int
	// Nodes bounds the node store: node directories, log bytes.
	Nodes fleet.Limits
	// Secret checks every request's credential (package trust: a node's
	// token, or the admin's). Nil: no credential is valid, every request
	// is answered 401.
	Secret *trust.Secret
	// TLS makes Serve speak HTTPS (trust.ServerTLSConfig); nil: plain
	// HTTP.
	TLS *tls.Config
	// Logger gets one line per request and per event (node state
	// changes, version changes, admission decisions, the page's
	// actions); nil: silent.
	Logger       *slog.Logger
	NoRequestLog bool // log events only (serve --quiet)
	// Rsh is the remote shell the fleet page's reclone runs (serve
	// --rsh; reclone's --rsh); nil: the page shows the command instead.
	Rsh []string
	// Newcomers lists machines that asked to boot and are no node yet,
	// for the fleet page (the PXE server's); nil: this server has none.
	Newcomers func() []Newcomer
	// Changed, when not nil, is told every change of a node's state
	// after the server's own bookkeeping (serve --pxe: a clone done
	// sends the node's next network boot to its disk).
	Changed func(old, cur fleet.State)
	// PeerBytes is how many image bytes the nodes served each other (the
	// swarm), by version, for the page, status and /metrics; nil: this
	// server has no swarm.
	PeerBytes func() map[string]int64
	// Swarm answers SwarmPath (the swarm's tracker: announce, scrape)
	// for any credential, as the files; nil: this server has no swarm.
	Swarm http.Handler
	// SeedBytes is how many image bytes this master's own swarm peers
	// (its seeders) sent, by version: counted with the master's bytes;
	// nil: none.
	SeedBytes func() map[string]int64
}

func (o *ServerOptions) defaults() {
	if o.MaxStreams <= 0 {
		o.MaxStreams = 4
	}
	if o.MaxQueue <= 0 {
		o.MaxQueue = 64
	}
	if o.QueueWait <= 0 {
		o.QueueWait = 10 * time.Minute
	}
	if o.StallTimeout <= 0 {
		o.StallTimeout = 30 * time.Second
	}
	if o.BodyTimeout <= 0 {
		o.BodyTimeout = 60 * time.Second
	}
	if o.MaxConns <= 0 {
		o.MaxConns = 1024
	}
}

// Timeouts and caps of every request (see Serve and guard).
const (
	readHeaderTimeout = 10 * time.Second
	apiWriteTimeout   = 30 * time.Second // writing an API answer
	idleTimeout       = 2 * time.Minute
	maxHeaderBytes    = 16 << 10
	maxStateBody      = 64 << 10
	maxAssignBody     = 64
	chunk             = 1 << 20 // bytes per renewed write deadline
)

// Server serves an image store (package versions: its current version, a
// node's pinned version, any version under /v/V/) and keeps the nodes'
// reports in the store's node store (package fleet). See the package
// comment for the API.
type Server struct {
	store   *versions.Store
	nodes   *fleet.Store
	o       ServerOptions
	adm     *admission
	auth    *trust.Auth
	handler http.Handler
	ops     *ops // the fleet page, /metrics, the log (ops.go)
	blobs   *blobs

	etagsMu sync.Mutex
	etags   map[etagKey]string
}

type etagKey struct {
	path  string
	size  int64
	mtime time.Time
}

// NewServer returns a server of store.
func NewServer(store *versions.Store, o ServerOptions) *Server {
	o.defaults()
	secret := o.Secret
	if secret == nil {
		var err error
		if secret, err = trust.NewSecret(); err != nil {
			panic(err) // crypto/rand does not fail on Linux
		}
	}
	s := &Server{store: store, nodes: store.Nodes(o.Nodes), o: o, auth: trust.NewAuth(secret),
		adm: &admission{max: o.MaxStreams, maxQueue: o.MaxQueue, wait: o.QueueWait}}
	s.ops = newOps(s)
	s.blobs = &blobs{dir: store.BlobDir()}
	s.nodes.OnChange(s.ops.nodeChanged)
	s.handler = s.ops.observe(s.routes())
	return s
}

// access says who may call a route; guard checks it, for every route.
// There is no route without a credential.
type access int

const (
	reader    access = iota // any node or the admin: files, versions, states, stats
	ownNode                 // the node the path names, or the admin: its state and log
	adminOnly               // the admin only: pins (assign), anything that changes a version
)

func (s *Server) routes() http.Handler {
	m := http.NewServeMux()
	for _, r := range []struct {
		pattern string
		acc     access
		maxBody int64
		h       http.HandlerFunc
	}{
		{"GET /api/stats", reader, 0, s.handleStats},
		{"GET /api/versions", reader, 0, s.handleVersions},
		{"GET /api/versions/{version}", reader, 0, s.handleVersion},
		{"GET /api/nodes", reader, 0, s.handleNodes},
		{"GET /api/nodes/{node}", reader, 0, s.handleNodeGet},
		{"POST /api/nodes/{node}", ownNode, maxStateBody, s.handleNodePost},
		{"PUT /api/nodes/{node}/log", ownNode, s.nodes.Limits().MaxLog, s.handleLogPut},
		{"POST /api/nodes/{node}/log", ownNode, s.nodes.Limits().MaxLog, s.handleLogPut},
		{"GET /api/nodes/{node}/log", ownNode, 0, s.handleLogGet},
		{"POST /api/nodes/{node}/assign", adminOnly, maxAssignBody, s.handleAssign},
		{"GET /v/{version}/{file...}", reader, 0, s.handleVersionFile},
		// The blob store (package nodesync, clonecd sync): the image's
		// contents, so the image's credential.
		{"GET " + nodesync.Prefix + "{sum}", reader, 0, s.handleBlobs},
		{"POST " + nodesync.Prefix + "{$}", reader, maxBlobsBody, s.handleBlobs},
		{"GET /{file...}", reader, 0, s.handleFile},
		// The fleet page and its data (page.go, events.go, metrics.go):
		// read-only; its actions are under /admin/ (actions.go).
		{"GET /{$}", reader, 0, s.handleIndex},
		{"GET /node/{node}", reader, 0, s.handleNodePage},
		{"GET /ui/{asset}", reader, 0, s.handleAsset},
		{"GET /api/fleet", reader, 0, s.handleFleet},
		{"GET /api/events", reader, 0, s.handleEvents},
		{"GET /api/nodeset", reader, 0, s.handleNodeset},
		{"GET /api/nodes/{node}/history", reader, 0, s.handleHistory},
		{"GET /metrics", reader, 0, s.ops.metrics.handler().ServeHTTP},
		{"GET /admin/{$}", adminOnly, 0, s.handleAdminIndex},
		{"GET /admin/node/{node}", adminOnly, 0, s.handleAdminNodePage},
		{"POST /admin/api/promote", adminOnly, maxActionBody, s.handlePromote},
		{"POST /admin/api/rollback", adminOnly, maxActionBody, s.handleRollback},
		{"POST /admin/api/bad", adminOnly, maxActionBody, s.handleMark(true)},
		{"POST /admin/api/good", adminOnly, maxActionBody, s.handleMark(false)},
		{"POST /admin/api/assign", adminOnly, maxActionBody, s.handleAssignAction},
		{"POST /admin/api/reclone", adminOnly, maxActionBody, s.handleReclone},
	} {
		m.Handle(r.pattern, s.guard(r.acc, r.maxBody, r.h))
	}
	if s.o.Swarm != nil {
		m.Handle("GET "+SwarmPath+"{op}", s.guard(reader, 0, s.o.Swarm.ServeHTTP))
	}
	return m
}

// guard wraps every route: it marks the answer as clonecd's, checks the
// credential for acc (401 with WWW-Authenticate without a valid one, 403
// for a node acting for another node or as the admin), caps the request
// body (413 past maxBody), bounds the time to read it, and bounds an API
// answer's write (files renew theirs per chunk instead).
func (s *Server) guard(acc access, maxBody int64, h http.HandlerFunc) http.Handler {
	limited := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rc := http.NewResponseController(w)
		r.Body = http.MaxBytesReader(w, r.Body, max(maxBody, 0))
		if maxBody > 0 {
			rc.SetReadDeadline(time.Now().Add(s.o.BodyTimeout))
		}
		if strings.HasPrefix(r.URL.Path, "/api/") {
			rc.SetWriteDeadline(time.Now().Add(apiWriteTimeout))
		}
		h(w, r)
	})
	var checked http.Handler
	switch acc {
	case ownNode:
		checked = s.auth.RequireNode(func(r *http.Request) string { return r.PathValue("node") }, limited)
	case adminOnly:
		checked = s.auth.RequireAdmin(limited)
	default:
		checked = s.auth.RequireReader(limited)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set(ServerHeader, "clonecd")
		checked.ServeHTTP(w, r)
	})
}

// nodeOf is the node a request comes from: the node its credential
// names; for the admin, NodeHeader (fetch --node, reclone's tests); "" for
// none.
func nodeOf(r *http.Request) string {
	p := trust.PrincipalOf(r.Context())
	switch p.Role {
	case trust.NodeRole:
		return p.Node
	case trust.AdminRole:
		if n := r.Header.Get(NodeHeader); fleet.ValidName(n) == nil {
			return n
		}
	}
	return ""
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.handler.ServeHTTP(w, r) }

// HTTPServer returns an http.Server for s with its timeouts: headers
// (and a TLS handshake) within 10 s, idle connections closed after 2 min,
// headers of at most 16 KiB. (No overall read or write timeout: streams
// take minutes; guard and the per-chunk deadlines bound each request
// instead.) With ServerOptions.TLS it has that TLS configuration, HTTP/1.1
// only: one stream a connection, so a client that stops reading stalls
// its own connection and loses its slot, and MaxConns counts streams.
func (s *Server) HTTPServer() *http.Server {
	hs := &http.Server{Handler: s, ReadHeaderTimeout: readHeaderTimeout, IdleTimeout: idleTimeout, MaxHeaderBytes: maxHeaderBytes,
		ErrorLog: slog.NewLogLogger(s.ops.log.Handler(), slog.LevelWarn)}
	hs.RegisterOnShutdown(s.ops.shutdown) // ends the event streams
	if s.o.TLS != nil {
		hs.TLSConfig = s.o.TLS.Clone()
		hs.TLSConfig.NextProtos = []string{"http/1.1"}
		hs.TLSNextProto = map[string]func(*http.Server, *tls.Conn, http.Handler){} // no HTTP/2
	}
	return hs
}

// Serve serves on ln (HTTPS with ServerOptions.TLS), at most MaxConns
// connections at once, until ctx is done; then it stops accepting and
// gives open requests 5 seconds.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	hs := s.HTTPServer()
	go s.ops.watch(ctx) // logs version changes other processes make
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		select {
		case <-ctx.Done():
		case <-stopped:
			return
		}
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		hs.Shutdown(sctx)
	}()
	ln = netutil.LimitListener(ln, s.o.MaxConns)
	var err error
	if hs.TLSConfig != nil {
		err = hs.ServeTLS(ln, "", "")
	} else {
		err = hs.Serve(ln)
	}
	if errors.Is(err, http.ErrServerClosed) {
		<-stopped
		return nil
	}
	return err
}

// Stats reports the image streams now and so far.
func (s *Server) Stats() Stats { return s.adm.stats() }

// fail answers an error: its text for the client errors, a generic text
// for a 500 (the detail, with paths, goes to the server's log).
func (s *Server) fail(w http.ResponseWriter, r *http.Request, code int, err error) {
	msg := err.Error()
	if code == http.StatusInternalServerError {
		s.ops.log.Error("internal error", "method", r.Method, "path", r.URL.Path, "err", err)
		msg = "internal error (see the server's log)"
	}
	http.Error(w, msg, code)
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

// storeError answers an error of the store: 404 for a missing version,
// else 500.
func (s *Server) storeError(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, fs.ErrNotExist) {
		s.fail(w, r, http.StatusNotFound, errors.New(publicError(err)))
		return
	}
	s.fail(w, r, http.StatusInternalServerError, err)
}

// publicError says what is missing without the store's path.
func publicError(err error) string {
	var nv *versions.NoVersionError
	switch {
	case errors.As(err, &nv):
		return (&versions.NoVersionError{Where: "this server", Version: nv.Version}).Error()
	case errors.Is(err, fs.ErrNotExist):
		return "this server has no image store (clonecd publish on the master makes one)"
	}
	return err.Error()
}

func (s *Server) handleFile(w http.ResponseWriter, r *http.Request) {
	file := r.PathValue("file")
	var e *versions.Entry
	var err error
	if node := nodeOf(r); node != "" {
		if v := s.nodes.Assigned(node); v != "" {
			if e, err = s.store.Get(v); err != nil {
				s.fail(w, r, http.StatusNotFound, fmt.Errorf("node %s is pinned to version %s, which this server does not have", node, v))
				return
			}
		}
	}
	if e == nil {
		if e, err = s.store.Current(); err != nil {
			s.storeError(w, r, err)
			return
		}
	}
	if file == "" {
		fmt.Fprintf(w, "clonecd image server\ncurrent version: %s\n", e.Version)
		return
	}
	s.serve(w, r, e, file)
}

func (s *Server) handleVersionFile(w http.ResponseWriter, r *http.Request) {
	v := r.PathValue("version")
	if _, err := versions.ParseVersion(v); err != nil {
		s.fail(w, r, http.StatusNotFound, fmt.Errorf("this server has no version %.20q", v))
		return
	}
	e, err := s.store.Get(v)
	if err != nil {
		s.storeError(w, r, err)
		return
	}
	s.serve(w, r, e, r.PathValue("file"))
}

// serve sends a file of version e with Range and strong ETag support;
// GETs of the image wait for an admission slot first.
func (s *Server) serve(w http.ResponseWriter, r *http.Request, e *versions.Entry, file string) {
	if !medium.IsFile(file) {
		http.NotFound(w, r)
		return
	}
	p := e.Path(file)
	f, err := os.Open(p)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			http.NotFound(w, r)
			return
		}
		s.fail(w, r, http.StatusInternalServerError, err)
		return
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil || !st.Mode().IsRegular() {
		http.NotFound(w, r)
		return
	}
	sum := ""
	if file == e.ImageName() {
		sum = e.SHA256 // from the store; never recomputed per request
	}
	etag, err := s.etag(p, st, sum)
	if err != nil {
		s.fail(w, r, http.StatusInternalServerError, err)
		return
	}
	w.Header().Set("ETag", etag)
	w.Header().Set("Accept-Ranges", "bytes")
	w.Header().Set(VersionHeader, e.Version)
	if medium.IsImage(file) && r.Method == http.MethodGet {
		if !s.admit(w, r, e) {
			return
		}
		defer s.adm.release()
	}
	http.ServeContent(&stallWriter{ResponseWriter: w, rc: http.NewResponseController(w), stall: s.o.StallTimeout}, r, "", st.ModTime(), f)
}

// admit waits for an image stream slot; false means the request was
// answered (503) or went away.
func (s *Server) admit(w http.ResponseWriter, r *http.Request, e *versions.Entry) bool {
	node := nodeOf(r)
	queued := func(ahead int) {
		s.ops.log.Info("admission", "decision", "queued", "node", node, "version", e.Version, "ahead", ahead, "remote", r.RemoteAddr)
		if node != "" {
			s.report(fleet.State{Node: node, State: fleet.Waiting, Version: e.Version, Detail: fmt.Sprintf("queued for an image stream, %d ahead", ahead)})
		}
	}
	err := s.adm.acquire(r.Context(), queued)
	if errors.Is(err, errQueueFull) || errors.Is(err, errQueueWait) {
		s.ops.log.Warn("admission", "decision", "refused", "node", node, "version", e.Version, "reason", err.Error(), "remote", r.RemoteAddr)
		w.Header().Set("Retry-After", strconv.Itoa(retryAfter))
		http.Error(w, err.Error()+"; try again later", http.StatusServiceUnavailable)
		return false
	}
	if err != nil {
		return false // the client went away while queued
	}
	if node != "" {
		_, err := s.nodes.Change(node, func(cur fleet.State) (fleet.State, bool) {
			return fleet.State{State: fleet.Cloning, Detail: "streaming the image"},
				cur.State == fleet.Waiting && strings.HasPrefix(cur.Detail, "queued")
		})
		if err != nil {
			s.ops.log.Warn("node state", "node", node, "err", err)
		}
	}
	s.ops.log.Info("admission", "decision", "admitted", "node", node, "version", e.Version, "remote", r.RemoteAddr)
	return true
}

// retryAfter is the Retry-After of a busy answer, in seconds.
const retryAfter = 10

// report records a state the server itself observed (best effort).
func (s *Server) report(st fleet.State) {
	if _, err := s.nodes.Update(st); err != nil {
		s.ops.log.Warn("node state", "node", st.Node, "err", err)
	}
}

// stallWriter renews the connection's write deadline before each chunk,
// so a client that stops reading is cut after stall and its slot freed,
// while one that reads slowly keeps its stream. ReadFrom keeps sendfile,
// one chunk at a time.
type stallWriter struct {
	http.ResponseWriter
	rc    *http.ResponseController
	stall time.Duration
}

func (w *stallWriter) renew() { w.rc.SetWriteDeadline(time.Now().Add(w.stall)) }

func (w *stallWriter) Write(p []byte) (int, error) {
	n := 0
	for len(p) > 0 {
		k := min(len(p), chunk)
		w.renew()
		m, err := w.ResponseWriter.Write(p[:k])
		n += m
		if err != nil {
			return n, err
		}
		p = p[k:]
	}
	return n, nil
}

func (w *stallWriter) ReadFrom(src io.Reader) (int64, error) {
	rf, ok := w.ResponseWriter.(io.ReaderFrom)
	if !ok {
		return io.Copy(struct{ io.Writer }{w}, src)
	}
	// http.ServeContent hands over an *io.LimitedReader of the file; a
	// chunk of it must stay one (not nested) for sendfile.
	lr, ok := src.(*io.LimitedReader)
	if !ok {
		lr = &io.LimitedReader{R: src, N: 1<<63 - 1}
	}
	var total int64
	for lr.N > 0 {
		w.renew()
		part := &io.LimitedReader{R: lr.R, N: min(lr.N, chunk)}
		n, err := rf.ReadFrom(part)
		total += n
		lr.N -= n
		if err != nil || n == 0 {
			return total, err
		}
	}
	return total, nil
}

func (w *stallWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// etag returns the strong ETag of p: from sum when given (the image's,
// from the store), else the sha256 of the file, cached by path, size and
// mtime.
func (s *Server) etag(p string, st fs.FileInfo, sum string) (string, error) {
	key := etagKey{p, st.Size(), st.ModTime()}
	s.etagsMu.Lock()
	if s.etags == nil {
		s.etags = map[etagKey]string{}
	}
	e, ok := s.etags[key]
	s.etagsMu.Unlock()
	if ok && sum == "" {
		return e, nil
	}
	if sum == "" {
		f, err := os.Open(p)
		if err != nil {
			return "", err
		}
		h := sha256.New()
		_, err = io.Copy(h, bufio.NewReaderSize(f, 1<<20))
		f.Close()
		if err != nil {
			return "", fmt.Errorf("hashing %s: %w", p, err)
		}
		sum = hex.EncodeToString(h.Sum(nil))
	}
	e = `"sha256-` + sum + `"`
	s.etagsMu.Lock()
	s.etags[key] = e
	s.etagsMu.Unlock()
	return e, nil
}
