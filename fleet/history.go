package fleet

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"time"

	"github.com/clonecd/clonecd/internal/atomicfile"
)

// MaxHistory is how many runs NODE/history keeps: the newest.
const MaxHistory = 100

// Run is one finished clone or sync of a node, a line of NODE/history.
type Run struct {
	Op       string    `json:"op"` // OpClone or OpSync
	Version  string    `json:"version,omitempty"`
	Result   string    `json:"result"`         // Done or Failed
	Step     string    `json:"step,omitempty"` // the step it failed at, or ended with
	Error    string    `json:"error,omitempty"`
	Attempt  int       `json:"attempt,omitempty"`
	Started  time.Time `json:"started,omitzero"`
	Finished time.Time `json:"finished"`
}

// maxRunError caps Run.Error: the full error stays in state.json and the log.
const maxRunError = 300

// runOf is the Run a state that just finished ends.
func runOf(st State) Run {
	return Run{Op: st.Operation(), Version: st.Version, Result: st.State, Step: st.Step,
		Error: Clean(st.Error, maxRunError), Attempt: st.Attempt, Started: st.Started, Finished: st.Finished}
}

// History returns node's finished runs, oldest first (at most
// MaxHistory; none for a node that never finished one). A line that
// cannot be read (cut by a crash) is skipped.
func (s *Store) History(node string) ([]Run, error) {
	if err := ValidName(node); err != nil {
		return nil, err
	}
	runs, _, err := s.readHistory(node)
	return runs, err
}

func (s *Store) readHistory(node string) ([]Run, int, error) {
	b, err := os.ReadFile(s.path(node, historyFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, 0, nil
	}
	if err != nil {
		return nil, 0, err
	}
	var runs []Run
	lines := 0
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 0, 4096), 64<<10)
	for sc.Scan() {
		lines++
		var r Run
		if json.Unmarshal(sc.Bytes(), &r) == nil && r.Result != "" {
			runs = append(runs, r)
		}
	}
	if len(runs) > MaxHistory {
		runs = runs[len(runs)-MaxHistory:]
	}
	return runs, lines, nil
}

// appendRun adds r to node's history; the caller holds the node's lock.
// Lines are appended (a torn last line after a crash is skipped when
// read); past twice MaxHistory lines the file is rewritten, atomically,
// with the newest MaxHistory.
func (s *Store) appendRun(node string, r Run) error {
	line, err := json.Marshal(r)
	if err != nil {
		return err
	}
	line = append(line, '\n')
	p := s.path(node, historyFile)
	runs, lines, err := s.readHistory(node)
	if err != nil {
		return err
	}
	if lines+1 > 2*MaxHistory {
		runs = append(runs, r)
		runs = runs[max(len(runs)-MaxHistory, 0):]
		var b bytes.Buffer
		for _, r := range runs {
			l, _ := json.Marshal(r)
			b.Write(append(l, '\n'))
		}
		return atomicfile.WriteFile(p, b.Bytes(), 0o644)
	}
	f, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	_, err = f.Write(line)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil && lines == 0 {
		err = atomicfile.SyncDir(s.path(node, ""))
	}
	return err
}
