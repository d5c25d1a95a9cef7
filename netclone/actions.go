package netclone

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"mime"
	"net/http"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/clonecd/clonecd/fleet"
	"github.com/clonecd/clonecd/trust"
	"github.com/clonecd/clonecd/versions"
)

// The fleet page's actions, POST /admin/api/ACTION with a JSON
// actionRequest (access admin; the page asks for a confirmation first).
// They do what the command line does: promote, rollback, mark a version
// bad or good, assign (pin) a version to nodes, and reclone nodes when
// the server was started with a remote shell (serve --rsh); otherwise
// reclone answers 409 with the command to run. A browser's request from
// another site is refused (http.CrossOriginProtection), and so is any
// body that is not JSON, which a plain HTML form cannot send.
type actionRequest struct {
	Nodes   string `json:"nodes,omitempty"` // nodesets, separated by spaces
	Version string `json:"version,omitempty"`
	Force   bool   `json:"force,omitempty"`
	Reason  string `json:"reason,omitempty"`
}

// actionResult is an action's answer (errors are text, as elsewhere).
type actionResult struct {
	Message string `json:"message"`
	Command string `json:"command,omitempty"` // the command line to run instead
}

const maxActionBody = 64 << 10

var crossOrigin = http.NewCrossOriginProtection()

// action decodes an action's request, or answers the refusal and
// returns false.
func (s *Server) action(w http.ResponseWriter, r *http.Request, req *actionRequest) bool {
	if err := crossOrigin.Check(r); err != nil {
		s.fail(w, r, http.StatusForbidden, fmt.Errorf("refused: %v", err))
		return false
	}
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/json" {
		s.fail(w, r, http.StatusUnsupportedMediaType, errors.New("an action's body is JSON (Content-Type: application/json)"))
		return false
	}
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(req); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			s.writeError(w, r, err)
			return false
		}
		s.fail(w, r, http.StatusBadRequest, fmt.Errorf("action: %v", err))
		return false
	}
	req.Reason = fleet.Clean(req.Reason, 200)
	if req.Version != "" {
		v, err := versions.ParseVersion(req.Version)
		if err != nil {
			s.fail(w, r, http.StatusBadRequest, err)
			return false
		}
		req.Version = v.String()
	}
	return true
}

// done answers an action that worked, logs it and refreshes the page.
func (s *Server) actionDone(w http.ResponseWriter, r *http.Request, what string, res actionResult, attrs ...any) {
	attrs = append([]any{"action", what, "by", trust.PrincipalOf(r.Context()).String(), "remote", r.RemoteAddr}, attrs...)
	s.ops.log.Info("action", attrs...)
	s.ops.versions()
	s.ops.touch()
	writeJSON(w, res)
}

// actionError answers an action the store refused: 404 for a missing
// version, 500 for a failing disk, else 409 with the store's reason.
func (s *Server) actionError(w http.ResponseWriter, r *http.Request, what string, err error) {
	s.ops.log.Warn("action", "action", what, "by", trust.PrincipalOf(r.Context()).String(), "remote", r.RemoteAddr, "err", err)
	var pe *fs.PathError
	var le *os.LinkError
	var errno syscall.Errno
	switch {
	case errors.Is(err, fs.ErrNotExist):
		s.fail(w, r, http.StatusNotFound, errors.New(publicError(err)))
	case errors.As(err, &pe), errors.As(err, &le), errors.As(err, &errno):
		s.fail(w, r, http.StatusInternalServerError, err)
	default:
		s.fail(w, r, http.StatusConflict, err)
	}
}

func (s *Server) handlePromote(w http.ResponseWriter, r *http.Request) {
	var req actionRequest
	if !s.action(w, r, &req) {
		return
	}
	if req.Version == "" {
		s.fail(w, r, http.StatusBadRequest, errors.New("promote: no version"))
		return
	}
	e, err := s.store.Promote(req.Version, req.Force)
	if err != nil {
		s.actionError(w, r, "promote", err)
		return
	}
	s.actionDone(w, r, "promote", actionResult{Message: "current version is now " + e.Version}, "version", e.Version, "force", req.Force)
}

func (s *Server) handleRollback(w http.ResponseWriter, r *http.Request) {
	var req actionRequest
	if !s.action(w, r, &req) {
		return
	}
	old, err := s.store.Current()
	if err != nil {
		s.actionError(w, r, "rollback", err)
		return
	}
	e, err := s.store.Rollback(req.Reason)
	if err != nil {
		s.actionError(w, r, "rollback", err)
		return
	}
	s.actionDone(w, r, "rollback", actionResult{Message: fmt.Sprintf("marked %s bad; current version is now %s", old.Version, e.Version)},
		"from", old.Version, "version", e.Version, "reason", req.Reason)
}

func (s *Server) handleMark(bad bool) http.HandlerFunc {
	what := "good"
	if bad {
		what = "bad"
	}
	return func(w http.ResponseWriter, r *http.Request) {
		var req actionRequest
		if !s.action(w, r, &req) {
			return
		}
		if req.Version == "" {
			s.fail(w, r, http.StatusBadRequest, errors.New("no version"))
			return
		}
		var err error
		if bad {
			err = s.store.MarkBad(req.Version, req.Reason)
		} else {
			err = s.store.MarkGood(req.Version)
		}
		if err != nil {
			s.actionError(w, r, "mark "+what, err)
			return
		}
		s.actionDone(w, r, "mark "+what, actionResult{Message: fmt.Sprintf("version %s marked %s", req.Version, what)},
			"version", req.Version, "reason", req.Reason)
	}
}

// nodesAction decodes an action on nodes and expands its nodesets, or
// answers the refusal and returns no nodes.
func (s *Server) nodesAction(w http.ResponseWriter, r *http.Request) (actionRequest, []string) {
	var req actionRequest
	if !s.action(w, r, &req) {
		return req, nil
	}
	nodes, err := parseNodeList(req.Nodes)
	if err == nil && len(nodes) == 0 {
		err = errors.New("no nodes given")
	}
	if err != nil {
		s.fail(w, r, http.StatusBadRequest, err)
		return req, nil
	}
	return req, nodes
}

// handleAssignAction pins req.Version ("" clears) for each node.
func (s *Server) handleAssignAction(w http.ResponseWriter, r *http.Request) {
	req, nodes := s.nodesAction(w, r)
	if nodes == nil {
		return
	}
	for _, n := range nodes {
		if err := assign(s.store, s.nodes, n, req.Version, req.Force); err != nil {
			s.ops.log.Warn("action", "action", "assign", "node", n, "version", req.Version, "err", err)
			if errors.Is(err, ErrBadVersion) {
				s.fail(w, r, http.StatusConflict, err)
				return
			}
			s.writeError(w, r, err)
			return
		}
	}
	msg := fmt.Sprintf("%d nodes pinned to %s for their next clone", len(nodes), req.Version)
	if req.Version == "" {
		msg = fmt.Sprintf("pins cleared on %d nodes", len(nodes))
	}
	s.actionDone(w, r, "assign", actionResult{Message: msg}, "nodes", len(nodes), "version", req.Version, "force", req.Force)
}

// recloneCommand is the command line that does what the page was asked.
func recloneCommand(r *http.Request, req actionRequest, nodes []string) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	cmd := "clonecd reclone --server " + scheme + "://" + r.Host
	if req.Version != "" {
		cmd += " --version " + req.Version
	}
	if req.Force {
		cmd += " --force"
	}
	return cmd + " " + strings.Join(nodes, " ")
}

// handleReclone reclones nodes from the master with the server's remote
// shell; the nodes' progress shows on the page as they report.
func (s *Server) handleReclone(w http.ResponseWriter, r *http.Request) {
	req, nodes := s.nodesAction(w, r)
	if nodes == nil {
		return
	}
	cmd := recloneCommand(r, req, nodes)
	if len(s.o.Rsh) == 0 {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusConflict)
		json.NewEncoder(w).Encode(actionResult{Message: "this server has no remote shell (serve --rsh); run on the master:", Command: cmd})
		return
	}
	n, err := s.ops.reclone(nodes, req.Version, req.Force)
	if err != nil {
		s.actionError(w, r, "reclone", err)
		return
	}
	s.actionDone(w, r, "reclone", actionResult{Message: fmt.Sprintf("recloning %d nodes", n), Command: cmd},
		"nodes", strings.Join(nodes, ","), "version", req.Version, "force", req.Force)
}

// ErrBusy refuses to reclone a node the page is already recloning.
var ErrBusy = errors.New("already being recloned")

// reclone starts recloning nodes in the background (a Recloner on this
// server's own store) after checking the version; it returns how many.
func (o *ops) reclone(nodes []string, version string, force bool) (int, error) {
	ctx, cancel := context.WithCancel(context.Background())
	rc := &Recloner{Source: &storeSource{store: o.s.store, nodes: o.s.nodes}, Rsh: o.s.o.Rsh,
		Version: version, Force: force, Parallel: 8, Grace: 2 * time.Minute, Out: &lineLog{log: o.log}}
	if sec := o.s.o.Secret; sec != nil {
		rc.Credential = sec.Credential // each node gets its own over ssh, as `clonecd reclone` gives it
	}
	vi, err := rc.Check(ctx)
	if err != nil {
		cancel()
		return 0, err
	}
	rc.Delay = DefaultDelay(vi.Size)
	o.jobsMu.Lock()
	select {
	case <-o.stop:
		o.jobsMu.Unlock()
		cancel()
		return 0, errors.New("the server is stopping")
	default:
	}
	for _, n := range nodes {
		if o.jobs[n] != nil {
			o.jobsMu.Unlock()
			cancel()
			return 0, fmt.Errorf("node %s: %w", n, ErrBusy)
		}
	}
	for _, n := range nodes {
		o.jobs[n] = cancel
	}
	o.jobsMu.Unlock()
	go func() {
		defer cancel()
		results, err := rc.Run(ctx, nodes)
		o.jobsMu.Lock()
		for _, n := range nodes {
			delete(o.jobs, n)
		}
		o.jobsMu.Unlock()
		if err != nil {
			o.log.Warn("reclone", "nodes", len(nodes), "err", err)
			return
		}
		for _, res := range results {
			o.log.Info("reclone", "node", res.Node, "result", res.Result, "ok", res.OK, "version", res.Version,
				"duration", res.Duration.Round(time.Second).String(), "error", res.Error)
		}
	}()
	return len(nodes), nil
}

// lineLog logs each line written to it (a Recloner's event lines).
type lineLog struct {
	log *slog.Logger
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *lineLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf.Write(p)
	rest := l.buf.Bytes()
	for i := bytes.IndexByte(rest, '\n'); i >= 0; i = bytes.IndexByte(rest, '\n') {
		if line := strings.TrimSpace(string(rest[:i])); line != "" {
			l.log.Info("reclone", "event", fleet.Clean(line, 500))
		}
		rest = rest[i+1:]
	}
	remain := append([]byte(nil), rest...)
	l.buf.Reset()
	l.buf.Write(remain)
	return len(p), nil
}
