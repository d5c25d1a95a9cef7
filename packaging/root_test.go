package packaging

import (
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/clonecd/clonecd/internal/testenv"
)

// overlayRoot mounts a writable overlay of the cached golden root under
// t.TempDir(): the cache is its read-only lower layer and is never
// written; every change lands in the upper directory, which it returns
// with the merged root. The mount is undone when the test ends.
func overlayRoot(t *testing.T) (root, upper string) {
	t.Helper()
	testenv.NeedRoot(t)
	golden := testenv.GoldenRoot(t)
	dir := t.TempDir()
	root, upper, work := filepath.Join(dir, "root"), filepath.Join(dir, "upper"), filepath.Join(dir, "work")
	for _, d := range []string{root, upper, work} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	opts := "lowerdir=" + golden + ",upperdir=" + upper + ",workdir=" + work
	if err := unix.Mount("overlay", root, "overlay", 0, opts); err != nil {
		testenv.Missing(t, "an overlay mount of %s (%v)", golden, err)
	}
	t.Cleanup(func() {
		if err := unix.Unmount(root, 0); err != nil {
			t.Errorf("unmounting %s: %v", root, err)
			unix.Unmount(root, unix.MNT_DETACH)
		}
	})
	return root, upper
}
