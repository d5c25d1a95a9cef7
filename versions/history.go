package versions

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/clonecd/clonecd/internal/atomicfile"
	"github.com/clonecd/clonecd/medium"
)

// logHistory appends a line to DIR/history: time, what, version, why. It
// is a record for the admin and Rollback; a failure to write it does not
// undo the change it records.
func (s *Store) logHistory(what, v, why string) {
	p := filepath.Join(s.Dir, historyFile)
	_, statErr := os.Stat(p)
	f, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY|os.O_APPEND, fileMode)
	if err != nil {
		return
	}
	defer f.Close()
	fmt.Fprintf(f, "%s %s %s %s\n", s.now().UTC().Format(time.RFC3339Nano), what, v, strings.ReplaceAll(why, "\n", " "))
	f.Sync()
	if statErr != nil {
		atomicfile.SyncDir(s.Dir)
	}
}

// history returns the history file's lines split into fields.
func (s *Store) history() [][]string {
	b, err := os.ReadFile(filepath.Join(s.Dir, historyFile))
	if err != nil {
		return nil
	}
	var out [][]string
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 3 {
			out = append(out, f)
		}
	}
	return out
}

// Promote makes v current. A version marked bad is refused unless force,
// which clears the mark.
func (s *Store) Promote(v string, force bool) (*Entry, error) {
	unlock, err := s.lockChange()
	if err != nil {
		return nil, err
	}
	defer unlock()
	e, err := s.Get(v)
	if err != nil {
		return nil, err
	}
	if e.Flat {
		return nil, errFlat(e)
	}
	if e.Bad {
		if !force {
			return nil, fmt.Errorf("version %s is marked bad (%s); promote --force to use it anyway", e.Version, e.BadReason)
		}
		e.Bad, e.BadReason = false, ""
		if err := writeMeta(e.Dir, e); err != nil {
			return nil, err
		}
		s.logHistory("good", e.Version, "promoted by force")
	}
	if err := s.setCurrent(e.Version, "promote"); err != nil {
		return nil, err
	}
	e.Current = true
	return e, nil
}

// MarkBad records that version v misbehaves (nodes or the admin say so).
// A bad version is never chosen by Rollback, nor promoted or assigned to
// a node without force.
func (s *Store) MarkBad(v, reason string) error { return s.mark(v, true, reason) }

// MarkGood clears a bad mark.
func (s *Store) MarkGood(v string) error { return s.mark(v, false, "") }

func (s *Store) mark(v string, bad bool, reason string) error {
	unlock, err := s.lockChange()
	if err != nil {
		return err
	}
	defer unlock()
	return s.setBad(v, bad, reason)
}

// setBad writes v's bad mark; the caller holds the lock.
func (s *Store) setBad(v string, bad bool, reason string) error {
	e, err := s.Get(v)
	if err != nil {
		return err
	}
	if e.Flat {
		return errFlat(e)
	}
	e.Bad, e.BadReason = bad, reason
	if err := writeMeta(e.Dir, e); err != nil {
		return err
	}
	what := "good"
	if bad {
		what = "bad"
	}
	s.logHistory(what, e.Version, reason)
	return nil
}

// Rollback marks the current version bad (with reason; "" = "rolled
// back") and makes the previous good one current: the most recent version
// that was current before it and is neither bad nor pruned, else the
// highest good version below it. If there is none, nothing changes and
// the error says so.
func (s *Store) Rollback(reason string) (*Entry, error) {
	unlock, err := s.lockChange()
	if err != nil {
		return nil, err
	}
	defer unlock()
	list, err := s.list()
	if err != nil {
		return nil, err
	}
	cur := current(list)
	if cur == nil {
		return nil, fmt.Errorf("image store %s has no current version to roll back from", s.Dir)
	}
	good := map[string]*Entry{}
	for i := range list {
		if !list[i].Bad && list[i].Version != cur.Version {
			good[list[i].Version] = &list[i]
		}
	}
	var prev *Entry
	hist := s.history()
	for i := len(hist) - 1; i >= 0 && prev == nil; i-- {
		if hist[i][1] == "current" {
			prev = good[hist[i][2]]
		}
	}
	for i := len(list) - 1; i >= 0 && prev == nil; i-- {
		if g := good[list[i].Version]; g != nil && CompareStrings(g.Version, cur.Version) < 0 {
			prev = g
		}
	}
	if prev == nil {
		return nil, fmt.Errorf("no good version to roll back to from %s (all others are bad or pruned)", cur.Version)
	}
	if reason == "" {
		reason = "rolled back"
	}
	if err := s.setBad(cur.Version, true, reason); err != nil {
		return nil, err
	}
	if err := s.setCurrent(prev.Version, "rollback from "+cur.Version); err != nil {
		return nil, err
	}
	prev.Current = true
	return prev, nil
}

// Mark is a value that changes whenever the store's versions do: every
// publish, promotion, bad mark and prune appends to DIR/history and a
// promotion moves DIR/current (a Medusa-style directory: its image's
// size and time). A watcher (the server's) re-reads List only when it
// changes. It reads three inodes and writes nothing.
func (s *Store) Mark() string {
	mark := s.currentName()
	for _, name := range []string{historyFile, medium.ImageGzip} {
		if st, err := os.Stat(filepath.Join(s.Dir, name)); err == nil {
			mark += fmt.Sprintf(" %d.%d", st.Size(), st.ModTime().UnixNano())
		}
	}
	return mark
}
