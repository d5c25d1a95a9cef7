package netclone

import (
	"errors"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/clonecd/clonecd/fleet"
)

// TestReporter: a node's reports through the HTTP API end up in
// state.json and clone.log, and both sources read them back.
func TestReporter(t *testing.T) {
	dir := t.TempDir()
	imageDir(t, dir, "1.20", 1000, 1)
	ts := httptest.NewServer(newServer(t, dir, 1))
	defer ts.Close()
	logFile := filepath.Join(t.TempDir(), "clone.log")
	os.WriteFile(logFile, []byte("setup ok\nunpack failed: disk full\n"), 0o644)

	r := NewReporter(ts.URL, "s007")
	r.Access = as("s007")
	r.Version, r.LogFile = "1.20", logFile
	r.Begin()
	r.Step("partition")
	r.Step("unpack")
	r.Progress(50, 200)
	src, _ := NewSource(ts.URL, "", admin())
	st, err := src.Get(t.Context(), "s007")
	if err != nil || st.Summary() != "cloning 25%" || st.Version != "1.20" {
		t.Fatalf("mid-clone %q %+v %v", st.Summary(), st, err)
	}
	r.Done(stepError{"unpack", errors.New("disk full")})
	dsrc, err := NewSource("", dir, Access{})
	if err != nil {
		t.Fatal(err)
	}
	for _, src := range []StateSource{src, dsrc} {
		st, err := src.Get(t.Context(), "s007")
		if err != nil {
			t.Fatal(err)
		}
		if st.Summary() != "failed at unpack" || st.Error != "disk full" || st.Log == "" || st.Finished.IsZero() {
			t.Fatalf("%s: %+v", src.Where(), st)
		}
		if b, _ := os.ReadFile(st.Log); !strings.Contains(string(b), "disk full") {
			t.Fatalf("log %s: %q", st.Log, b)
		}
		all, err := src.All(t.Context())
		if err != nil || len(all) != 1 {
			t.Fatalf("All: %v %v", all, err)
		}
		if vi, err := src.Version(t.Context(), ""); err != nil || vi.Version != "1.20" || vi.Size != 1000 || !vi.Current {
			t.Fatalf("%s: Version(current) = %+v, %v; want 1.20 of 1000 bytes", src.Where(), vi, err)
		}
	}
	// The cloner tries again by itself: attempt 2, progress from zero.
	st, _ = writeState(dir, fleet.State{Node: "s007", State: fleet.Cloning, Step: "setup"})
	if st.Attempt != 2 || st.Done != 0 || st.Summary() != "cloning (setup)" || st.Error != "" {
		t.Fatalf("retry after failure: %+v", st)
	}
	writeState(dir, fleet.State{Node: "s007", State: fleet.Failed, Step: "unpack", Error: "disk full"})
	// A new reclone starts clean: waiting, no stale error.
	st, _ = writeState(dir, fleet.State{Node: "s007", State: fleet.Waiting})
	if st.Error != "" || st.Step != "" || st.Summary() != "waiting" || st.Log == "" {
		t.Fatalf("after waiting: %+v", st)
	}
	if _, err := writeState(dir, fleet.State{Node: "../x", State: fleet.Done}); err == nil {
		t.Fatal("bad node name accepted")
	}
}

// TestLiveDisplay: the live block has a line per node in flight and an
// overall bar; the table has a row per node and the summary.
func TestLiveDisplay(t *testing.T) {
	r := &Recloner{total: 4, finished: 1, failed: 1, inflight: map[string]*flight{
		"s10": {start: time.Now(), state: fleet.State{State: fleet.Cloning, Done: 30, Total: 100}},
		"s2":  {start: time.Now(), state: fleet.State{State: fleet.Waiting}},
	}}
	got := r.liveBlock()
	want := []string{"  s2           waiting", "  s10          cloning 30%", "[#######                       ] 1/4 finished, 2 in flight, 1 failed"}
	for _, w := range want {
		if !strings.Contains(got, w) {
			t.Errorf("no %q in\n%s", w, got)
		}
	}
	if strings.Index(got, "s2 ") > strings.Index(got, "s10 ") {
		t.Errorf("nodes not in natural order:\n%s", got)
	}
	var b strings.Builder
	WriteTable(&b, []Result{{Node: "s1", Result: "done", OK: true, Version: "1.2", Duration: 90 * time.Second},
		{Node: "s2", Result: "unreachable", Error: "ssh: connect to host s2 port 22: No route to host"}})
	for _, w := range []string{"s1             done                            1m30s  1.2", "s2             unreachable                         -  -  (ssh: connect", "1 of 2 nodes ok, 1 failed"} {
		if !strings.Contains(b.String(), w) {
			t.Errorf("no %q in\n%s", w, b.String())
		}
	}
}

func TestDefaultDelay(t *testing.T) {
	for _, tc := range []struct {
		size int64
		want time.Duration
	}{{0, time.Second}, {236 << 20, 2100 * time.Millisecond}, {1 << 30, 9200 * time.Millisecond}, {100 << 30, time.Minute}} {
		if got := DefaultDelay(tc.size); got != tc.want {
			t.Errorf("DefaultDelay(%d) = %s, want %s", tc.size, got, tc.want)
		}
	}
}

// TestRecloneGrace: a node that fails and starts again by itself (the
// cloner retries) is followed on within Grace; without Grace its failure
// is final.
func TestRecloneGrace(t *testing.T) {
	for _, tc := range []struct {
		grace time.Duration
		want  string
	}{{10 * time.Second, "done"}, {0, "failed at unpack"}} {
		dir := t.TempDir()
		imageDir(t, dir, "2.1", 1000, 1)
		src, _ := NewSource("", dir, Access{})
		node := func(states ...fleet.State) {
			waitFor(t, 10*time.Second, func() bool { st, _ := readState(dir, "s1"); return st.State == fleet.Waiting })
			for _, st := range states {
				st.Node = "s1"
				writeState(dir, st)
				time.Sleep(300 * time.Millisecond) // the node takes a while per step
			}
		}
		go node(fleet.State{State: fleet.Cloning, Step: "unpack"}, fleet.State{State: fleet.Failed, Step: "unpack", Error: "sha256 mismatch"},
			fleet.State{State: fleet.Cloning, Step: "setup"}, fleet.State{State: fleet.Done, Version: "2.1"})
		r := &Recloner{Source: src, Rsh: []string{"/bin/sh", "-c", `echo "` + RamcloneMarker + `"`, "rsh"}, Poll: 50 * time.Millisecond, Grace: tc.grace}
		res, err := r.Run(t.Context(), []string{"s1"})
		if err != nil || res[0].Result != tc.want {
			t.Errorf("grace %s: %+v %v, want %s", tc.grace, res, err, tc.want)
		}
		waitFor(t, 10*time.Second, func() bool { st, _ := readState(dir, "s1"); return st.State == fleet.Done })
	}
}

func TestLogTail(t *testing.T) {
	for _, tt := range []struct {
		size, max int
		keep      bool
	}{{10, 200, true}, {200, 200, true}, {1000, 200, false}} {
		b := []byte(strings.Repeat("x", tt.size-4) + "END\n")
		got := logTail(b, tt.max)
		if len(got) > tt.max || !strings.HasSuffix(string(got), "END\n") || (tt.keep && len(got) != tt.size) || (!tt.keep && !strings.HasPrefix(string(got), "[clonecd: the first")) {
			t.Errorf("logTail(%d bytes, %d) = %d bytes %.40q...; want at most %d ending in END", tt.size, tt.max, len(got), got, tt.max)
		}
	}
}
