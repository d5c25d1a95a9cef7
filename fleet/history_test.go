package fleet

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestHistory: each finished clone or sync adds one run to the node's
// history, oldest first; a repeated final report adds none; a torn last
// line is skipped; the file keeps the newest MaxHistory runs.
func TestHistory(t *testing.T) {
	s := Open(t.TempDir(), Limits{})
	steps := []State{
		{State: Waiting},
		{State: Cloning, Step: "setup", Version: "1.2"},
		{State: Cloning, Step: "unpack", Done: 5, Total: 10},
		{State: Failed, Step: "unpack", Error: "disk full"},
		{State: Failed, Step: "unpack", Error: "disk full"}, // the reporter's retry
		{State: Cloning, Step: "setup"},                     // the cloner tries again
		{State: Done, Step: "finish"},
		{State: Cloning, Step: "plan", Op: OpSync, Version: "1.3"},
		{State: Done, Op: OpSync},
	}
	for _, st := range steps {
		st.Node = "s001"
		if _, err := s.Update(st); err != nil {
			t.Fatal(err)
		}
	}
	runs, err := s.History("s001")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range runs {
		got = append(got, r.Op+" "+r.Version+" "+r.Result+" "+r.Step+" "+r.Error)
		if r.Finished.IsZero() {
			t.Errorf("run %+v has no finish time", r)
		}
	}
	want := []string{"clone 1.2 failed unpack disk full", "clone 1.2 done finish ", "sync 1.3 done plan "}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("History = %q; want %q", got, want)
	}

	// A crash cut the last line: it is skipped, and the next run appends.
	p := filepath.Join(s.Dir(), "s001", historyFile)
	f, _ := os.OpenFile(p, os.O_APPEND|os.O_WRONLY, 0)
	f.WriteString(`{"op":"clone","resu`)
	f.Close()
	if runs, err := s.History("s001"); err != nil || len(runs) != 3 {
		t.Fatalf("History with a torn line = %d runs, %v; want 3", len(runs), err)
	}

	// Capped: many runs later, the newest MaxHistory are kept.
	for i := 0; i < 2*MaxHistory+5; i++ {
		s.Update(State{Node: "s002", State: Cloning, Step: "setup"})
		s.Update(State{Node: "s002", State: Done, Attempt: i + 1})
	}
	runs, err = s.History("s002")
	if err != nil || len(runs) != MaxHistory || runs[len(runs)-1].Attempt != 2*MaxHistory+5 {
		t.Fatalf("History(s002) = %d runs (last %+v), %v; want %d ending with attempt %d", len(runs), runs[len(runs)-1], err, MaxHistory, 2*MaxHistory+5)
	}
	b, _ := os.ReadFile(filepath.Join(s.Dir(), "s002", historyFile))
	if n := strings.Count(string(b), "\n"); n > 2*MaxHistory {
		t.Errorf("s002's history has %d lines; want at most %d", n, 2*MaxHistory)
	}
	if runs, err := s.History("s003"); err != nil || runs != nil {
		t.Errorf("History of a node without runs = %v, %v; want none", runs, err)
	}
	if _, err := s.History("../x"); err == nil {
		t.Error("History(../x) read outside the store")
	}
}

// TestOnChangeAndStepTimes: OnChange sees each change with the state
// before it; StepStarted is the master's time of the first report of a
// step, kept while the step runs and reset by a new one; a finished node
// that starts over forgets its last operation's Op.
func TestOnChangeAndStepTimes(t *testing.T) {
	s := Open(t.TempDir(), Limits{})
	clock := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	s.now = func() time.Time { return clock }
	type change struct{ old, cur State }
	var seen []change
	s.OnChange(func(old, cur State) { seen = append(seen, change{old, cur}) })
	tick := func(d time.Duration, st State) State {
		clock = clock.Add(d)
		st.Node = "s001"
		got, err := s.Update(st)
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	t0 := clock
	st := tick(0, State{State: Cloning, Step: "setup", Op: OpSync})
	if !st.StepStarted.Equal(t0) || st.Operation() != OpSync {
		t.Fatalf("first step: %+v", st)
	}
	st = tick(3*time.Second, State{State: Cloning, Step: "setup"})
	if !st.StepStarted.Equal(t0) {
		t.Errorf("same step again: StepStarted = %v; want %v", st.StepStarted, t0)
	}
	st = tick(2*time.Second, State{State: Cloning, Step: "unpack", Done: 1, Total: 2})
	if !st.StepStarted.Equal(t0.Add(5 * time.Second)) {
		t.Errorf("new step: StepStarted = %v; want %v", st.StepStarted, t0.Add(5*time.Second))
	}
	tick(time.Second, State{State: Done})
	st = tick(time.Minute, State{State: Cloning, Step: "setup"})
	if st.Operation() != OpClone {
		t.Errorf("a clone after a sync is %q", st.Operation())
	}
	if len(seen) != 5 || seen[3].old.State != Cloning || seen[3].cur.State != Done || seen[3].old.Step != "unpack" {
		t.Fatalf("OnChange saw %d changes: %+v", len(seen), seen)
	}
	if _, err := s.Update(State{Node: "s001", Op: "format"}); err == nil {
		t.Error("op format accepted")
	}
	if len(seen) != 5 {
		t.Errorf("a refused update reached OnChange")
	}
}
