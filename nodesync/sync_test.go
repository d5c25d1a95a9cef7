package nodesync

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/clonecd/clonecd/internal/testenv"
)

// versionA is a small image; versionB changes it in every way sync must
// follow.
var versionA = []node{
	{path: "etc", kind: Dir},
	{path: "etc/ssh", kind: Dir},
	{path: "etc/network", kind: Dir},
	{path: "etc/passwd", data: "root:x:0:0::/root:/bin/sh\n"},
	{path: "etc/fstab", data: "# image fstab\n"},
	{path: "etc/hostname", data: "golden\n"},
	{path: "usr/bin/tool", data: "tool version 1\n", mode: 0o755},
	{path: "usr/bin/tool2", data: "tool2\n", mode: 0o755},
	{path: "usr/bin/ping", data: "\x7fELF ping v1", mode: 0o755},
	{path: "usr/bin/arping", data: "\x7fELF arping", mode: 0o755, cap: "cap_net_raw+ep"},
	{path: "usr/lib/libx.so.1", data: strings.Repeat("libx one ", 1000)},
	{path: "usr/lib/libx.so", kind: Symlink, data: "libx.so.1"},
	{path: "usr/share/doc/a.txt", data: "shared text\n"},
	{path: "usr/share/doc/old.txt", data: "gone in B\n"},
	{path: "usr/share/doc/moved.txt", data: strings.Repeat("moved content ", 500)},
	{path: "usr/share/olddir/x", data: "x\n"},
	{path: "usr/share/olddir/sub/y", data: "y\n"},
	{path: "usr/share/thing", data: "a file in A, a directory in B\n"},
	{path: "usr/share/dir2/z", data: "a directory in A, a symlink in B\n"},
	{path: "usr/local/share/img.txt", data: "image's, A\n"},
	{path: "srv/www/index.html", data: "<p>hello</p>\n"},
	{path: "var/log/dpkg.log", data: "image log\n"},
	{path: "data", kind: Dir},
	{path: "boot/vmlinuz-1", data: "kernel 1"},
}

var versionB = []node{
	{path: "etc/fstab", data: "# image fstab, changed in B\n"},
	{path: "usr/bin/tool", data: "tool version 2\n", mode: 0o755, mtime: 1700000100},
	{path: "usr/bin/tool2", data: "tool2\n", mode: 0o700},
	{path: "usr/bin/ping", data: "\x7fELF ping v1", mode: 0o755, cap: "cap_net_raw+ep"},
	{path: "usr/bin/newtool", data: "new tool\n", mode: 0o755},
	{path: "usr/bin/newtool-copy", data: "new tool\n", mode: 0o755},
	{path: "usr/bin/random", data: pseudoRandom(4096), mode: 0o755},
	{path: "usr/lib/libx.so.1", data: strings.Repeat("libx one, patched ", 1000)},
	{path: "usr/lib/libx.so.2", data: strings.Repeat("libx two ", 1000)},
	{path: "usr/lib/libx.so", kind: Symlink, data: "libx.so.2"},
	{path: "usr/share/doc/c.txt", kind: Hardlink, data: "usr/share/doc/a.txt"},
	{path: "usr/share/doc/old.txt", remove: true},
	{path: "usr/share/doc/moved.txt", remove: true},
	{path: "usr/share/doc2/moved.txt", data: strings.Repeat("moved content ", 500)},
	{path: "usr/share/olddir", remove: true},
	{path: "usr/share/thing", remove: true},
	{path: "usr/share/thing/inside", data: "now inside a directory\n"},
	{path: "usr/share/dir2", remove: true},
	{path: "usr/share/dir2", kind: Symlink, data: "doc2"},
	{path: "usr/share/name with space\nand é", data: "odd name\n"},
	{path: "usr/local/share/img.txt", data: "image's, B\n"},
	{path: "usr/lib/devices/null", kind: Char, rdev: [2]uint32{1, 3}, mode: 0o666},
	{path: "usr/lib/devices/fifo", kind: Fifo, mode: 0o600},
	{path: "srv/www/index.html", data: "<p>hello</p>\n", uid: 33, gid: 33},
	{path: "opt/new/dir/file", data: "in new directories\n"},
	{path: "data/from-image", data: "the image's /data must not arrive\n"},
	{path: "boot/vmlinuz-2", data: "kernel 2"},
}

// identity is what the node has of its own.
var nodeOwn = map[string]string{
	"etc/hostname":                       "node17\n",
	"etc/machine-id":                     "0123456789abcdef0123456789abcdef\n",
	"etc/ssh/ssh_host_ed25519_key":       "node17's key\n",
	"etc/fstab":                          "UUID=node17 / ext4 defaults 0 1\n",
	"etc/network/interfaces":             "auto eth0\n",
	"etc/clonecd/sync.exclude":           "# the node's own\n/usr/local/***\n",
	"usr/local/bin/mine":                 "the node's own tool\n",
	"var/log/syslog":                     "the node's log\n",
	"usr/bin/stray":                      "on the node only: removed\n",
	"usr/bin/" + tempPrefix + "deadbeef": "left by an interrupted sync\n",
}

// versions builds the trees and images of A and B.
func versions(t *testing.T) (imgA, imgB string) {
	t.Helper()
	a := filepath.Join(t.TempDir(), "a")
	build(t, a, versionA)
	fixDirTimes(t, a)
	imgA = pack(t, a)
	build(t, a, versionB)
	fixDirTimes(t, a)
	return imgA, pack(t, a)
}

// published builds A and B and publishes B in a new store.
func published(t *testing.T) (imgA, imgB string, store *Store, filesB *Files) {
	t.Helper()
	testenv.NeedRoot(t)
	testenv.NeedTools(t, "setcap")
	imgA, imgB = versions(t)
	store = newStore(t)
	return imgA, imgB, store, publish(t, imgB, store)
}

// nodeFrom unpacks img as a node has it: its own identity files, a tmpfs
// on /data and another on /srv/scratch.
func nodeFrom(t *testing.T, img string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "node")
	unpack(t, img, dir)
	for p, data := range nodeOwn {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, p)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, p), []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	for _, m := range []string{"data", "srv/scratch"} {
		testenv.Tmpfs(t, filepath.Join(dir, m), "16m")
		if err := os.WriteFile(filepath.Join(dir, m, "keep"), []byte(m+" of the node\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// leftAlone lists what sync must leave alone in nodeFrom's node, for
// image.Verify to skip.
var leftAlone = []string{"/data/***", "/srv/scratch/***", "/usr/local/***", "/var/log/*", "/etc/clonecd/***"}

func checkUntouched(t *testing.T, dir string) {
	t.Helper()
	for p, data := range nodeOwn {
		if strings.Contains(p, tempPrefix) || p == "usr/bin/stray" {
			continue
		}
		if b, err := os.ReadFile(filepath.Join(dir, p)); err != nil || string(b) != data {
			t.Errorf("/%s = %q, %v; want the node's own %q", p, b, err, data)
		}
	}
	for _, m := range []string{"data", "srv/scratch"} {
		ents, _ := os.ReadDir(filepath.Join(dir, m))
		if len(ents) != 1 || ents[0].Name() != "keep" {
			t.Errorf("/%s holds %v; want only the node's keep", m, ents)
		}
	}
}

// TestSync: a node at A (with identity files, /data and another mount)
// synced to B over HTTP is what image.Verify calls identical to B (the
// identity files apart), identity and mounts untouched; a second sync
// changes and transfers nothing. A dry run before changes nothing and
// lists what the sync then does.
func TestSync(t *testing.T) {
	imgA, imgB, store, filesB := published(t)
	srv := serve(t, store)
	dir := nodeFrom(t, imgA)
	src := &HTTPSource{URL: srv.URL}
	ctx := context.Background()

	before, err := testenv.HashTree(dir)
	if err != nil {
		t.Fatal(err)
	}
	dry, err := Sync(ctx, dir, filesB, src, Options{DryRun: true, Version: "1.2"})
	if err != nil {
		t.Fatal(err)
	}
	after, _ := testenv.HashTree(dir)
	if d := testenv.DiffTrees(before, after); len(d) > 0 || srv.Requests.Load() != 0 {
		t.Fatalf("dry run changed %v, made %d requests", d, srv.Requests.Load())
	}
	// A program running /usr/bin/tool keeps reading the old file whole.
	running, err := os.Open(filepath.Join(dir, "usr/bin/tool"))
	if err != nil {
		t.Fatal(err)
	}
	defer running.Close()
	rep, err := Sync(ctx, dir, filesB, src, Options{Version: "1.2"})
	if err != nil {
		t.Fatal(err)
	}
	if b := readAll(t, running); string(b) != "tool version 1\n" {
		t.Errorf("an open /usr/bin/tool reads %q after sync; want the old file whole", b)
	}
	var sb strings.Builder
	rep.Format(&sb, true)
	t.Logf("sync:\n%s", sb.String())
	if js, err := json.Marshal(rep); err != nil || !strings.Contains(string(js), `"Type":"char device"`) {
		t.Errorf("report as JSON: %s, %v", js, err)
	}
	if len(dry.Changes) != len(rep.Changes) {
		t.Errorf("dry run listed %d changes, sync made %d", len(dry.Changes), len(rep.Changes))
	}
	for i := range min(len(dry.Changes), len(rep.Changes)) {
		if d, r := dry.Changes[i], rep.Changes[i]; d.Path != r.Path || d.Kind != r.Kind {
			t.Errorf("dry run: %s %s; sync: %s %s", d.Kind, d.Path, r.Kind, r.Path)
		}
	}
	v := verifyImage(t, imgB, dir, leftAlone...)
	for _, d := range v.Differences {
		t.Errorf("verify against B: %s", d)
	}
	checkUntouched(t, dir)
	if b, _ := os.ReadFile(filepath.Join(dir, "etc/clonecd-version")); string(b) != "1.2\n" {
		t.Errorf("/etc/clonecd-version = %q; want 1.2", b)
	}
	for _, p := range []string{"usr/bin/stray", "usr/bin/" + tempPrefix + "deadbeef", "data/from-image"} {
		if _, err := os.Lstat(filepath.Join(dir, p)); err == nil {
			t.Errorf("/%s still there", p)
		}
	}
	if !rep.Boot || rep.Grub {
		t.Errorf("report: Boot %v, Grub %v; want a /boot change and no GRUB change", rep.Boot, rep.Grub)
	}
	// Each content once: newtool and its copy share one blob, moved.txt
	// comes from the node's own old copy.
	if rep.Copied == 0 {
		t.Errorf("the moved file was fetched, not copied from the node's own")
	}
	for _, c := range rep.Changes {
		if strings.HasPrefix(c.Path, "/usr/local/") || strings.HasPrefix(c.Path, "/data") || c.Path == "/etc/fstab" {
			t.Errorf("changed something it must leave alone: %+v", c)
		}
	}

	srv.Requests.Store(0)
	raw, err := filesB.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	again, err := SyncSum(ctx, dir, sha256.Sum256(raw), src, Options{Version: "1.2"})
	if err != nil {
		t.Fatal(err)
	}
	// One request: node.files itself.
	if !again.Current() || srv.Requests.Load() != 1 || again.Fetched != 0 {
		t.Errorf("second sync: %d changes (%v), %d requests, %d bytes fetched; want none but node.files", len(again.Changes), again.Changes, srv.Requests.Load(), again.Fetched)
	}
}

// TestSyncNoDelete: NoDelete keeps what the image no longer has.
func TestSyncNoDelete(t *testing.T) {
	imgA, _, store, filesB := published(t)
	dir := nodeFrom(t, imgA)
	rep, err := Sync(context.Background(), dir, filesB, store, Options{NoDelete: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"usr/bin/stray", "usr/share/doc/old.txt", "usr/share/olddir/sub/y"} {
		if _, err := os.Lstat(filepath.Join(dir, p)); err != nil {
			t.Errorf("NoDelete: /%s removed", p)
		}
	}
	if _, err := os.Lstat(filepath.Join(dir, "usr/bin", tempPrefix+"deadbeef")); err == nil {
		t.Errorf("NoDelete kept a temporary file of an interrupted sync")
	}
	if rep.DeletesSkipped == 0 {
		t.Errorf("NoDelete: report counts no removal skipped")
	}
}

// pseudoRandom returns n bytes zstd cannot compress, the same each run.
func pseudoRandom(n int) string {
	b := make([]byte, n)
	x := uint32(2463534242)
	for i := range b {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		b[i] = byte(x)
	}
	return string(b)
}
