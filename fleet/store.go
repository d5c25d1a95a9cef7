package fleet

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/clonecd/clonecd/internal/atomicfile"
	"github.com/clonecd/clonecd/medium"
)

// The files of a node's directory.
const (
	stateFile   = "state.json"
	logFile     = "clone.log"
	assignFile  = "assign"
	historyFile = "history"
)

// Defaults of Limits.
const (
	DefaultMaxNodes    = 4096
	DefaultMaxLog      = 8 << 20
	DefaultMaxLogTotal = 1 << 30
)

// Limits bound what nodes can make the store keep. The zero value means
// the defaults.
type Limits struct {
	MaxNodes    int   // node directories (0: DefaultMaxNodes)
	MaxLog      int64 // bytes of one clone.log (0: DefaultMaxLog)
	MaxLogTotal int64 // bytes of every node's clone.log together (0: DefaultMaxLogTotal)
}

func (l Limits) withDefaults() Limits {
	if l.MaxNodes <= 0 {
		l.MaxNodes = DefaultMaxNodes
	}
	if l.MaxLog <= 0 {
		l.MaxLog = DefaultMaxLog
	}
	if l.MaxLogTotal <= 0 {
		l.MaxLogTotal = DefaultMaxLogTotal
	}
	return l
}

var (
	// ErrTooManyNodes refuses a new node past Limits.MaxNodes.
	ErrTooManyNodes = errors.New("fleet: too many nodes")
	// ErrLogTooLarge refuses a log past Limits.MaxLog or MaxLogTotal.
	ErrLogTooLarge = errors.New("fleet: log too large")
)

// Store is the node store in one directory (see the package comment).
type Store struct {
	dir      string
	lim      Limits
	now      func() time.Time
	onChange func(old, cur State)
}

// Open returns the node store in dir. Nothing is created before the
// first write.
func Open(dir string, lim Limits) *Store {
	return &Store{dir: dir, lim: lim.withDefaults(), now: time.Now}
}

// OnChange makes fn be called after every change of a node's state this
// Store writes, with the state before and after, under the node's lock
// (so one node's changes come in order). fn must be quick and must not
// write the same node. Set it before the Store is shared; another
// process's writes (a Store of its own) are not seen.
func (s *Store) OnChange(fn func(old, cur State)) { s.onChange = fn }

// Dir is the store's directory.
func (s *Store) Dir() string { return s.dir }

// Limits are the store's limits, defaults filled in.
func (s *Store) Limits() Limits { return s.lim }

func (s *Store) path(node, file string) string { return filepath.Join(s.dir, node, file) }

// Get reads node's state. A node that never reported is an error wrapping
// fs.ErrNotExist; an unreadable state.json is state Unknown with Detail
// "corrupt state.json" and no error.
func (s *Store) Get(node string) (State, error) {
	if err := ValidName(node); err != nil {
		return State{}, err
	}
	st, err := s.read(node)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return State{Node: node, State: Unknown, Detail: "corrupt " + stateFile}, nil
	}
	if err != nil {
		return State{Node: node}, notReported(node)
	}
	return st, nil
}

// notReported is the error of a node without state; it matches
// fs.ErrNotExist.
type notReported string

func (n notReported) Error() string        { return "node " + string(n) + " has not reported" }
func (n notReported) Is(target error) bool { return target == fs.ErrNotExist }

// read returns the state in state.json; a corrupt file is an error that
// does not wrap fs.ErrNotExist.
func (s *Store) read(node string) (State, error) {
	p := s.path(node, stateFile)
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

// All reads every node's state, in natural order of names (s2 before
// s10). A missing store is no nodes.
func (s *Store) All() ([]State, error) {
	names, err := s.names()
	if err != nil {
		return nil, err
	}
	var out []State
	for _, n := range names {
		st, err := s.Get(n)
		if errors.Is(err, fs.ErrNotExist) {
			continue // a directory without state yet (a pin, a log)
		}
		if err != nil {
			return nil, err
		}
		out = append(out, st)
	}
	return out, nil
}

// names lists the node directories, sorted with NodeLess.
func (s *Store) names() ([]string, error) {
	des, err := os.ReadDir(s.dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []string
	for _, de := range des {
		if de.IsDir() && ValidName(de.Name()) == nil {
			out = append(out, de.Name())
		}
	}
	sort.Slice(out, func(i, j int) bool { return NodeLess(out[i], out[j]) })
	return out, nil
}

// Update merges upd into upd.Node's state and returns the result. Empty
// fields of upd keep the old values, except that a new state clears a
// stale error and "waiting" after a finished clone starts a new one. When
// is set to now. A corrupt state.json is replaced. A node that reports
// done with the version it was pinned to loses the pin (a canary pin is
// for one clone).
func (s *Store) Update(upd State) (State, error) {
	return s.Change(upd.Node, func(State) (State, bool) { return upd, true })
}

// Change is Update with the update computed from the current state under
// the node's lock; fn returns false to leave the state as it is (and a
// node the store does not know yet unknown).
func (s *Store) Change(node string, fn func(cur State) (upd State, ok bool)) (State, error) {
	if err := ValidName(node); err != nil {
		return State{}, err
	}
	if _, err := os.Stat(filepath.Join(s.dir, node)); errors.Is(err, fs.ErrNotExist) {
		if _, ok := fn(State{Node: node}); !ok {
			return State{Node: node}, nil
		}
	}
	unlock, err := s.lock(node)
	if err != nil {
		return State{}, err
	}
	defer unlock()
	cur, err := s.read(node)
	if err != nil {
		cur = State{Node: node} // none yet, or corrupt: replaced
	}
	upd, ok := fn(cur)
	if !ok {
		return cur, nil
	}
	upd.Node = node
	if err := upd.Check(); err != nil {
		return cur, err
	}
	st := merge(cur, upd.Clean(), s.now().UTC())
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return cur, err
	}
	if err := atomicfile.WriteFile(s.path(node, stateFile), append(b, '\n'), 0o644); err != nil {
		return cur, err
	}
	if st.State != cur.State && (st.State == Done || st.State == Failed) {
		// A record for the admin, like the image store's history: failing
		// to write it does not undo the change it records.
		s.appendRun(node, runOf(st))
	}
	if s.onChange != nil {
		s.onChange(cur, st)
	}
	if st.State == Done && upd.State == Done && st.Version != "" && s.Assigned(node) == st.Version {
		if err := s.removeFile(node, assignFile); err != nil {
			return st, err
		}
	}
	return st, nil
}

// lock makes node's directory if needed (within MaxNodes) and takes an
// exclusive flock on it; the function returned releases it.
func (s *Store) lock(node string) (func(), error) {
	dir := filepath.Join(s.dir, node)
	if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
		names, err := s.names()
		if err != nil {
			return nil, err
		}
		if len(names) >= s.lim.MaxNodes {
			return nil, fmt.Errorf("%w: %s would be node %d, the store keeps %d (%s)", ErrTooManyNodes, node, len(names)+1, s.lim.MaxNodes, s.dir)
		}
		if err := os.MkdirAll(s.dir, 0o755); err != nil {
			return nil, err
		}
		if err := os.Mkdir(dir, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
			return nil, err
		}
		if err := atomicfile.SyncDir(s.dir); err != nil {
			return nil, err
		}
	}
	f, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: lock: %w", dir, err)
	}
	return func() { f.Close() }, nil
}

func (s *Store) removeFile(node, file string) error {
	if err := os.Remove(s.path(node, file)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return atomicfile.SyncDir(filepath.Join(s.dir, node))
}

// Assign pins version for node's next clone (a canary); "" clears the
// pin. The caller checks that the version exists and may be used.
func (s *Store) Assign(node, version string) error {
	if err := ValidName(node); err != nil {
		return err
	}
	if version != "" {
		if err := medium.ValidVersion(version); err != nil {
			return err
		}
	} else if _, err := os.Stat(filepath.Join(s.dir, node)); errors.Is(err, fs.ErrNotExist) {
		return nil // nothing to clear
	}
	unlock, err := s.lock(node)
	if err != nil {
		return err
	}
	defer unlock()
	if version == "" {
		return s.removeFile(node, assignFile)
	}
	return atomicfile.WriteFile(s.path(node, assignFile), []byte(version+"\n"), 0o644)
}

// Assigned returns the version pinned for node, or "".
func (s *Store) Assigned(node string) string {
	if ValidName(node) != nil {
		return ""
	}
	b, err := os.ReadFile(s.path(node, assignFile))
	if err != nil {
		return ""
	}
	v := strings.TrimSpace(string(b))
	if medium.ValidVersion(v) != nil {
		return ""
	}
	return v
}

// Pins returns every node's pinned version, by node.
func (s *Store) Pins() (map[string]string, error) {
	names, err := s.names()
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, n := range names {
		if v := s.Assigned(n); v != "" {
			out[n] = v
		}
	}
	return out, nil
}

// PutLog stores r as node's clone.log (replacing the last one) and
// records its path in the node's state. A log over Limits.MaxLog, or one
// that would take all logs over MaxLogTotal, is refused with
// ErrLogTooLarge and the old log is kept.
func (s *Store) PutLog(node string, r io.Reader) (State, error) {
	if err := ValidName(node); err != nil {
		return State{}, err
	}
	unlock, err := s.lock(node)
	if err != nil {
		return State{}, err
	}
	p := s.path(node, logFile)
	f, err := atomicfile.Create(p, 0o640)
	if err != nil {
		unlock()
		return State{}, err
	}
	n, err := io.Copy(f, io.LimitReader(r, s.lim.MaxLog+1))
	if err == nil && n > s.lim.MaxLog {
		err = fmt.Errorf("%w: the log of %s is over %d bytes", ErrLogTooLarge, node, s.lim.MaxLog)
	}
	if err == nil {
		if others := s.logBytes(node); others+n > s.lim.MaxLogTotal {
			err = fmt.Errorf("%w: the logs of all nodes would take %d bytes, over %d (%s)", ErrLogTooLarge, others+n, s.lim.MaxLogTotal, s.dir)
		}
	}
	if err == nil {
		err = f.Commit()
	} else {
		f.Cleanup()
	}
	unlock()
	if err != nil {
		return State{}, err
	}
	abs, err := filepath.Abs(p)
	if err != nil {
		abs = p
	}
	return s.Update(State{Node: node, Log: abs})
}

// logBytes adds up the logs of every node but skip.
func (s *Store) logBytes(skip string) int64 {
	names, _ := s.names()
	var n int64
	for _, name := range names {
		if name == skip {
			continue
		}
		if st, err := os.Stat(s.path(name, logFile)); err == nil {
			n += st.Size()
		}
	}
	return n
}

// OpenLog opens node's uploaded clone.log.
func (s *Store) OpenLog(node string) (*os.File, error) {
	if err := ValidName(node); err != nil {
		return nil, err
	}
	return os.Open(s.path(node, logFile))
}
