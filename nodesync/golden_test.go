package nodesync

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/clonecd/clonecd/image"
	"github.com/clonecd/clonecd/internal/testenv"
)

var goldenOnce struct {
	sync.Mutex
	img string
}

// goldenImage packs the Debian golden root once per test binary.
func goldenImage(t testing.TB) string {
	t.Helper()
	golden := testenv.GoldenRoot(t)
	goldenOnce.Lock()
	defer goldenOnce.Unlock()
	if goldenOnce.img == "" {
		img := filepath.Join(sharedTemp(t), "golden.cpio.gz")
		if _, _, err := image.PackFile(golden, img, image.PackOptions{}); err != nil {
			t.Fatal(err)
		}
		goldenOnce.img = img
	}
	return goldenOnce.img
}

// regularFiles lists the regular files of a tree (relative paths,
// sorted), not counting the identity files.
func regularFiles(t testing.TB, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if d.Type().IsRegular() && !image.IsIdentity("/"+rel) {
			out = append(out, rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(out)
	return out
}

// rebuild changes a file the way a package rebuild does: bytes differ
// all through it (one in every 512, as shifted addresses would), the
// size grows a little (grow bytes) and the time is new. rsync's rolling
// checksum finds no block to reuse in such a file.
func rebuild(t testing.TB, path string, grow int) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < len(b); i += 512 {
		b[i] ^= 0x5a
	}
	b = append(b, bytes.Repeat([]byte{'+'}, grow)...)
	writeKeep(t, path, b)
}

// edit changes 16 bytes in the middle of a file, keeping its size: the
// case rsync's delta transfer is made for.
func edit(t testing.TB, path string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for i := len(b) / 2; i < min(len(b), len(b)/2+16); i++ {
		b[i] ^= 0x5a
	}
	writeKeep(t, path, b)
}

// writeKeep rewrites a file in place (owner, mode and xattrs kept) with
// a new time.
func writeKeep(t testing.TB, path string, b []byte) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(b); err != nil {
		t.Fatal(err)
	}
	f.Close()
	ts := []unix.Timespec{{Sec: 1800000000}, {Sec: 1800000000}}
	if err := unix.UtimesNanoAt(unix.AT_FDCWD, path, ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		t.Fatal(err)
	}
}

// TestSyncGolden: the real Debian root, unpacked as a node, synced to a
// version with every kind of change is what image.Verify calls identical
// to it; a second sync transfers nothing.
func TestSyncGolden(t *testing.T) {
	testenv.NeedRoot(t)
	testenv.NeedTools(t, "setcap")
	imgA := goldenImage(t)
	bdir := filepath.Join(t.TempDir(), "b")
	unpack(t, imgA, bdir)
	files := regularFiles(t, bdir)
	for i, f := range files {
		if i%50 == 7 {
			rebuild(t, filepath.Join(bdir, f), i%3)
		}
	}
	alt, err := os.ReadDir(filepath.Join(bdir, "etc/alternatives"))
	if err != nil {
		t.Fatal(err)
	}
	var link string
	for _, e := range alt {
		if e.Type()&os.ModeSymlink != 0 {
			link = "etc/alternatives/" + e.Name()
			break
		}
	}
	build(t, bdir, []node{
		{path: "opt/marker/file", data: "version B\n"},
		{path: "usr/share/doc", remove: true},
		{path: "usr/bin/ls-again", kind: Hardlink, data: "usr/bin/ls"},
		{path: link, kind: Symlink, data: "/usr/bin/true"},
		{path: "usr/lib/devices/null", kind: Char, rdev: [2]uint32{1, 3}, mode: 0o666},
		{path: "usr/bin/dpkg-query", data: "\x7fELF a new dpkg-query", mode: 0o755, cap: "cap_net_admin+ep"},
	})
	testenv.Run(t, "chmod", "0700", filepath.Join(bdir, "usr/bin/cat"))
	testenv.Run(t, "chown", "1:2", filepath.Join(bdir, "usr/bin/tac"))
	imgB := pack(t, bdir)
	store := newStore(t)
	t0 := time.Now()
	filesB := publish(t, imgB, store)
	t.Logf("published B (%d entries) in %v", len(filesB.Entries), time.Since(t0).Round(time.Millisecond))
	srv := serve(t, store)
	dir := nodeFrom(t, imgA)
	src := &HTTPSource{URL: srv.URL}
	rep, err := Sync(context.Background(), dir, filesB, src, Options{Version: "2.0"})
	if err != nil {
		t.Fatal(err)
	}
	var sb strings.Builder
	rep.Format(&sb, false)
	t.Logf("sync A -> B: %s", sb.String())
	v := verifyImage(t, imgB, dir, leftAlone...)
	for i, d := range v.Differences {
		if i < 40 {
			t.Errorf("verify against B: %s", d)
		}
	}
	checkUntouched(t, dir)
	srv.Requests.Store(0)
	again, err := Sync(context.Background(), dir, filesB, src, Options{Version: "2.0"})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("no-change sync of %d entries: %v", again.Entries, again.Duration.Round(time.Millisecond))
	if !again.Current() || srv.Requests.Load() != 0 {
		t.Errorf("second sync: %d changes, %d requests; want none (first: %v)", len(again.Changes), srv.Requests.Load(), again.Changes)
	}
}
