package versions

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// NodeState is what the server records about a node in
// DIR/nodes/NODE/state.json. "version" and "state" are the agreed keys; the
// server may add others, which are kept in Extra.
type NodeState struct {
	Node    string    `json:"node"`
	Version string    `json:"version"`
	State   string    `json:"state"`
	Updated time.Time `json:"when,omitempty"`
	// Extra holds the other keys of state.json as read.
	Extra map[string]any `json:"-"`
}

// Nodes returns every node's last reported state, by node name. Nodes
// without a readable state.json are skipped.
func (s *Store) Nodes() ([]NodeState, error) {
	des, err := os.ReadDir(filepath.Join(s.Dir, "nodes"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []NodeState
	for _, de := range des {
		if !de.IsDir() || strings.HasPrefix(de.Name(), ".") {
			continue
		}
		ns, err := s.NodeState(de.Name())
		if err != nil {
			continue
		}
		out = append(out, *ns)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Node < out[j].Node })
	return out, nil
}

// NodeState reads DIR/nodes/NODE/state.json.
func (s *Store) NodeState(node string) (*NodeState, error) {
	if err := checkNode(node); err != nil {
		return nil, err
	}
	p := filepath.Join(s.Dir, "nodes", node, "state.json")
	b, err := os.ReadFile(p)
	if err != nil {
		return nil, err
	}
	ns := &NodeState{}
	if err := json.Unmarshal(b, ns); err != nil {
		return nil, fmt.Errorf("%s: %w", p, err)
	}
	if err := json.Unmarshal(b, &ns.Extra); err == nil {
		for _, k := range []string{"node", "version", "state", "when"} {
			delete(ns.Extra, k)
		}
	}
	if ns.Node == "" {
		ns.Node = node
	}
	return ns, nil
}

// WriteNodeState writes DIR/nodes/NODE/state.json atomically; Updated is set
// to now when zero. Extra keys are written beside the agreed ones.
func (s *Store) WriteNodeState(ns NodeState) error {
	if err := checkNode(ns.Node); err != nil {
		return err
	}
	if ns.Updated.IsZero() {
		ns.Updated = s.now().UTC()
	}
	m := map[string]any{}
	for k, v := range ns.Extra {
		m[k] = v
	}
	m["node"], m["version"], m["state"], m["when"] = ns.Node, ns.Version, ns.State, ns.Updated
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	dir := filepath.Join(s.Dir, "nodes", ns.Node)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	return writeAtomic(filepath.Join(dir, "state.json"), append(b, '\n'), 0o644)
}

func checkNode(node string) error {
	if node == "" || node == "." || node == ".." || strings.ContainsAny(node, "/\x00") {
		return fmt.Errorf("bad node name %q", node)
	}
	return nil
}
