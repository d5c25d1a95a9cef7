package progress

import (
	"bytes"
	"strings"
	"testing"
)

func TestBytes(t *testing.T) {
	for _, c := range []struct {
		n    int64
		want string
	}{{0, "0 B"}, {1023, "1023 B"}, {1024, "1.0 KiB"}, {1536, "1.5 KiB"}, {5 << 20, "5.0 MiB"}, {3 << 30, "3.0 GiB"}} {
		if got := Bytes(c.n); got != c.want {
			t.Errorf("Bytes(%d) = %q, want %q", c.n, got, c.want)
		}
	}
}

func TestQuietOffTerminal(t *testing.T) {
	var buf bytes.Buffer
	m := New(&buf, "pack", 100, false)
	m.Add(50, 3)
	m.Done()
	if buf.Len() != 0 {
		t.Fatalf("meter drew on a non-terminal: %q", buf.String())
	}
	if l := m.Line(); !strings.Contains(l, "3 files") || !strings.Contains(l, "50%") {
		t.Fatalf("line %q lacks counts", l)
	}
}
