package netclone

import (
	"errors"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestStateSummary(t *testing.T) {
	tests := []struct {
		st   State
		want string
	}{
		{State{State: StateWaiting}, "waiting"},
		{State{State: StateCloning, Step: "unpack", Done: 42, Total: 100}, "cloning 42%"},
		{State{State: StateCloning, Step: "mkfs"}, "cloning (mkfs)"},
		{State{State: StateCloning}, "cloning"},
		{State{State: StateDone, Step: "finish"}, "done"},
		{State{State: StateFailed, Step: "unpack"}, "failed at unpack"},
		{State{State: StateFailed}, "failed"},
		{State{}, "unknown"},
	}
	for _, tc := range tests {
		if got := tc.st.Summary(); got != tc.want {
			t.Errorf("%+v: %q, want %q", tc.st, got, tc.want)
		}
	}
}

// TestReporter: a node's reports through the HTTP API end up in
// state.json and clone.log, and both sources read them back.
func TestReporter(t *testing.T) {
	dir := t.TempDir()
	imageDir(t, dir, "1.20", 1000, 1)
	ts := httptest.NewServer(NewServer(dir, 1))
	defer ts.Close()
	logFile := filepath.Join(t.TempDir(), "clone.log")
	os.WriteFile(logFile, []byte("setup ok\nunpack failed: disk full\n"), 0o644)

	r := NewReporter(ts.URL, "s007")
	r.Version, r.LogFile = "1.20", logFile
	r.Begin()
	r.Step("partition")
	r.Step("unpack")
	r.Progress(50, 200)
	src, _ := NewSource(ts.URL, "")
	st, err := src.Get(t.Context(), "s007")
	if err != nil || st.Summary() != "cloning 25%" || st.Version != "1.20" {
		t.Fatalf("mid-clone %q %+v %v", st.Summary(), st, err)
	}
	r.Done(stepError{"unpack", errors.New("disk full")})
	for _, src := range []StateSource{src, dirSource(dir)} {
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
		if v, err := src.Current(t.Context()); v != "1.20" || err != nil {
			t.Fatalf("Current %q %v", v, err)
		}
		if n, err := src.ImageSize(t.Context()); n != 1000 || err != nil {
			t.Fatalf("ImageSize %d %v", n, err)
		}
	}
	// A new reclone starts clean: waiting, no stale error.
	st, _ = WriteState(dir, State{Node: "s007", State: StateWaiting})
	if st.Error != "" || st.Step != "" || st.Summary() != "waiting" || st.Log == "" {
		t.Fatalf("after waiting: %+v", st)
	}
	if _, err := WriteState(dir, State{Node: "../x", State: StateDone}); err == nil {
		t.Fatal("bad node name accepted")
	}
}
