package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/clonecd/clonecd/fleet"
	"github.com/clonecd/clonecd/internal/testimage"
)

// TestStatusEscapesReports: what nodes report is printed with control
// characters escaped: a step or error holding a terminal escape
// (colours, the window title, OSC 52 clipboard) reaches the admin's
// terminal as text. JSON escapes them by itself.
func TestStatusEscapesReports(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	publishStore(t, dir, testimage.Write(t, t.TempDir(), "a"))
	evil := "unpack\x1b[31mRED\x1b]52;c;ZXZpbA==\a"
	// Written as a node's state file directly: the server cleans what it
	// stores (fleet.Clean), and status must not trust that either.
	raw, _ := json.Marshal(fleet.State{Node: "s001", State: fleet.Failed, Step: evil, Error: "boom\x1b[2J"})
	os.MkdirAll(filepath.Join(dir, "nodes", "s001"), 0o700)
	if err := os.WriteFile(filepath.Join(dir, "nodes", "s001", "state.json"), raw, 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errs := runMain(t, "status", "--dir", dir)
	if code != 0 || strings.ContainsAny(out, "\x1b\a") || !strings.Contains(out, `unpack`) || !strings.Contains(out, `RED`) {
		t.Errorf("status: exit %d, %q %s", code, out, errs)
	}
	code, out, _ = runMain(t, "status", "--json", "--dir", dir, "s001")
	if code != 0 || strings.ContainsAny(out, "\x1b\a") || !strings.Contains(out, `\u001b[31mRED`) {
		t.Errorf("status --json: exit %d, %q", code, out)
	}

	// reclone's table: the error a node's rsh printed
	rsh := filepath.Join(t.TempDir(), "rsh")
	os.WriteFile(rsh, []byte("#!/bin/sh\nprintf 'no\\033]0;owned\\007 way\\n'\nexit 1\n"), 0o755)
	code, out, _ = runMain(t, "reclone", "--dir", dir, "--rsh", rsh, "--delay", "0s", "s002")
	if code != 1 || strings.ContainsAny(out, "\x1b\a") || !strings.Contains(out, `owned`) {
		t.Errorf("reclone: exit %d, %q", code, out)
	}
}

func TestPrintable(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct{ in, want string }{
		{"done", "done"},
		{"cloning 45%", "cloning 45%"},
		{"a\tb\nc", `a\tb\nc`},
		{"\x1b[2J\u009b1m", `\x1b[2J\u009b1m`},
		{"raw \x9b byte", "raw \ufffd byte"},
		{"naïve ✓", "naïve ✓"},
	} {
		if got := printable(tt.in); got != tt.want {
			t.Errorf("printable(%q) = %q; want %q", tt.in, got, tt.want)
		}
	}
}
