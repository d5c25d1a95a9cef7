package fleet

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"unicode"
)

func TestValidName(t *testing.T) {
	for _, tt := range []struct {
		name string
		ok   bool
	}{
		{"s001", true}, {"r1n16-ib", true}, {"A", true}, {strings.Repeat("a", 63), true},
		{"", false}, {strings.Repeat("a", 64), false}, {"-oProxyCommand=sh", false}, {"s1-", false},
		{"s.1", false}, {"s_1", false}, {"..", false}, {"s/1", false}, {"s\x1b[31m", false}, {"s 1", false}, {"sé", false},
		{"admin", false}, {"Admin", false}, {"admin1", true},
	} {
		if err := ValidName(tt.name); (err == nil) != tt.ok {
			t.Errorf("ValidName(%q) = %v; want ok=%v", tt.name, err, tt.ok)
		}
	}
}

// TestClean: what Clean replaces or drops (no cap), then where a cap
// cuts: after cleaning, at a rune boundary, none for max <= 0.
func TestClean(t *testing.T) {
	for in, want := range map[string]string{
		"unpack":                   "unpack",
		"unpack\x1b[31mRED\x1b[0m": "unpack[31mRED[0m",
		"title\x1b]0;pwned\x07":    "title]0;pwned",
		"two\nlines\tand\rtab":     "two lines and tab",
		"c1\u009bcsi":              "c1csi",
		"bidi\u202eevil":           "bidievil",
		"bad\xffutf8":              "bad\uFFFDutf8",
	} {
		if got := Clean(in, 0); got != want {
			t.Errorf("Clean(%q, 0) = %q; want %q", in, got, want)
		}
	}
	for _, tt := range []struct {
		in   string
		max  int
		want string
	}{
		{"héhé", 3, "hé"},
		{"abcdef", 4, "abcd"},
		{"abcdef", -1, "abcdef"},
		{"a\x1b[1mbc", 3, "a[1"},
	} {
		if got := Clean(tt.in, tt.max); got != tt.want {
			t.Errorf("Clean(%q, %d) = %q; want %q", tt.in, tt.max, got, tt.want)
		}
	}
}

func FuzzClean(f *testing.F) {
	f.Add("unpack\x1b[31mRED", 10)
	f.Add("bad\xff\u202e", 0)
	f.Fuzz(func(t *testing.T, s string, max int) {
		got := Clean(s, max)
		for _, r := range got {
			if unicode.IsControl(r) || unicode.Is(unicode.Bidi_Control, r) {
				t.Fatalf("Clean(%q) = %q keeps %U", s, got, r)
			}
		}
		if max > 0 && len(got) > max {
			t.Fatalf("Clean(%q, %d) = %d bytes", s, max, len(got))
		}
	})
}

func TestStateSummary(t *testing.T) {
	for _, tc := range []struct {
		st   State
		want string
	}{
		{State{State: Waiting}, "waiting"},
		{State{State: Cloning, Step: "unpack", Done: 42, Total: 100}, "cloning 42%"},
		{State{State: Cloning, Step: "mkfs"}, "cloning (mkfs)"},
		{State{State: Cloning}, "cloning"},
		{State{State: Done, Step: "finish"}, "done"},
		{State{State: Failed, Step: "unpack"}, "failed at unpack"},
		{State{State: Failed, Step: "unpack\x1b[31m"}, "failed at unpack[31m"},
		{State{State: Failed}, "failed"},
		{State{}, "unknown"},
		{State{State: Unknown, Detail: "corrupt state.json"}, "unknown (corrupt state.json)"},
	} {
		if got := tc.st.Summary(); got != tc.want {
			t.Errorf("%+v.Summary() = %q; want %q", tc.st, got, tc.want)
		}
	}
}

// TestCorruptState: one empty state.json (a crash without fsync) makes
// that node "unknown (corrupt state.json)"; every other node still lists,
// and the node's next report replaces the file.
func TestCorruptState(t *testing.T) {
	s := Open(t.TempDir(), Limits{})
	for _, n := range []string{"s001", "s002", "s003"} {
		if _, err := s.Update(State{Node: n, State: Done, Version: "1.0"}); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(s.Dir(), "s002", "state.json"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	all, err := s.All()
	if err != nil || len(all) != 3 {
		t.Fatalf("All() = %d states, %v; want 3, nil", len(all), err)
	}
	want := []string{"done", "unknown (corrupt state.json)", "done"}
	for i, st := range all {
		if st.Summary() != want[i] {
			t.Errorf("All()[%d] = %s %q; want %q", i, st.Node, st.Summary(), want[i])
		}
	}
	st, err := s.Update(State{Node: "s002", State: Cloning, Step: "setup"})
	if err != nil || st.Summary() != "cloning (setup)" {
		t.Errorf("Update of a corrupt state = %q, %v; want cloning (setup)", st.Summary(), err)
	}
}

// TestConcurrentWriters: writers with their own Store on one directory (a
// running serve and reclone --dir) update the same node at once; no
// update is lost.
func TestConcurrentWriters(t *testing.T) {
	dir := t.TempDir()
	const n = 40
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := Open(dir, Limits{})
			_, err := s.Change("s001", func(cur State) (State, bool) {
				return State{Attempt: cur.Attempt + 1}, true
			})
			if err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	st, err := Open(dir, Limits{}).Get("s001")
	if err != nil || st.Attempt != n {
		t.Errorf("after %d concurrent increments Attempt = %d, %v; want %d", n, st.Attempt, err, n)
	}
}

func TestUpdateChecks(t *testing.T) {
	s := Open(t.TempDir(), Limits{})
	for _, upd := range []State{
		{Node: "-oProxyCommand", State: Done},
		{Node: "../x", State: Done},
		{Node: "s001", State: "pwned"},
		{Node: "s001", State: Done, Version: "1.0\x1b[31m"},
		{Node: "s001", State: Cloning, Done: -1},
	} {
		if _, err := s.Update(upd); err == nil {
			t.Errorf("Update(%+v) succeeded; want a refusal", upd)
		}
	}
	st, err := s.Update(State{Node: "s001", State: Failed, Step: "unpack\x1b]0;t\x07", Error: strings.Repeat("e\x1b", 5000), Address: "not an address"})
	if err != nil {
		t.Fatal(err)
	}
	if strings.ContainsRune(st.Step+st.Error, 0x1b) || len(st.Error) > maxError || st.Address != "" {
		t.Errorf("stored state keeps escapes or uncapped text: step %q, %d bytes of error, address %q", st.Step, len(st.Error), st.Address)
	}
	b, _ := os.ReadFile(filepath.Join(s.Dir(), "s001", "state.json"))
	if bytes.ContainsRune(b, 0x1b) || bytes.Contains(b, []byte(`\u001b`)) {
		t.Errorf("state.json holds an escape: %s", b)
	}
}

func TestLimits(t *testing.T) {
	s := Open(t.TempDir(), Limits{MaxNodes: 2, MaxLog: 100, MaxLogTotal: 150})
	for i, want := range []error{nil, nil, ErrTooManyNodes} {
		_, err := s.Update(State{Node: fmt.Sprintf("s%d", i), State: Waiting})
		if !errors.Is(err, want) {
			t.Errorf("Update of node %d = %v; want %v", i+1, err, want)
		}
	}
	if _, err := s.PutLog("s0", strings.NewReader(strings.Repeat("a", 90))); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		node string
		size int
		want error
	}{
		{"s1", 101, ErrLogTooLarge}, // one log over MaxLog
		{"s1", 70, ErrLogTooLarge},  // 90+70 over MaxLogTotal
		{"s1", 50, nil},
		{"s0", 100, nil}, // replacing s0's own log counts it once
	} {
		_, err := s.PutLog(tt.node, strings.NewReader(strings.Repeat("b", tt.size)))
		if !errors.Is(err, tt.want) {
			t.Errorf("PutLog(%s, %d bytes) = %v; want %v", tt.node, tt.size, err, tt.want)
		}
	}
	if b, _ := os.ReadFile(filepath.Join(s.Dir(), "s1", "clone.log")); len(b) != 50 {
		t.Errorf("s1's log holds %d bytes; want the 50 of the last accepted upload", len(b))
	}
}

// TestPin: a pin is kept until the node reports done with that version.
func TestPin(t *testing.T) {
	s := Open(t.TempDir(), Limits{})
	if err := s.Assign("s001", "1.19"); err != nil {
		t.Fatal(err)
	}
	if err := s.Assign("s001", "1.x"); err == nil {
		t.Error("Assign(1.x) succeeded")
	}
	for _, tt := range []struct {
		upd  State
		want string
	}{
		{State{State: Cloning, Version: "1.19"}, "1.19"},
		{State{State: Done, Version: "1.20"}, "1.19"},
		{State{State: Done, Version: "1.19"}, ""},
	} {
		tt.upd.Node = "s001"
		if _, err := s.Update(tt.upd); err != nil {
			t.Fatal(err)
		}
		if got := s.Assigned("s001"); got != tt.want {
			t.Errorf("after %s %s the pin is %q; want %q", tt.upd.State, tt.upd.Version, got, tt.want)
		}
	}
}

// TestReadsWriteNothing: reading a store that does not exist creates
// nothing.
func TestReadsWriteNothing(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "nodes")
	s := Open(dir, Limits{})
	if all, err := s.All(); err != nil || len(all) != 0 {
		t.Errorf("All() of a missing store = %v, %v", all, err)
	}
	if _, err := s.Get("s001"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Get of a missing node = %v; want fs.ErrNotExist", err)
	}
	s.Pins()
	s.Assigned("s001")
	s.Assign("s001", "")
	if _, err := os.Stat(dir); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("reading made %s", dir)
	}
}

// TestChangeWithoutChange: a Change that changes nothing does not make a
// directory for a node the store does not know.
func TestChangeWithoutChange(t *testing.T) {
	s := Open(t.TempDir(), Limits{})
	if _, err := s.Change("s001", func(State) (State, bool) { return State{State: Cloning}, false }); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(s.Dir(), "s001")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a Change that changed nothing made the node's directory (%v)", err)
	}
}
