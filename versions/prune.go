package versions

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/clonecd/clonecd/fleet"
	"github.com/clonecd/clonecd/internal/atomicfile"
	"github.com/clonecd/clonecd/medium"
	"github.com/clonecd/clonecd/nodesync"
)

// StaleClone is how long a node's waiting or cloning state keeps its
// version from being pruned without a new report: a node that died
// mid-clone does not hold a version forever.
const StaleClone = 24 * time.Hour

// PrunePlan is what Prune deletes, and the versions it keeps although
// keep alone would delete them.
type PrunePlan struct {
	Delete []Entry // oldest first
	Held   []Hold
}

// Hold is a version Prune keeps and why.
type Hold struct {
	Version string
	Why     string // "pinned for s001", "s003 is cloning it"
}

// Prune deletes the oldest versions until keep remain (keep >= 1). The
// current version always stays (it counts towards keep), and so does a
// version pinned for a node's next clone (a canary) or named by a node
// that is waiting for or in a clone (reported within StaleClone): nodes
// still fetch its files. It returns what it deleted and held.
func (s *Store) Prune(keep int) (*PrunePlan, error) {
	if flat, err := s.flat(); flat != nil || err != nil {
		if err != nil {
			return nil, err
		}
		return s.PlanPrune(keep) // one version, current: nothing to delete
	}
	unlock, err := s.lock()
	if err != nil {
		return nil, err
	}
	defer unlock()
	plan, err := s.PlanPrune(keep)
	if err != nil {
		return nil, err
	}
	deleted := plan.Delete
	plan.Delete = nil
	for _, e := range deleted {
		trash := filepath.Join(s.Dir, versionsDir, ".prune-"+e.Version)
		if err := atomicfile.Rename(e.Dir, trash); err != nil {
			return plan, err
		}
		if err := os.RemoveAll(trash); err != nil {
			return plan, err
		}
		s.logHistory("pruned", e.Version, "")
		plan.Delete = append(plan.Delete, e)
	}
	s.removeLeftovers()
	if len(plan.Delete) > 0 {
		if err := s.pruneBlobs(); err != nil {
			return plan, err
		}
	}
	return plan, nil
}

// pruneBlobs removes from the blob store what no version's node.files
// lists (Publish writes blobs under the lock too). A node.files that
// cannot be read keeps every blob.
func (s *Store) pruneBlobs() error {
	if _, err := os.Stat(s.BlobDir()); err != nil {
		return nil
	}
	list, err := s.list()
	if err != nil {
		return err
	}
	var keep []*nodesync.Files
	var sums []nodesync.Sum
	for _, e := range list {
		p := e.Path(medium.Files)
		b, err := os.ReadFile(p)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return err
		}
		f, err := nodesync.Parse(bytes.NewReader(b))
		if err != nil {
			return fmt.Errorf("%s: %w (blobs kept)", p, err)
		}
		keep = append(keep, f)
		sums = append(sums, nodesync.Sum(sha256.Sum256(b)))
	}
	blobs, err := nodesync.OpenStore(s.BlobDir())
	if err != nil {
		return err
	}
	_, _, err = blobs.Prune(keep, sums...)
	return err
}

// removeLeftovers deletes what interrupted runs left in DIR/versions: an
// interrupted prune's directory at once, a publish or adoption that has
// not finished within a day (it died).
func (s *Store) removeLeftovers() {
	des, _ := os.ReadDir(filepath.Join(s.Dir, versionsDir))
	for _, de := range des {
		n := de.Name()
		p := filepath.Join(s.Dir, versionsDir, n)
		switch {
		case strings.HasPrefix(n, ".prune-"):
			os.RemoveAll(p)
		case strings.HasPrefix(n, ".publish-") || strings.HasPrefix(n, ".adopt-"):
			if info, err := de.Info(); err == nil && s.now().Sub(info.ModTime()) > 24*time.Hour {
				os.RemoveAll(p)
			}
		}
	}
}

// PlanPrune returns what Prune(keep) would delete and hold, without
// changing anything.
func (s *Store) PlanPrune(keep int) (*PrunePlan, error) {
	if keep < 1 {
		return nil, fmt.Errorf("keep %d: must keep at least 1 version", keep)
	}
	list, err := s.list()
	if err != nil {
		return nil, err
	}
	held, err := s.held()
	if err != nil {
		return nil, err
	}
	kept := 0
	for _, e := range list {
		if e.Current {
			kept++
		}
	}
	plan := &PrunePlan{}
	for i := len(list) - 1; i >= 0; i-- {
		e := list[i]
		switch {
		case e.Current || e.Flat:
		case kept < keep:
			kept++
		case len(held[e.Version]) > 0:
			plan.Held = append(plan.Held, Hold{e.Version, strings.Join(held[e.Version], ", ")})
		default:
			plan.Delete = append([]Entry{e}, plan.Delete...)
		}
	}
	sort.Slice(plan.Held, func(i, j int) bool { return CompareStrings(plan.Held[i].Version, plan.Held[j].Version) < 0 })
	return plan, nil
}

// held returns, by version, why nodes need it: pinned for a node, or a
// node waiting for or in a clone of it.
func (s *Store) held() (map[string][]string, error) {
	nodes := s.Nodes(fleet.Limits{})
	out := map[string][]string{}
	pins, err := nodes.Pins()
	if err != nil {
		return nil, err
	}
	names := make([]string, 0, len(pins))
	for n := range pins {
		names = append(names, n)
	}
	sort.Slice(names, func(i, j int) bool { return fleet.NodeLess(names[i], names[j]) })
	for _, n := range names {
		out[pins[n]] = append(out[pins[n]], "pinned for "+n)
	}
	states, err := nodes.All()
	if err != nil {
		return nil, err
	}
	for _, st := range states {
		if (st.State == fleet.Waiting || st.State == fleet.Cloning) && st.Version != "" && s.now().Sub(st.When) < StaleClone {
			out[st.Version] = append(out[st.Version], fmt.Sprintf("%s is %s it", st.Node, map[string]string{fleet.Waiting: "waiting for", fleet.Cloning: "cloning"}[st.State]))
		}
	}
	return out, nil
}
