package bootenv

import (
	"bufio"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// openPTY returns a pseudo-terminal's master and its slave's path.
func openPTY(t *testing.T) (*os.File, string) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pseudo-terminals: %v", err)
	}
	t.Cleanup(func() { m.Close() })
	if err := unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	n, err := unix.IoctlGetInt(int(m.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	return m, fmt.Sprintf("/dev/pts/%d", n)
}

// TestEmbeddedShell drives the shell used when the initramfs has no
// busybox through a pseudo-terminal: it runs commands and exits on exit.
func TestEmbeddedShell(t *testing.T) {
	m, slave := openPTY(t)
	done := make(chan error, 1)
	go func() { done <- embeddedShell(slave, "test") }()
	fmt.Fprintf(m, "x=6; echo answer-$((x*7))\n")
	r := bufio.NewReader(m)
	deadline := time.Now().Add(30 * time.Second)
	m.SetReadDeadline(deadline)
	var seen strings.Builder
	for !strings.Contains(seen.String(), "answer-42") {
		line, err := r.ReadString('\n')
		seen.WriteString(line)
		if err != nil {
			t.Fatalf("reading the shell: %v; got %q", err, seen.String())
		}
	}
	fmt.Fprintf(m, "exit 3\n")
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("embedded shell did not exit on `exit`")
	}
}
