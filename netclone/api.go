package netclone

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/clonecd/clonecd/fleet"
	"github.com/clonecd/clonecd/versions"
)

// VersionInfo describes a version of the store, as GET /api/versions
// lists them.
type VersionInfo struct {
	versions.Record
	Current bool `json:"current"`
}

func info(e *versions.Entry) VersionInfo { return VersionInfo{e.Record, e.Current} }

// ErrBadVersion refuses to pin a node to a version marked bad without
// force.
var ErrBadVersion = errors.New("version marked bad")

// assign pins version v ("" clears) for node's next clone after checking
// that the store has it and that it is not marked bad (unless force).
func assign(store *versions.Store, nodes *fleet.Store, node, v string, force bool) error {
	if err := fleet.ValidName(node); err != nil {
		return err
	}
	if v != "" {
		e, err := store.Get(v)
		if err != nil {
			return err
		}
		if e.Bad && !force {
			reason := ""
			if e.BadReason != "" {
				reason = " (" + e.BadReason + ")"
			}
			return fmt.Errorf("%w: version %s is marked bad%s; assign it with force (reclone --force) to clone it anyway", ErrBadVersion, e.Version, reason)
		}
		v = e.Version
	}
	return nodes.Assign(node, v)
}

func (s *Server) handleStats(w http.ResponseWriter, r *http.Request) { writeJSON(w, s.Stats()) }

func (s *Server) handleVersions(w http.ResponseWriter, r *http.Request) {
	list, err := s.store.List()
	if err != nil {
		s.storeError(w, r, err)
		return
	}
	out := []VersionInfo{}
	for i := range list {
		out = append(out, info(&list[i]))
	}
	writeJSON(w, out)
}

// handleVersion answers one version; "current" is the current one.
func (s *Server) handleVersion(w http.ResponseWriter, r *http.Request) {
	v := r.PathValue("version")
	var e *versions.Entry
	var err error
	if v == "current" {
		e, err = s.store.Current()
	} else if _, perr := versions.ParseVersion(v); perr != nil {
		s.fail(w, r, http.StatusNotFound, fmt.Errorf("this server has no version %.20q", v))
		return
	} else {
		e, err = s.store.Get(v)
	}
	if err != nil {
		s.storeError(w, r, err)
		return
	}
	writeJSON(w, info(e))
}

func (s *Server) handleNodes(w http.ResponseWriter, r *http.Request) {
	sts, err := s.nodes.All()
	if err != nil {
		s.fail(w, r, http.StatusInternalServerError, err)
		return
	}
	if sts == nil {
		sts = []fleet.State{}
	}
	writeJSON(w, sts)
}

// node returns the path's node name, or answers 400 and "".
func (s *Server) node(w http.ResponseWriter, r *http.Request) string {
	node := r.PathValue("node")
	if err := fleet.ValidName(node); err != nil {
		s.fail(w, r, http.StatusBadRequest, err)
		return ""
	}
	return node
}

func (s *Server) handleNodeGet(w http.ResponseWriter, r *http.Request) {
	node := s.node(w, r)
	if node == "" {
		return
	}
	st, err := s.nodes.Get(node)
	if s.readFailed(w, r, err, "state", node) {
		return
	}
	writeJSON(w, st)
}

// readFailed answers the error of a read from the node store, if any (404
// where the node has no what, else 500), and reports whether it did.
func (s *Server) readFailed(w http.ResponseWriter, r *http.Request, err error, what, node string) bool {
	switch {
	case err == nil:
		return false
	case errors.Is(err, fs.ErrNotExist):
		s.fail(w, r, http.StatusNotFound, fmt.Errorf("no %s for node %s", what, node))
	default:
		s.fail(w, r, http.StatusInternalServerError, err)
	}
	return true
}

// writeError answers an error of a write to the node store.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe):
		s.fail(w, r, http.StatusRequestEntityTooLarge, fmt.Errorf("request body over %d bytes", mbe.Limit))
	case errors.Is(err, fleet.ErrLogTooLarge):
		s.ops.log.Warn("refused", "method", r.Method, "path", r.URL.Path, "err", err)
		lim := s.nodes.Limits()
		s.fail(w, r, http.StatusRequestEntityTooLarge, fmt.Errorf("log over the server's limit (%d bytes a node, %d in all)", lim.MaxLog, lim.MaxLogTotal))
	case errors.Is(err, fleet.ErrBadState):
		s.fail(w, r, http.StatusBadRequest, errors.New(strings.TrimPrefix(err.Error(), "fleet: ")))
	case errors.Is(err, fleet.ErrTooManyNodes):
		s.ops.log.Warn("refused", "method", r.Method, "path", r.URL.Path, "err", err)
		s.fail(w, r, http.StatusInsufficientStorage, errors.New("the server keeps no more nodes"))
	case errors.Is(err, ErrBadVersion):
		s.fail(w, r, http.StatusConflict, err)
	case errors.Is(err, fs.ErrNotExist):
		s.fail(w, r, http.StatusNotFound, errors.New(publicError(err)))
	default:
		s.fail(w, r, http.StatusInternalServerError, err)
	}
}

func (s *Server) handleNodePost(w http.ResponseWriter, r *http.Request) {
	node := s.node(w, r)
	if node == "" {
		return
	}
	var upd fleet.State
	if err := json.NewDecoder(r.Body).Decode(&upd); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			s.writeError(w, r, err)
			return
		}
		s.fail(w, r, http.StatusBadRequest, fmt.Errorf("state of %s: %v", node, err))
		return
	}
	upd.Node = node
	upd.Log, upd.When = "", time.Time{}
	if net.ParseIP(upd.Address) == nil {
		upd.Address = hostOf(r.RemoteAddr)
	}
	st, err := s.nodes.Update(upd) // the node store's OnChange logs the change (ops.go)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, st)
}

func hostOf(addr string) string {
	if h, _, err := net.SplitHostPort(addr); err == nil {
		return h
	}
	return addr
}

func (s *Server) handleLogPut(w http.ResponseWriter, r *http.Request) {
	node := s.node(w, r)
	if node == "" {
		return
	}
	if _, err := s.nodes.PutLog(node, r.Body); err != nil {
		s.writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) handleLogGet(w http.ResponseWriter, r *http.Request) {
	node := s.node(w, r)
	if node == "" {
		return
	}
	f, err := s.nodes.OpenLog(node)
	if s.readFailed(w, r, err, "log", node) {
		return
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		s.fail(w, r, http.StatusInternalServerError, err)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	http.ServeContent(w, r, "", st.ModTime(), f)
}

// handleAssign pins the body's version for the node ("" clears); a
// version marked bad needs ?force=1.
func (s *Server) handleAssign(w http.ResponseWriter, r *http.Request) {
	node := s.node(w, r)
	if node == "" {
		return
	}
	b, err := io.ReadAll(r.Body)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	v := strings.TrimSpace(string(b))
	if v != "" {
		if _, err := versions.ParseVersion(v); err != nil {
			s.fail(w, r, http.StatusBadRequest, err)
			return
		}
	}
	if err := assign(s.store, s.nodes, node, v, r.URL.Query().Get("force") == "1"); err != nil {
		s.writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
