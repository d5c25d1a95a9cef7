package atomicfile

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

func TestWriteFile(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "state.json")
	for _, c := range []struct {
		data string
		perm os.FileMode
	}{{"one", 0o600}, {"two, longer", 0o644}} {
		if err := WriteFile(p, []byte(c.data), c.perm); err != nil {
			t.Fatalf("WriteFile(%s) = %v", p, err)
		}
		got, err := os.ReadFile(p)
		if err != nil || string(got) != c.data {
			t.Errorf("after WriteFile(%q): read %q, %v", c.data, got, err)
		}
		if fi, _ := os.Stat(p); fi.Mode().Perm() != c.perm {
			t.Errorf("WriteFile(perm %o): file has %o", c.perm, fi.Mode().Perm())
		}
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 {
		t.Errorf("directory holds %d entries after two writes; want only the target", len(ents))
	}
}

func TestCleanupLeavesOldFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "img")
	os.WriteFile(p, []byte("old"), 0o600)
	f, err := Create(p, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	f.Write([]byte("half a new fi"))
	f.Cleanup()
	if got, _ := os.ReadFile(p); string(got) != "old" {
		t.Errorf("after an aborted write the file holds %q; want the old content", got)
	}
	ents, _ := os.ReadDir(filepath.Dir(p))
	if len(ents) != 1 {
		t.Errorf("aborted write left %d entries; want 1", len(ents))
	}
}

// TestWriteFileInStaysInside: an absolute symlink inside the root must not
// lead the write out of it.
func TestWriteFileInStaysInside(t *testing.T) {
	outside := t.TempDir()
	rootDir := t.TempDir()
	if err := os.Symlink(outside, filepath.Join(rootDir, "etc")); err != nil {
		t.Fatal(err)
	}
	os.MkdirAll(filepath.Join(rootDir, "boot", "grub"), 0o755)
	root, err := os.OpenRoot(rootDir)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	if err := WriteFileIn(root, "etc/hostname", []byte("n1\n"), 0o644); err == nil {
		t.Errorf("WriteFileIn(etc/hostname) through etc -> %s succeeded; want an error", outside)
	}
	if _, err := os.Stat(filepath.Join(outside, "hostname")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a file appeared outside the root: %v", err)
	}
	if err := WriteFileIn(root, "boot/grub/grubenv", []byte("x"), 0o644); err != nil {
		t.Fatalf("WriteFileIn(boot/grub/grubenv) = %v", err)
	}
	if got, _ := os.ReadFile(filepath.Join(rootDir, "boot/grub/grubenv")); string(got) != "x" {
		t.Errorf("grubenv = %q; want x", got)
	}
}
