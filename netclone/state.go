package netclone

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// Node states.
const (
	StateWaiting = "waiting" // asked to reclone, or queued for a stream
	StateCloning = "cloning"
	StateDone    = "done"
	StateFailed  = "failed"
)

// State is what the server knows about one node, kept in
// DIR/nodes/NODE/state.json.
type State struct {
	Node     string    `json:"node"`
	Version  string    `json:"version,omitempty"` // the version being cloned, or cloned last
	State    string    `json:"state"`             // waiting, cloning, done, failed
	Step     string    `json:"step,omitempty"`    // the clone step running (or failed)
	Done     int64     `json:"done,omitempty"`    // image bytes streamed
	Total    int64     `json:"total,omitempty"`   // image size
	Error    string    `json:"error,omitempty"`
	Detail   string    `json:"detail,omitempty"`
	When     time.Time `json:"when"`              // last update (set by the server)
	Started  time.Time `json:"started,omitempty"` // when this clone began
	Log      string    `json:"log,omitempty"`     // path of the uploaded clone.log
	Attempt  int       `json:"attempt,omitempty"`
	Address  string    `json:"address,omitempty"` // the node's address as the server saw it
	Finished time.Time `json:"finished,omitempty"`
}

// Percent is Done of Total in percent, or -1 if unknown.
func (s State) Percent() int {
	if s.Total <= 0 {
		return -1
	}
	p := int(s.Done * 100 / s.Total)
	if p > 100 {
		p = 100
	}
	return p
}

// Summary is the state as status prints it: waiting, cloning n%,
// done, failed at STEP.
func (s State) Summary() string {
	switch s.State {
	case StateCloning:
		if p := s.Percent(); p >= 0 {
			if s.Step != "" && s.Step != "unpack" {
				return fmt.Sprintf("cloning %d%% (%s)", p, s.Step)
			}
			return fmt.Sprintf("cloning %d%%", p)
		}
		if s.Step != "" {
			return "cloning (" + s.Step + ")"
		}
		return "cloning"
	case StateFailed:
		if s.Step != "" {
			return "failed at " + s.Step
		}
		return "failed"
	case "":
		return "unknown"
	}
	return s.State
}

func nodeDir(dir, node string) string { return filepath.Join(dir, "nodes", node) }

// ReadState reads DIR/nodes/NODE/state.json.
func ReadState(dir, node string) (State, error) {
	if !validName(node) {
		return State{}, fmt.Errorf("bad node name %q", node)
	}
	p := filepath.Join(nodeDir(dir, node), "state.json")
	b, err := os.ReadFile(p)
	if err != nil {
		return State{Node: node}, err
	}
	var st State
	if err := json.Unmarshal(b, &st); err != nil {
		return State{Node: node}, fmt.Errorf("%s: %w", p, err)
	}
	st.Node = node
	return st, nil
}

// ReadStates reads every node's state under DIR/nodes, sorted by node.
func ReadStates(dir string) ([]State, error) {
	ents, err := os.ReadDir(filepath.Join(dir, "nodes"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []State
	for _, e := range ents {
		if !e.IsDir() || !validName(e.Name()) {
			continue
		}
		st, err := ReadState(dir, e.Name())
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return out, err
		}
		out = append(out, st)
	}
	sort.Slice(out, func(i, j int) bool { return NodeLess(out[i].Node, out[j].Node) })
	return out, nil
}

// WriteState merges upd into DIR/nodes/NODE/state.json (atomically) and
// returns the result. Empty fields of upd keep the old values, except
// that a new state clears a stale error, and "waiting" starts a new clone.
func WriteState(dir string, upd State) (State, error) {
	if !validName(upd.Node) {
		return State{}, fmt.Errorf("bad node name %q", upd.Node)
	}
	cur, err := ReadState(dir, upd.Node)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		cur = State{Node: upd.Node} // a corrupt state file is replaced
	}
	now := time.Now().UTC()
	if upd.State != "" && upd.State != cur.State {
		if upd.State == StateWaiting && cur.State != StateWaiting && cur.State != StateCloning {
			// A new clone begins: forget the last one's details.
			cur = State{Node: upd.Node, Version: cur.Version, Log: cur.Log, Started: now}
		}
		if upd.State != StateFailed {
			cur.Error = ""
		}
		if upd.State == StateCloning && cur.Started.IsZero() {
			cur.Started = now
		}
		if upd.State == StateCloning && cur.State == StateFailed {
			// The cloner tries again: a new attempt, from the start.
			cur.Done, cur.Total, cur.Step = 0, 0, ""
			if upd.Attempt == 0 {
				cur.Attempt = max(cur.Attempt, 1) + 1
			}
		}
		if upd.State == StateDone || upd.State == StateFailed {
			cur.Finished = now
		}
		cur.State = upd.State
	}
	if upd.Version != "" {
		cur.Version = upd.Version
	}
	if upd.Step != "" {
		cur.Step = upd.Step
	}
	if upd.Total != 0 {
		cur.Total = upd.Total
	}
	if upd.Done != 0 || upd.Total != 0 {
		cur.Done = upd.Done
	}
	if upd.Error != "" {
		cur.Error = upd.Error
	}
	if upd.Detail != "" || upd.State != "" {
		cur.Detail = upd.Detail
	}
	if upd.Log != "" {
		cur.Log = upd.Log
	}
	if upd.Attempt != 0 {
		cur.Attempt = upd.Attempt
	}
	if upd.Address != "" {
		cur.Address = upd.Address
	}
	if !upd.Started.IsZero() {
		cur.Started = upd.Started
	}
	cur.When = now
	b, err := json.MarshalIndent(cur, "", "  ")
	if err != nil {
		return cur, err
	}
	return cur, writeAtomic(filepath.Join(nodeDir(dir, upd.Node), "state.json"), append(b, '\n'))
}

func writeAtomic(p string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	f, err := os.CreateTemp(filepath.Dir(p), ".tmp-"+filepath.Base(p))
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("writing %s: %w", p, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("writing %s: %w", p, err)
	}
	if err := os.Chmod(f.Name(), 0o644); err != nil {
		return err
	}
	return os.Rename(f.Name(), p)
}

// Assign pins version v for node's next clone (canary); "" clears it.
func Assign(dir, node, v string) error {
	if !validName(node) {
		return fmt.Errorf("bad node name %q", node)
	}
	p := filepath.Join(nodeDir(dir, node), "assign")
	if v == "" {
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		return nil
	}
	if _, err := VersionDir(dir, v); err != nil {
		return err
	}
	return writeAtomic(p, []byte(v+"\n"))
}

// Assigned returns the version pinned for node, or "".
func Assigned(dir, node string) string {
	b, err := os.ReadFile(filepath.Join(nodeDir(dir, node), "assign"))
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

func (s *Server) assigned(node string) string { return Assigned(s.Dir, node) }

// UpdateState merges a state update for a node (see WriteState).
func (s *Server) UpdateState(upd State) (State, error) {
	s.stateMu.Lock()
	defer s.stateMu.Unlock()
	st, err := WriteState(s.Dir, upd)
	if err != nil {
		s.logf("state of %s: %v", upd.Node, err)
		return st, err
	}
	if st.State == StateDone && Assigned(s.Dir, st.Node) == st.Version {
		Assign(s.Dir, st.Node, "") // the canary assignment was for one clone
	}
	return st, nil
}

func (s *Server) readState(node string) (State, error) { return ReadState(s.Dir, node) }

func (s *Server) handleNodes(w http.ResponseWriter, r *http.Request) {
	sts, err := ReadStates(s.Dir)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	if sts == nil {
		sts = []State{}
	}
	writeJSON(w, sts)
}

func (s *Server) handleNodeGet(w http.ResponseWriter, r *http.Request) {
	node := r.PathValue("node")
	if !validName(node) {
		http.Error(w, "bad node name", http.StatusBadRequest)
		return
	}
	st, err := ReadState(s.Dir, node)
	if errors.Is(err, fs.ErrNotExist) {
		http.Error(w, "no state for node "+node, http.StatusNotFound)
		return
	}
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	writeJSON(w, st)
}

func (s *Server) handleNodePost(w http.ResponseWriter, r *http.Request) {
	node := r.PathValue("node")
	if !validName(node) {
		http.Error(w, "bad node name", http.StatusBadRequest)
		return
	}
	var upd State
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&upd); err != nil {
		http.Error(w, "bad state: "+err.Error(), http.StatusBadRequest)
		return
	}
	upd.Node = node
	upd.Log, upd.When = "", time.Time{}
	if upd.Address == "" {
		upd.Address = hostOf(r.RemoteAddr)
	}
	st, err := s.UpdateState(upd)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	if upd.State == StateDone || upd.State == StateFailed {
		s.logf("node %s: %s (version %s)", node, st.Summary(), st.Version)
	}
	writeJSON(w, st)
}

func hostOf(addr string) string {
	if i := strings.LastIndexByte(addr, ':'); i > 0 {
		return strings.Trim(addr[:i], "[]")
	}
	return addr
}

// maxLog caps an uploaded clone.log.
const maxLog = 64 << 20

func (s *Server) handleLogPut(w http.ResponseWriter, r *http.Request) {
	node := r.PathValue("node")
	if !validName(node) {
		http.Error(w, "bad node name", http.StatusBadRequest)
		return
	}
	b, err := io.ReadAll(io.LimitReader(r.Body, maxLog))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	p := filepath.Join(nodeDir(s.Dir, node), "clone.log")
	if err := writeAtomic(p, b); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	abs, _ := filepath.Abs(p)
	if _, err := s.UpdateState(State{Node: node, Log: abs}); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) handleLogGet(w http.ResponseWriter, r *http.Request) {
	node := r.PathValue("node")
	if !validName(node) {
		http.Error(w, "bad node name", http.StatusBadRequest)
		return
	}
	http.ServeFile(w, r, filepath.Join(nodeDir(s.Dir, node), "clone.log"))
}

func (s *Server) handleAssign(w http.ResponseWriter, r *http.Request) {
	node := r.PathValue("node")
	b, _ := io.ReadAll(io.LimitReader(r.Body, 256))
	if err := Assign(s.Dir, node, strings.TrimSpace(string(b))); err != nil {
		code := http.StatusBadRequest
		if errors.Is(err, fs.ErrNotExist) {
			code = http.StatusNotFound
		}
		http.Error(w, err.Error(), code)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
