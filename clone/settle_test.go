package clone

import (
	"os"
	"os/exec"
	"testing"

	"github.com/clonecd/clonecd/internal/testenv"
)

// TestSettle: after settle, what GRUB would read without replaying the
// journal (debugfs on the backing file: the blocks where they are, not
// the loop device's cache) is the file as it was just replaced, on a real
// ext4 on a loop device. Without settle it reads the old kernel.
func TestSettle(t *testing.T) {
	testenv.NeedRoot(t)
	testenv.NeedTools(t, "mke2fs", "debugfs", "mount", "umount")
	img := testenv.Sparse(t, "fs.img", 64<<20)
	testenv.Run(t, "mke2fs", "-q", "-t", "ext4", img)
	loop := testenv.Loop(t, img, 512)
	dir := t.TempDir()
	testenv.Run(t, "mount", loop, dir)
	t.Cleanup(func() { testenv.Output("umount", dir) })
	root, err := os.OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	if err := writeIn(root, "boot/clonecd/vmlinuz", []byte("old kernel\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := settle(root, "boot"); err != nil {
		t.Fatal(err)
	}
	if err := writeIn(root, "boot/clonecd/vmlinuz", []byte("new kernel\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := settle(root, "boot"); err != nil {
		t.Fatal(err)
	}
	got, err := exec.Command("debugfs", "-R", "cat /boot/clonecd/vmlinuz", img).Output()
	if err != nil || string(got) != "new kernel\n" {
		t.Errorf("on the disk, outside the journal: %q (%v); want the new kernel", got, err)
	}
	// tmpfs has no freeze: settled by a sync
	if err := settle(mustRoot(t, "/dev/shm"), "."); err != nil {
		t.Errorf("settle on tmpfs: %v", err)
	}
}

func mustRoot(t *testing.T, dir string) *os.Root {
	t.Helper()
	r, err := os.OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}
