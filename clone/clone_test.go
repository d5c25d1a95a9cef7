package clone

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/clonecd/clonecd/image"
	"github.com/clonecd/clonecd/internal/testenv"
)

// testLayout is the default-style layout for a 3 GiB disk: swap, root, and
// a preserved /data filling the rest.
const testLayout = `label: dos
unit: sectors
sector-size: 512

/dev/sda1 : start=2048, size=131072, type=82
/dev/sda2 : start=133120, size=4194304, type=83, bootable
/dev/sda3 : start=4327424, type=83
# clonecd: part=1 fs=swap label=swap
# clonecd: part=2 fs=ext4 mount=/ label=root mkfs="-O ^metadata_csum"
# clonecd: part=3 fs=ext4 mount=/data label=data preserve=yes
`

// makeMedia writes clone media for root into dir: the archive made the
// Medusa page's way, GNU find | cpio -o | gzip (newc here; the e2e tests use crc).
func makeMedia(t *testing.T, root, dir string) {
	t.Helper()
	testenv.NeedTools(t, "cpio", "pigz", "sha256sum")
	sh := fmt.Sprintf("cd %q && find . -xdev | cpio -o --quiet -H newc | pigz -c > %q/node.cpio.gz && cd %q && sha256sum node.cpio.gz > node.cpio.gz.sha256", root, dir, dir)
	if out, err := exec.Command("sh", "-c", sh).CombinedOutput(); err != nil {
		t.Fatalf("packing %s: %v\n%s", root, err, out)
	}
	files := map[string]string{
		"CLONE_CD_VERSION":    "1.42\n",
		"node.sfdisk":         testLayout,
		"clonecd.conf":        "version=1.42\nserver=http://10.0.2.2:8080\n",
		"isolinux/vmlinuz":    "kernel",
		"isolinux/initrd.img": "initrd",
		"nodes":               "52:54:00:12:34:56 fromtable\n",
		"ks.cfg": "rootpw --plaintext x\n%post\necho \"in chroot: $HOSTNAME\" > /etc/post-ran\n%end\n" +
			"%post --nochroot\necho \"outside: $HOSTNAME\" > $INSTALL_ROOT/etc/post-nochroot\n%end\n",
	}
	for name, s := range files {
		p := filepath.Join(dir, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// node is a cloned disk image opened for checks.
type node struct {
	t    *testing.T
	loop string
	root string
	data string
}

func openNode(t *testing.T, img string) *node {
	t.Helper()
	loop := testenv.Loop(t, img, 512)
	testenv.Output("partx", "-a", loop)
	n := &node{t: t, loop: loop, root: t.TempDir(), data: t.TempDir()}
	testenv.Run(t, "mount", "-o", "ro", loop+"p2", n.root)
	t.Cleanup(func() { testenv.Output("umount", n.root) })
	testenv.Run(t, "mount", loop+"p3", n.data)
	t.Cleanup(func() { testenv.Output("umount", n.data) })
	return n
}

func (n *node) read(rel string) string {
	b, err := os.ReadFile(filepath.Join(n.root, rel))
	if err != nil {
		n.t.Fatalf("cloned node: %v", err)
	}
	return string(b)
}

func (n *node) blkid(dev, tag string) string {
	return strings.TrimSpace(testenv.Run(n.t, "blkid", "-p", "-s", tag, "-o", "value", dev))
}

func sshKeys(t *testing.T, root string) string {
	t.Helper()
	out, _ := testenv.Output("sh", "-c", "cat "+root+"/etc/ssh/ssh_host_*_key.pub")
	return out
}

// TestCloneLoop clones the Debian golden root onto a disk image through a
// loop device, the way the CD does, and checks the result; then reclones
// it keeping /data, refuses a differing table with DataKeep, repartitions
// it without, and stops at unpack on a corrupted image.
func TestCloneLoop(t *testing.T) {
	testenv.NeedRoot(t)
	testenv.NeedTools(t, "sfdisk", "mke2fs", "mkswap", "blkid", "e2fsck", "losetup", "partx", "chroot")
	golden := testenv.GoldenRoot(t)
	media := t.TempDir()
	makeMedia(t, golden, media)
	img := testenv.Sparse(t, "node.img", 3<<30)
	var log bytes.Buffer
	run := func(cfg Config) error {
		cfg.Media = os.DirFS(media)
		cfg.Target = img
		cfg.Log = &log
		log.Reset()
		err := Run(context.Background(), cfg)
		t.Logf("clone log:\n%s", log.String())
		return err
	}
	var firstKeys string
	t.Run("fresh", func(t *testing.T) {
		if err := run(Config{MACs: []string{"52:54:00:12:34:56"}}); err != nil {
			t.Fatal(err)
		}
		for _, step := range Steps {
			if !strings.Contains(log.String(), "clonecd: step "+step+" done in ") {
				t.Errorf("log has no duration for step %s", step)
			}
		}
		n := openNode(t, img)
		if h := n.read("etc/hostname"); h != "fromtable\n" {
			t.Errorf("hostname %q, want fromtable (nodes table by MAC)", h)
		}
		if h := n.read("etc/hosts"); !strings.Contains(h, "127.0.1.1\tfromtable\n") {
			t.Errorf("/etc/hosts:\n%s", h)
		}
		if p := n.read("etc/post-ran") + n.read("etc/post-nochroot"); p != "in chroot: fromtable\noutside: fromtable\n" {
			t.Errorf("ks.cfg %%post scripts: %q", p)
		}
		if v := n.read("etc/clonecd-version"); v != "1.42\n" {
			t.Errorf("clonecd-version %q", v)
		}
		fstab := n.read("etc/fstab")
		for i, mnt := range map[string]string{"p1": "none swap", "p2": "/ ext4", "p3": "/data ext4"} {
			u := n.blkid(n.loop+i, "UUID")
			if u == "" || !strings.Contains(fstab, "UUID="+u+" "+mnt) {
				t.Errorf("fstab lacks UUID=%s %s:\n%s", u, mnt, fstab)
			}
		}
		if l := n.blkid(n.loop+"p2", "LABEL"); l != "root" {
			t.Errorf("root label %q", l)
		}
		if out := testenv.Run(t, "dumpe2fs", "-h", n.loop+"p2"); strings.Contains(out, "metadata_csum") {
			t.Errorf("layout mkfs options not used")
		}
		mid := n.read("etc/machine-id")
		if len(strings.TrimSpace(mid)) != 32 || mid == readOr(golden, "etc/machine-id") {
			t.Errorf("machine-id %q (golden's %q)", mid, readOr(golden, "etc/machine-id"))
		}
		firstKeys = sshKeys(t, n.root)
		if firstKeys == "" || firstKeys == sshKeys(t, golden) {
			t.Errorf("ssh host keys missing or the golden node's")
		}
		grub := n.read("boot/grub/grub.cfg")
		if u := n.blkid(n.loop+"p2", "UUID"); !strings.Contains(grub, "root=UUID="+u) {
			t.Errorf("grub.cfg does not boot root=UUID=%s", u)
		}
		// the ramclone entry passes the node's name: a network reclone keeps it
		if !strings.Contains(grub, "menuentry 'ramclone' --id ramclone") || !strings.Contains(grub, "clonecd.mode=net clonecd.server=http://10.0.2.2:8080 clonecd.hostname=fromtable ") {
			t.Errorf("grub.cfg has no ramclone entry with the node's name")
		}
		if !strings.Contains(n.read(image.ClonerGrubDefault), "\nGRUB_DEFAULT=saved\n") || strings.Contains(n.read("etc/default/grub"), "GRUB_DEFAULT=saved") {
			t.Errorf("GRUB_DEFAULT is not saved in %s, or the image's /etc/default/grub was edited", image.ClonerGrubDefault)
		}
		if n.read("boot/clonecd/vmlinuz") != "kernel" || n.read("boot/clonecd/initrd.img") != "initrd" {
			t.Errorf("network cloner kernel/initrd not installed")
		}
		if st, err := os.Stat(filepath.Join(n.root, "usr/local/sbin/clonecd")); err != nil || st.Mode()&0o111 == 0 {
			t.Errorf("clonecd not installed: %v", err)
		}
		mbr := make([]byte, 512)
		f, _ := os.Open(img)
		f.ReadAt(mbr, 0)
		f.Close()
		if !bytes.Contains(mbr, []byte("GRUB")) {
			t.Errorf("no GRUB boot code in the MBR")
		}
		if err := os.WriteFile(filepath.Join(n.data, "keep.txt"), []byte("precious\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	})
	if t.Failed() {
		return
	}
	t.Run("reclone keeps /data (CLI)", func(t *testing.T) {
		bin := testenv.Clonecd(t)
		out, err := testenv.Output(bin, "clone", "--media", media, "--target", img, "--hostname", "node08", "--mac", "52:54:00:12:34:56")
		t.Logf("%s", out)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(out, "preserving partitions [3]") {
			t.Errorf("the check did not preserve partition 3")
		}
		n := openNode(t, img)
		if b, err := os.ReadFile(filepath.Join(n.data, "keep.txt")); err != nil || string(b) != "precious\n" {
			t.Errorf("/data/keep.txt = %q, %v; want it kept", b, err)
		}
		if h := n.read("etc/hostname"); h != "node08\n" {
			t.Errorf("hostname %q, want node08 (--hostname over the table)", h)
		}
		if k := sshKeys(t, n.root); k == "" || k == firstKeys {
			t.Errorf("a second clone has the same ssh host keys")
		}
		if out := testenv.Run(t, "e2fsck", "-fn", n.loop+"p3"); !strings.Contains(out, "clean") && !strings.Contains(out, "files") {
			t.Errorf("e2fsck /data: %s", out)
		}
	})
	// a different table: /data starts later
	other := strings.Replace(testLayout, "start=4327424", "start=4331520", 1)
	other = strings.Replace(other, "# clonecd: part=1", "# x: part=1", 1) // sfdisk-only
	if out, err := exec.Command("sh", "-c", "sfdisk --no-reread --no-tell-kernel -q "+img+" <<'E'\n"+other+"E\n").CombinedOutput(); err != nil {
		t.Fatalf("sfdisk: %v\n%s", err, out)
	}
	before := testenv.Run(t, "sfdisk", "-d", img)
	t.Run("data=keep stops before writing", func(t *testing.T) {
		err := run(Config{Hostname: "n", DataKeep: true})
		var se *StepError
		if !errors.As(err, &se) || se.Step != "check" || !strings.Contains(err.Error(), "clonecd.data=keep") {
			t.Fatalf("err = %v, want a stop at check naming clonecd.data=keep", err)
		}
		if after := testenv.Run(t, "sfdisk", "-d", img); after != before {
			t.Errorf("table written despite DataKeep:\n%s\nwas\n%s", after, before)
		}
	})
	t.Run("differing table repartitioned", func(t *testing.T) {
		if err := run(Config{Hostname: "n9"}); err != nil {
			t.Fatal(err)
		}
		if after := testenv.Run(t, "sfdisk", "-d", img); !strings.Contains(after, "start=     4327424") {
			t.Errorf("not repartitioned:\n%s", after)
		}
		n := openNode(t, img)
		if _, err := os.Stat(filepath.Join(n.data, "keep.txt")); err == nil {
			t.Errorf("/data not made anew")
		}
	})
	t.Run("break stops and cleans up", func(t *testing.T) {
		err := run(Config{Hostname: "n", Break: "mkfs"})
		var se *StepError
		if !errors.Is(err, ErrBreak) || !errors.As(err, &se) || se.Step != "mkfs" {
			t.Fatalf("err = %v, want ErrBreak at mkfs", err)
		}
		if out := testenv.Run(t, "losetup", "-j", img); strings.TrimSpace(out) != "" {
			t.Errorf("loop device left attached: %s", out)
		}
	})
	// C09: a damaged image stops the run in setup, before the table,
	// mkfs or anything else is written.
	image := filepath.Join(media, "node.cpio.gz")
	good, err := os.ReadFile(image)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		damage func([]byte) []byte
	}{
		{"truncated", func(b []byte) []byte { return b[:5<<20] }},
		{"corrupted", func(b []byte) []byte {
			b = append([]byte(nil), b...)
			for i := len(b) / 2; i < len(b)/2+4; i++ {
				b[i] ^= 0x5a
			}
			return b
		}},
	} {
		t.Run(tc.name+" image refused before writing", func(t *testing.T) {
			if err := os.WriteFile(image, tc.damage(good), 0o644); err != nil {
				t.Fatal(err)
			}
			defer os.WriteFile(image, good, 0o644)
			table := testenv.Run(t, "sfdisk", "-d", img)
			uuid := func() string {
				loop := testenv.Loop(t, img, 512)
				testenv.Output("partx", "-a", loop)
				defer testenv.Output("losetup", "-d", loop)
				return strings.TrimSpace(testenv.Run(t, "blkid", "-p", "-s", "UUID", "-o", "value", loop+"p2"))
			}
			before := uuid()
			err := run(Config{Hostname: "n"})
			var se *StepError
			if !errors.As(err, &se) || se.Step != "setup" || !strings.Contains(err.Error(), "nothing was written") {
				t.Fatalf("err = %v, want a failure at setup saying nothing was written", err)
			}
			if after := testenv.Run(t, "sfdisk", "-d", img); after != table {
				t.Errorf("the table was written")
			}
			if after := uuid(); after != before {
				t.Errorf("the root filesystem was made anew (UUID %s, was %s)", after, before)
			}
			if out := testenv.Run(t, "losetup", "-j", img); strings.TrimSpace(out) != "" {
				t.Errorf("loop device left attached: %s", out)
			}
		})
	}
}

func readOr(root, rel string) string {
	b, _ := os.ReadFile(filepath.Join(root, rel))
	return string(b)
}
