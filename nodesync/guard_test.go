package nodesync

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/clonecd/clonecd/image"
	"github.com/clonecd/clonecd/internal/testenv"
)

// TestRules: the prefix shortcut decides as image.IsIdentity does.
func TestRules(t *testing.T) {
	rules, err := newRules(image.IdentityFiles, true)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"/etc/hostname", "/etc/hostnames", "/etc/ssh/ssh_host_rsa_key", "/etc/ssh/sshd_config",
		"/boot/grub", "/boot/grub/grub.cfg", "/boot/grubby", "/boot/vmlinuz", "/etc/network/interfaces.d/eth0",
		"/etc/systemd/network/10.network", "/etc/systemd/networkd.conf", "/var/lib/dbus/machine-id", "/"} {
		for _, isDir := range []bool{false, true} {
			if got, want := matchAny(rules, p, isDir), image.IsIdentity(p); got != want {
				t.Errorf("matchAny(identity, %s, %v) = %v; image.IsIdentity = %v", p, isDir, got, want)
			}
		}
	}
}

// TestMountsBelow: mount points inside the root, kernel escapes undone.
func TestMountsBelow(t *testing.T) {
	table := `21 26 0:20 / /proc rw,relatime - proc proc rw
30 26 0:30 / /srv/node rw - ext4 /dev/vdb rw
31 30 0:31 / /srv/node/data rw - tmpfs tmpfs rw
32 30 0:32 / /srv/node/with\040space rw - tmpfs tmpfs rw
33 26 0:33 / /srv/node2/x rw - tmpfs tmpfs rw
`
	for _, tt := range []struct {
		root string
		want string
	}{
		{"/srv/node", "/data|/with space"},
		{"/", "/proc|/srv/node|/srv/node/data|/srv/node/with space|/srv/node2/x"},
	} {
		got, err := mountsBelow(strings.NewReader(table), tt.root)
		if err != nil || strings.Join(got, "|") != tt.want {
			t.Errorf("mountsBelow(%s) = %q, %v; want %q", tt.root, got, err, tt.want)
		}
	}
}

// TestSyncSymlinks: symlinks in the node's tree (absolute, or relative
// and leading out) are replaced as the image says, never written
// through: nothing outside the root changes.
func TestSyncSymlinks(t *testing.T) {
	imgA, imgB, store, filesB := published(t)
	dir := nodeFrom(t, imgA)
	outside := filepath.Join(filepath.Dir(dir), "outside")
	build(t, outside, []node{{path: "keep", data: "outside the root\n"}, {path: "doc2", kind: Dir}, {path: "new", kind: Dir}})
	// The node's own symlinks where B has directories.
	for link, target := range map[string]string{"usr/share/doc2": "../../../outside/doc2", "opt": outside} {
		if err := os.Symlink(target, filepath.Join(dir, link)); err != nil {
			t.Fatal(err)
		}
	}
	before, err := testenv.HashTree(outside)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Sync(context.Background(), dir, filesB, store, Options{}); err != nil {
		t.Fatal(err)
	}
	after, _ := testenv.HashTree(outside)
	if d := testenv.DiffTrees(before, after); len(d) > 0 {
		t.Errorf("sync changed what is outside the root: %v", d)
	}
	for _, d := range verifyImage(t, imgB, dir, leftAlone...).Differences {
		t.Errorf("verify against B: %s", d)
	}
}

// TestSyncChecksum: a file with the image's size and time but other
// bytes is found only by Checksum.
func TestSyncChecksum(t *testing.T) {
	imgA, imgB, store, filesB := published(t)
	dir := nodeFrom(t, imgA)
	if _, err := Sync(context.Background(), dir, filesB, store, Options{}); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "usr/bin/newtool")
	fi, _ := os.Stat(p)
	writeKeep(t, p, []byte(strings.ToUpper("new tool\n")))
	if err := os.Chtimes(p, fi.ModTime(), fi.ModTime()); err != nil {
		t.Fatal(err)
	}
	quick, err := Sync(context.Background(), dir, filesB, store, Options{})
	if err != nil || !quick.Current() {
		t.Fatalf("quick sync = %v, %v; want no change seen", quick.Changes, err)
	}
	full, err := Sync(context.Background(), dir, filesB, store, Options{Checksum: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(full.Changes) != 1 || full.Changes[0].Path != "/usr/bin/newtool" || full.Changes[0].Kind != Changed {
		t.Errorf("Checksum sync: %v; want /usr/bin/newtool changed", full.Changes)
	}
	for _, d := range verifyImage(t, imgB, dir, leftAlone...).Differences {
		t.Errorf("verify against B: %s", d)
	}
}

// TestRunningKernel: syncing the running root keeps the running kernel's
// modules and boot files; any other root keeps nothing of the kind.
func TestRunningKernel(t *testing.T) {
	rel, err := runningKernel("/")
	if err != nil || rel == "" {
		t.Fatalf("runningKernel(/) = %q, %v; want this kernel's release", rel, err)
	}
	if other, err := runningKernel(t.TempDir()); err != nil || other != "" {
		t.Errorf("runningKernel(a temp dir) = %q, %v; want none", other, err)
	}
	rules, err := newRules(runningKernelFiles(rel), false)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		path string
		want bool
	}{
		{"/lib/modules/" + rel, true},
		{"/lib/modules/" + rel + "/kernel/fs/ext4/ext4.ko", true},
		{"/usr/lib/modules/" + rel + "/modules.dep", true},
		{"/boot/vmlinuz-" + rel, true},
		{"/boot/vmlinuz-" + rel + "x", false},
		{"/lib/modules/" + rel + "x/modules.dep", false},
		{"/lib/modules", false},
	} {
		if got := matchAny(rules, tt.path, false); got != tt.want {
			t.Errorf("running kernel %s: keep %s = %v; want %v", rel, tt.path, got, tt.want)
		}
	}
}
