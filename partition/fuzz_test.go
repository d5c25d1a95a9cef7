package partition

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzParseLayout: the parser never panics, and whatever it accepts it
// writes back as a file that parses to the same text (a fixed point).
func FuzzParseLayout(f *testing.F) {
	f.Add(nodeLayout)
	f.Add(checkLayout)
	for _, c := range tableCases {
		f.Add(c.script)
	}
	f.Fuzz(func(t *testing.T, s string) {
		l, err := ParseLayout(strings.NewReader(s))
		if err != nil {
			return
		}
		text := l.String()
		l2, err := ParseLayout(strings.NewReader(text))
		if err != nil {
			t.Fatalf("written layout does not parse: %v\ninput:\n%q\nwritten:\n%s", err, s, text)
		}
		if text2 := l2.String(); text2 != text {
			t.Fatalf("not a fixed point:\n%s\nthen:\n%s", text, text2)
		}
		if _, err := l.Fit(1<<22, 512); err != nil && !strings.Contains(err.Error(), "line") && !strings.Contains(err.Error(), "too small") {
			t.Fatalf("fit error without a line: %v", err)
		}
	})
}

// FuzzDumpImage: reading arbitrary bytes as a disk never panics or hangs,
// and what it reads writes out as a layout that parses back or (for a
// damaged table with overlaps) is refused with an error naming the line.
func FuzzDumpImage(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) < 64<<10 {
			b = append(b, make([]byte, 64<<10-len(b))...)
		}
		p := filepath.Join(t.TempDir(), "disk.img")
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		l, err := Dump(p)
		if err != nil {
			return
		}
		var le *LineError
		if _, err := ParseLayout(strings.NewReader(l.String())); err != nil && !errors.As(err, &le) {
			t.Fatalf("dump does not parse back: %v\n%s", err, l)
		}
	})
}
