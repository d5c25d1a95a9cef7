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

// TestLine: a meter of bytes only says nothing of files; Set counts up to
// a total and ignores one that goes back.
func TestLine(t *testing.T) {
	for _, tt := range []struct {
		items int64
		set   []int64
		want  string
		not   string
	}{
		{0, []int64{10, 60, 40}, "60 B", "files"},
		{2, []int64{100}, "2 files", ""},
	} {
		m := New(&bytes.Buffer{}, "fetch", 100, false)
		m.Add(0, tt.items)
		for _, n := range tt.set {
			m.Set(n)
		}
		l := m.Line()
		if !strings.Contains(l, tt.want) || tt.not != "" && strings.Contains(l, tt.not) {
			t.Errorf("Line() after %d items, Set %v = %q; want %q and no %q", tt.items, tt.set, l, tt.want, tt.not)
		}
	}
}
