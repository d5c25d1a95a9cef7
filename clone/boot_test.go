package clone

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/clonecd/clonecd/bootenv"
)

type deadWriter struct{}

func (deadWriter) Write([]byte) (int, error) { return 0, errors.New("EIO: tty hung up") }

// TestSwapWriterReopen: after a rescue shell the log goes to freshly
// opened consoles and /tmp/clone.log, even when a console is gone.
func TestSwapWriterReopen(t *testing.T) {
	dir := t.TempDir()
	logFile := filepath.Join(dir, "clone.log")
	console := filepath.Join(dir, "ttyS0")
	if err := os.WriteFile(console, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	env := &bootenv.Env{Log: deadWriter{}, Consoles: []string{console, filepath.Join(dir, "missing/tty0")}}
	sw := &swapWriter{lockedWriter: lockedWriter{w: env.Log}, logFile: logFile}
	if _, err := fmt.Fprintln(sw, "before"); err == nil {
		t.Fatal("the dead writer did not fail")
	}
	sw.reopen(env)
	if _, err := fmt.Fprintln(sw, "clonecd: clone done"); err != nil {
		t.Fatal(err)
	}
	fmt.Fprintln(env.Log, "env.Log too")
	for _, p := range []string{logFile, console} {
		b, _ := os.ReadFile(p)
		if string(b) != "clonecd: clone done\nenv.Log too\n" {
			t.Errorf("%s = %q", p, b)
		}
	}
}
