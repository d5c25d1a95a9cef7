package image

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/clonecd/clonecd/internal/testenv"
)

// TestGoldenRoundTrip: the real Debian golden root packs, unpacks and
// verifies clean; ping keeps its file capability; its zstd image unpacked
// sequentially gives the same tree; plain GNU cpio extracts the same image
// (gzip and pigz pipelines exiting 0) to the same tree.
func TestGoldenRoundTrip(t *testing.T) {
	testenv.NeedRoot(t)
	testenv.NeedTools(t, "cpio", "pigz", "gzip", "getcap")
	golden := testenv.GoldenRoot(t)
	dir := t.TempDir()
	img := filepath.Join(dir, "node.cpio.gz")
	st, _, err := PackFile(golden, img, PackOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("packed golden root: %+v", *st)
	if st.Files < 5000 || st.Xattrs < 1 {
		t.Fatalf("golden root looks wrong: %+v", *st)
	}
	out := filepath.Join(dir, "ours")
	os.Mkdir(out, 0o755)
	ust, err := UnpackFile(img, out, UnpackOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if ust.Files != st.Files || ust.Bytes != st.Bytes || ust.Xattrs != st.Xattrs {
		t.Errorf("unpack stats %+v, pack stats %+v", *ust, *st)
	}
	f, err := os.Open(img)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := Verify(f, out, VerifyOptions{})
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK() {
		for i, d := range rep.Differences {
			if i < 30 {
				t.Errorf("verify: %s", d)
			}
		}
		t.Fatalf("verify: %d differences", len(rep.Differences))
	}
	if caps := testenv.Run(t, "getcap", filepath.Join(out, "usr/bin/ping")); !strings.Contains(caps, "cap_net_raw") {
		t.Errorf("ping lost its capability: %q", caps)
	}
	// The zstd image of the same root, unpacked sequentially (one
	// goroutine), gives the tree the writers gave, xattrs included.
	zimg := filepath.Join(dir, "node.cpio.zst")
	if _, _, err := PackFile(golden, zimg, PackOptions{Compress: Zstd}); err != nil {
		t.Fatal(err)
	}
	zout := filepath.Join(dir, "zstd")
	if _, err := UnpackFile(zimg, zout, UnpackOptions{Workers: 1}); err != nil {
		t.Fatal(err)
	}
	compareTrees(t, walkTree(t, out, false), walkTree(t, zout, false), nil, nil)
	if err := os.RemoveAll(zout); err != nil {
		t.Fatal(err)
	}
	// The same image through plain GNU cpio, both decompressors: every
	// stage exits 0 (no EPIPE from the xattr record) and the trees match
	// (but for xattrs, which GNU cpio does not know).
	ours := walkTree(t, out, true)
	for _, gunzip := range []string{"pigz -dc", "gzip -dc"} {
		gnu := filepath.Join(dir, "gnu")
		os.Mkdir(gnu, 0o755)
		bash(t, gnu, gunzip+" ../node.cpio.gz | cpio -idm --no-absolute-filenames --quiet")
		compareTrees(t, ours, walkTree(t, gnu, true), nil, nil)
		if err := os.RemoveAll(gnu); err != nil {
			t.Fatal(err)
		}
	}
}
