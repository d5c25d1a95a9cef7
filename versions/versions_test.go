package versions

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseVersion(t *testing.T) {
	tests := []struct {
		in, want, next, tag string
		err                 string
	}{
		{in: "1.19", want: "1.19", next: "1.20", tag: "CLONE_1_19"},
		{in: "1.9\n", want: "1.9", next: "1.10", tag: "CLONE_1_9"},
		{in: " 2.0 ", want: "2.0", next: "2.1", tag: "CLONE_2_0"},
		{in: "CLONE_1_19", want: "1.19", next: "1.20", tag: "CLONE_1_19"},
		{in: "1.99", want: "1.99", next: "1.100", tag: "CLONE_1_99"},
		{in: "1", err: "MAJOR.MINOR"},
		{in: "1.05", err: "leading zero"},
		{in: "1.x", err: "not a decimal"},
		{in: "1.2.3", err: "not a decimal"},
		{in: "", err: "MAJOR.MINOR"},
		{in: ".3", err: "empty"},
		{in: "1.-3", err: "not a decimal"},
	}
	for _, tt := range tests {
		v, err := ParseVersion(tt.in)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("ParseVersion(%q) = %v, %v; want error with %q", tt.in, v, err, tt.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("ParseVersion(%q): %v", tt.in, err)
			continue
		}
		if v.String() != tt.want || v.Next().String() != tt.next || v.Tag() != tt.tag {
			t.Errorf("ParseVersion(%q) = %s next %s tag %s; want %s %s %s", tt.in, v, v.Next(), v.Tag(), tt.want, tt.next, tt.tag)
		}
	}
}

func TestCompare(t *testing.T) {
	tests := []struct {
		a, b string
		want int
	}{
		{"1.9", "1.10", -1}, {"1.10", "1.9", 1}, {"2.0", "1.99", 1}, {"1.19", "1.19", 0}, {"x", "1.0", -1},
	}
	for _, tt := range tests {
		if got := CompareStrings(tt.a, tt.b); got != tt.want {
			t.Errorf("CompareStrings(%s, %s) = %d, want %d", tt.a, tt.b, got, tt.want)
		}
	}
}

func TestVersionFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), FileName)
	if _, err := ReadFile(p); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("missing file: %v", err)
	}
	for _, v := range []string{"1.9", "1.10", "3.0"} {
		pv, _ := ParseVersion(v)
		if err := WriteFile(p, pv); err != nil {
			t.Fatal(err)
		}
		b, _ := os.ReadFile(p)
		if string(b) != v+"\n" {
			t.Errorf("file holds %q, want %q", b, v+"\n")
		}
		got, err := ReadFile(p)
		if err != nil || got != pv {
			t.Errorf("ReadFile = %v, %v; want %v", got, err, pv)
		}
	}
	os.WriteFile(p, []byte("garbage\n"), 0o644)
	if _, err := ReadFile(p); err == nil || !strings.Contains(err.Error(), p) {
		t.Errorf("bad file: error %v should name %s", err, p)
	}
}
