package cli

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/clonecd/clonecd/internal/testenv"
	"github.com/clonecd/clonecd/internal/testimage"
)

// TestPublishProgress: on a terminal, publish draws a meter while it
// checks the image and while it copies it; with -q, or when standard
// error is not a terminal, it draws nothing.
func TestPublishProgress(t *testing.T) {
	src := t.TempDir()
	lay := filepath.Join(src, "node.sfdisk")
	os.WriteFile(lay, []byte("label: dos\n\n/dev/sda1 : start=2048, size=2048, type=83\n"), 0o644)
	for _, tt := range []struct {
		name     string
		terminal bool
		args     []string
		want     []string // on standard error, in order; none: nothing at all
	}{
		{"terminal", true, nil, []string{"publish: checking: ", "publish: copying: "}},
		{"terminal, -q", true, []string{"-q"}, nil},
		{"not a terminal", false, nil, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			store := filepath.Join(t.TempDir(), "clone_image")
			args := append([]string{"clonecd", "publish", "--unsigned", testimage.Write(t, src, "meter"), "--dir", store, "--layout", lay}, tt.args...)
			var stdout, stderr bytes.Buffer
			out := Output{Stdin: strings.NewReader(""), Stdout: &stdout, Stderr: &stderr}
			var ptm *os.File
			if tt.terminal {
				var tty *os.File
				ptm, tty = testenv.PTY(t)
				out.Stderr = tty
			}
			if code := Run(args, out); code != 0 {
				t.Fatalf("publish: exit %d: %s", code, stderr.String())
			}
			drawn := stderr.String()
			if ptm != nil {
				drawn = readAvailable(t, ptm)
			}
			rest := drawn
			for _, w := range tt.want {
				i := strings.Index(rest, w)
				if i < 0 {
					t.Fatalf("standard error %q lacks %q (in order %q)", drawn, w, tt.want)
				}
				rest = rest[i+len(w):]
			}
			if tt.want == nil && drawn != "" {
				t.Errorf("standard error %q; want nothing", drawn)
			}
			if !strings.HasPrefix(stdout.String(), "published 1.0 ") {
				t.Errorf("standard output %q", stdout.String())
			}
		})
	}
}

// readAvailable reads what is waiting on a terminal's master side.
func readAvailable(t *testing.T, f *os.File) string {
	var b bytes.Buffer
	buf := make([]byte, 4096)
	for {
		f.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
		n, err := f.Read(buf)
		b.Write(buf[:n])
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return b.String()
		}
		if err != nil {
			t.Fatalf("reading the terminal: %v", err)
		}
	}
}
