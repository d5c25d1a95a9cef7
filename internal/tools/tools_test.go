package tools

import (
	"os"
	"path/filepath"
	"testing"
)

func TestFind(t *testing.T) {
	dir := t.TempDir()
	exe := filepath.Join(dir, "mkfs.fake")
	if err := os.WriteFile(exe, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "notexec"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	old := Dirs
	defer func() { Dirs = old }()
	t.Setenv("PATH", "/nonexistent")
	Dirs = []string{dir}
	for _, c := range []struct{ name, want string }{
		{"mkfs.fake", exe},
		{"notexec", ""},
		{"absent", ""},
	} {
		if got := Find(c.name); got != c.want {
			t.Errorf("Find(%q) = %q, want %q", c.name, got, c.want)
		}
	}
}
