package netclone

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// ImageFile is the image every node streams; only its GETs pass admission.
const ImageFile = "node.cpio.gz"

// NodeHeader names the node on the requests its cloner makes, so that a
// queued node shows as waiting and a canary assignment is honoured.
const NodeHeader = "X-Clonecd-Node"

// VersionHeader carries the version the server resolved for a request.
const VersionHeader = "X-Clonecd-Version"

// servedFiles are the files of a version a node may fetch.
var servedFiles = map[string]bool{
	ImageFile: true, ImageFile + ".sha256": true, "node.sfdisk": true,
	"CLONE_CD_VERSION": true, "clonecd.conf": true, "nodes": true, "ks.cfg": true,
	"isolinux/vmlinuz": true, "isolinux/initrd.img": true, "vmlinuz": true, "initrd.img": true,
}

// Server serves an image directory (see the package comment) over HTTP.
type Server struct {
	Dir        string
	MaxStreams int         // image streams served at once (<= 0: 4)
	Logger     *log.Logger // request and admission log; nil: silent
	adm        *admission  // created on first use
	admOnce    sync.Once   //
	etagMu     sync.Mutex  //
	etags      map[etagKey]string
	stateMu    sync.Mutex // serialises state.json read-modify-write
	mux        *http.ServeMux
	muxOnce    sync.Once
}

type etagKey struct {
	path  string
	size  int64
	mtime time.Time
}

// Stats counts image streams on the server.
type Stats struct {
	Active int   `json:"active"` // streams being served now
	Peak   int   `json:"peak"`   // most streams ever served at once
	Queued int   `json:"queued"` // requests waiting for a slot now
	Served int64 `json:"served"` // streams started in total
	Max    int   `json:"max"`    // the admission limit
}

// NewServer returns a server for dir with at most maxStreams image
// streams at once.
func NewServer(dir string, maxStreams int) *Server {
	return &Server{Dir: dir, MaxStreams: maxStreams}
}

func (s *Server) admission() *admission {
	s.admOnce.Do(func() {
		n := s.MaxStreams
		if n <= 0 {
			n = 4
		}
		s.adm = &admission{max: n}
	})
	return s.adm
}

// Stats reports the image streams now and so far.
func (s *Server) Stats() Stats { return s.admission().stats() }

func (s *Server) logf(format string, a ...any) {
	if s.Logger != nil {
		s.Logger.Printf(format, a...)
	}
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.muxOnce.Do(func() {
		m := http.NewServeMux()
		m.HandleFunc("GET /api/stats", s.handleStats)
		m.HandleFunc("GET /api/nodes", s.handleNodes)
		m.HandleFunc("GET /api/nodes/{node}", s.handleNodeGet)
		m.HandleFunc("POST /api/nodes/{node}", s.handleNodePost)
		m.HandleFunc("PUT /api/nodes/{node}/log", s.handleLogPut)
		m.HandleFunc("POST /api/nodes/{node}/log", s.handleLogPut)
		m.HandleFunc("GET /api/nodes/{node}/log", s.handleLogGet)
		m.HandleFunc("POST /api/nodes/{node}/assign", s.handleAssign)
		m.HandleFunc("GET /v/{version}/{file...}", s.handleVersionFile)
		m.HandleFunc("GET /{file...}", s.handleFile)
		s.mux = m
	})
	s.mux.ServeHTTP(w, r)
}

func (s *Server) handleStats(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, s.Stats())
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

// CurrentDir is the directory holding the current version: DIR/current
// resolved, else DIR itself.
func CurrentDir(dir string) string {
	if p, err := filepath.EvalSymlinks(filepath.Join(dir, "current")); err == nil {
		if st, err := os.Stat(p); err == nil && st.IsDir() {
			return p
		}
	}
	return dir
}

// VersionDir is the directory of version v: DIR/versions/v, else the
// current directory when that is version v.
func VersionDir(dir, v string) (string, error) {
	if !validName(v) {
		return "", fmt.Errorf("bad version %q", v)
	}
	p := filepath.Join(dir, "versions", v)
	if st, err := os.Stat(p); err == nil && st.IsDir() {
		return p, nil
	}
	cur := CurrentDir(dir)
	if cv, err := ReadVersion(cur); err == nil && cv == v {
		return cur, nil
	}
	return "", fmt.Errorf("version %s: %w", v, fs.ErrNotExist)
}

// ReadVersion reads CLONE_CD_VERSION in dir.
func ReadVersion(dir string) (string, error) {
	b, err := os.ReadFile(filepath.Join(dir, "CLONE_CD_VERSION"))
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(b)), nil
}

// validName accepts node names and versions: letters, digits, . _ - and
// not starting with a dot.
func validName(s string) bool {
	if s == "" || len(s) > 128 || s[0] == '.' {
		return false
	}
	for _, c := range s {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '.', c == '_', c == '-':
		default:
			return false
		}
	}
	return true
}

func (s *Server) handleFile(w http.ResponseWriter, r *http.Request) {
	file := r.PathValue("file")
	if file == "" {
		s.index(w, r)
		return
	}
	dir := CurrentDir(s.Dir)
	if node := r.Header.Get(NodeHeader); node != "" && validName(node) {
		if v := s.assigned(node); v != "" {
			d, err := VersionDir(s.Dir, v)
			if err != nil {
				http.Error(w, fmt.Sprintf("node %s is assigned version %s: %v", node, v, err), http.StatusNotFound)
				return
			}
			dir = d
		}
	}
	s.serve(w, r, dir, file)
}

func (s *Server) handleVersionFile(w http.ResponseWriter, r *http.Request) {
	d, err := VersionDir(s.Dir, r.PathValue("version"))
	if err != nil {
		http.Error(w, err.Error(), http.StatusNotFound)
		return
	}
	s.serve(w, r, d, r.PathValue("file"))
}

func (s *Server) index(w http.ResponseWriter, r *http.Request) {
	v, _ := ReadVersion(CurrentDir(s.Dir))
	fmt.Fprintf(w, "clonecd image server\ncurrent version: %s\n", v)
}

// serve sends dir/file with Range and strong ETag support; GETs of the
// image wait for an admission slot first.
func (s *Server) serve(w http.ResponseWriter, r *http.Request, dir, file string) {
	if !servedFiles[file] {
		http.NotFound(w, r)
		return
	}
	p := filepath.Join(dir, filepath.FromSlash(file))
	if (file == "isolinux/vmlinuz" || file == "isolinux/initrd.img") && !exists(p) {
		p = filepath.Join(dir, path.Base(file)) // a store keeps them flat
	}
	if file == "nodes" {
		if st, err := os.Stat(p); err == nil && st.IsDir() {
			// A flat directory keeps node states in DIR/nodes/; its
			// identity table is then DIR/nodes.table.
			p = filepath.Join(dir, "nodes.table")
		}
	}
	f, err := os.Open(p)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			http.NotFound(w, r)
			return
		}
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil || st.IsDir() {
		http.NotFound(w, r)
		return
	}
	etag, err := s.etag(p, st)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("ETag", etag)
	w.Header().Set("Accept-Ranges", "bytes")
	if v, err := ReadVersion(dir); err == nil {
		w.Header().Set(VersionHeader, v)
	}
	if file == ImageFile && r.Method == http.MethodGet {
		node := r.Header.Get(NodeHeader)
		if !validName(node) {
			node = ""
		}
		adm := s.admission()
		queued := func(ahead int) {
			s.logf("%s %s: queued for an image stream (%d ahead)", r.RemoteAddr, node, ahead)
			if node != "" {
				s.UpdateState(State{Node: node, State: StateWaiting, Detail: fmt.Sprintf("queued for an image stream, %d ahead", ahead)})
			}
		}
		if err := adm.acquire(r.Context(), queued); err != nil {
			return // client went away while queued
		}
		defer adm.release()
		if node != "" {
			s.stateMu.Lock()
			if cur, err := s.readState(node); err == nil && cur.State == StateWaiting && strings.HasPrefix(cur.Detail, "queued") {
				s.stateMu.Unlock()
				s.UpdateState(State{Node: node, State: StateCloning, Detail: "streaming the image"})
			} else {
				s.stateMu.Unlock()
			}
		}
		s.logf("%s %s: image stream %s (%s)", r.RemoteAddr, node, p, r.Header.Get("Range"))
	}
	http.ServeContent(w, r, "", st.ModTime(), f)
}

func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// etag returns the strong ETag of p: from node.cpio.gz.sha256 for the
// image (never recomputed per request), else the sha256 of the file,
// cached by path, size and mtime.
func (s *Server) etag(p string, st fs.FileInfo) (string, error) {
	key := etagKey{p, st.Size(), st.ModTime()}
	s.etagMu.Lock()
	if s.etags == nil {
		s.etags = map[etagKey]string{}
	}
	e, ok := s.etags[key]
	s.etagMu.Unlock()
	if ok {
		return e, nil
	}
	var sum string
	if filepath.Base(p) == ImageFile {
		if b, err := os.ReadFile(p + ".sha256"); err == nil {
			sum, _ = ParseSHA256(string(b))
		}
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
	s.etagMu.Lock()
	s.etags[key] = e
	s.etagMu.Unlock()
	return e, nil
}

// ParseSHA256 takes the hash from a sha256sum line ("HEX  name").
func ParseSHA256(s string) (string, error) {
	f := strings.Fields(s)
	if len(f) == 0 || len(f[0]) != 64 {
		return "", fmt.Errorf("not a sha256sum line: %.80q", s)
	}
	if _, err := hex.DecodeString(f[0]); err != nil {
		return "", fmt.Errorf("not a sha256sum line: %.80q", s)
	}
	return strings.ToLower(f[0]), nil
}

// admission is a FIFO semaphore: at most max holders, the rest wait in
// arrival order.
type admission struct {
	mu     sync.Mutex
	max    int
	active int
	peak   int
	served int64
	queue  []chan struct{}
}

func (a *admission) acquire(ctx context.Context, queued func(ahead int)) error {
	a.mu.Lock()
	if a.active < a.max && len(a.queue) == 0 {
		a.grantLocked()
		a.mu.Unlock()
		return nil
	}
	ch := make(chan struct{})
	a.queue = append(a.queue, ch)
	ahead := len(a.queue) - 1
	a.mu.Unlock()
	if queued != nil {
		queued(ahead)
	}
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		a.mu.Lock()
		for i, c := range a.queue {
			if c == ch {
				a.queue = append(a.queue[:i], a.queue[i+1:]...)
				a.mu.Unlock()
				return ctx.Err()
			}
		}
		a.mu.Unlock()
		// Granted meanwhile: pass the slot on.
		a.release()
		return ctx.Err()
	}
}

func (a *admission) grantLocked() {
	a.active++
	a.served++
	if a.active > a.peak {
		a.peak = a.active
	}
}

func (a *admission) release() {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.active--
	if len(a.queue) > 0 && a.active < a.max {
		ch := a.queue[0]
		a.queue = a.queue[1:]
		a.grantLocked()
		close(ch)
	}
}

func (a *admission) stats() Stats {
	a.mu.Lock()
	defer a.mu.Unlock()
	return Stats{Active: a.active, Peak: a.peak, Queued: len(a.queue), Served: a.served, Max: a.max}
}
