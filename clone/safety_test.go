package clone

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/clonecd/clonecd/internal/testenv"
	"github.com/clonecd/clonecd/partition"
)

func TestSetGrubenv(t *testing.T) {
	testenv.NeedTools(t, "grub-editenv")
	tests := []struct {
		name    string
		old     string // "" = no file
		set     map[string]string
		want    string // grub-editenv list
		wantErr bool
	}{
		{"new file", "", map[string]string{"saved_entry": "ramclone", "next_entry": ""}, "saved_entry=ramclone\n", false},
		{"keeps others, clears next_entry", "# GRUB Environment Block\nnext_entry=ramclone\nclonecd_hostname=node08\nsaved_entry=1\n",
			map[string]string{"saved_entry": "ramclone", "next_entry": ""}, "clonecd_hostname=node08\nsaved_entry=ramclone\n", false},
		{"normal entry", "# GRUB Environment Block\nsaved_entry=ramclone\n", map[string]string{"saved_entry": "0", "next_entry": ""}, "saved_entry=0\n", false},
		{"too big", "", map[string]string{"x": strings.Repeat("y", 1100)}, "", true},
		{"newline in value", "", map[string]string{"x": "a\nb"}, "", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "grubenv")
			if tc.old != "" {
				testenv.Run(t, "grub-editenv", p, "create")
				for _, l := range strings.Split(strings.TrimSpace(tc.old), "\n")[1:] {
					testenv.Run(t, "grub-editenv", p, "set", l)
				}
			}
			err := SetGrubenv(p, tc.set)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, want error %v", err, tc.wantErr)
			}
			if err != nil {
				return
			}
			if st, err := os.Stat(p); err != nil || st.Size() != 1024 {
				t.Fatalf("grubenv is not a 1024-byte block: %v %v", st, err)
			}
			got := testenv.Run(t, "grub-editenv", p, "list")
			if sortLines(got) != sortLines(tc.want) {
				t.Errorf("grub-editenv list:\n%s\nwant\n%s", got, tc.want)
			}
		})
	}
}

func sortLines(s string) string {
	l := strings.Fields(s)
	for i := range l {
		for j := i + 1; j < len(l); j++ {
			if l[j] < l[i] {
				l[i], l[j] = l[j], l[i]
			}
		}
	}
	return strings.Join(l, "\n")
}

func TestWithUUID(t *testing.T) {
	const u = "0b1f6c2e-1c3a-4f59-9d34-2f4a7b0f3c11"
	tests := []struct {
		fs   string
		args []string
		want []string
	}{
		{"ext4", []string{"mke2fs", "-t", "ext4", "/dev/sda2"}, []string{"mke2fs", "-t", "ext4", "-U", u, "/dev/sda2"}},
		{"xfs", []string{"mkfs.xfs", "-f", "/dev/sda2"}, []string{"mkfs.xfs", "-f", "-m", "uuid=" + u, "/dev/sda2"}},
		{"vfat", []string{"mkfs.vfat", "/dev/sda1"}, []string{"mkfs.vfat", "/dev/sda1"}},
	}
	for _, tc := range tests {
		if got := withUUID(tc.args, tc.fs, u); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: %q, want %q", tc.fs, got, tc.want)
		}
	}
}

// cutFS serves a media directory but breaks node.cpio.gz's stream after
// `after` bytes, cancelling the run: a power cut in the middle of unpack.
type cutFS struct {
	fs.FS
	after  int64
	cancel func()
}

func (c cutFS) Open(name string) (fs.File, error) {
	f, err := c.FS.Open(name)
	if err != nil || name != "node.cpio.gz" {
		return f, err
	}
	return &cutFile{File: f, left: c.after, cancel: c.cancel}, nil
}

type cutFile struct {
	fs.File
	left   int64
	cancel func()
}

func (c *cutFile) Read(p []byte) (int, error) {
	if c.left <= 0 {
		c.cancel()
		return 0, context.Canceled
	}
	if int64(len(p)) > c.left {
		p = p[:c.left]
	}
	n, err := c.File.Read(p)
	c.left -= int64(n)
	return n, err
}

// TestNetCloneInterrupted clones a node from the CD, then reclones it in
// network mode and cuts the image stream in the middle of unpack: the disk
// must still boot the cloner (same root UUID, so the MBR's core.img finds
// /boot/grub; the cloner's grub.cfg, kernel and initrd; grubenv
// saved_entry=ramclone). A second network clone then completes and sets
// the normal entry as the default.
func TestNetCloneInterrupted(t *testing.T) {
	testenv.NeedRoot(t)
	testenv.NeedTools(t, "sfdisk", "mke2fs", "mkswap", "blkid", "losetup", "partx", "grub-editenv")
	golden := testenv.GoldenRoot(t)
	media := t.TempDir()
	makeMedia(t, golden, media)
	img := testenv.Sparse(t, "node.img", 3<<30)
	var log bytes.Buffer
	run := func(cfg Config) error {
		cfg.Target = img
		cfg.Log = &log
		cfg.Hostname = "node07"
		log.Reset()
		err := Run(context.Background(), cfg)
		t.Logf("clone log:\n%s", log.String())
		return err
	}
	if err := run(Config{Media: os.DirFS(media)}); err != nil {
		t.Fatalf("first clone (CD): %v", err)
	}
	var uuid, grubCfg, keys, machineID string
	func() {
		// The old system's /boot/grub gets a file of its own and loses the
		// image's unicode.pf2: where each one is shows whose files are on
		// the disk.
		loop := testenv.Loop(t, img, 512)
		testenv.Output("partx", "-a", loop)
		dir := t.TempDir()
		testenv.Run(t, "mount", loop+"p2", dir)
		defer testenv.Output("umount", dir)
		if err := os.Remove(filepath.Join(dir, "boot/grub/unicode.pf2")); err != nil {
			t.Fatalf("the image's boot/grub/unicode.pf2 is not on the first clone: %v", err)
		}
		if err := os.WriteFile(filepath.Join(dir, "boot/grub/old-marker"), []byte("old\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		uuid = strings.TrimSpace(testenv.Run(t, "blkid", "-p", "-s", "UUID", "-o", "value", loop+"p2"))
		keys, machineID = sshKeys(t, dir), readOr(dir, "etc/machine-id")
		b, err := os.ReadFile(filepath.Join(dir, "boot/grub/grub.cfg"))
		if err != nil {
			t.Fatal(err)
		}
		grubCfg = string(b)
	}()
	st, err := os.Stat(filepath.Join(media, "node.cpio.gz"))
	if err != nil {
		t.Fatal(err)
	}

	t.Run("cut before mkfs boots the cloner", func(t *testing.T) {
		// reclone's one-shot next_entry is spent once the cloner runs: a
		// cut after the partition step must not bring the old system back
		err := run(Config{Media: os.DirFS(media), Net: true, Break: "mkfs"})
		if !errors.Is(err, ErrBreak) {
			t.Fatalf("err = %v, want a stop before mkfs", err)
		}
		if !strings.Contains(log.String(), "every boot is the cloner until this clone succeeds") {
			t.Errorf("the log does not say the cloner was made the default")
		}
		n := openNode(t, img)
		if env := testenv.Run(t, "grub-editenv", filepath.Join(n.root, "boot/grub/grubenv"), "list"); !strings.Contains(env, "saved_entry=ramclone\n") || strings.Contains(env, "next_entry=") {
			t.Errorf("grubenv of the old system:\n%s\nwant saved_entry=ramclone and no next_entry", env)
		}
		if n.read("boot/grub/old-marker") != "old\n" {
			t.Errorf("the old system's /boot/grub changed")
		}
	})
	t.Run("cut during unpack boots the cloner", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		cfg := Config{Media: cutFS{FS: os.DirFS(media), after: st.Size() / 2, cancel: cancel}, Net: true, Target: img, Log: &log, Hostname: "node07"}
		log.Reset()
		err := Run(ctx, cfg)
		t.Logf("clone log:\n%s", log.String())
		var se *StepError
		if !errors.As(err, &se) || se.Step != "unpack" {
			t.Fatalf("err = %v, want a failure at unpack", err)
		}
		for _, want := range []string{"-U " + uuid, "written back", "unpack: 40%", "go to RAM"} {
			if !strings.Contains(log.String(), want) {
				t.Errorf("log lacks %q", want)
			}
		}
		n := openNode(t, img)
		if u := n.blkid(n.loop+"p2", "UUID"); u != uuid {
			t.Errorf("root UUID %s, was %s: the MBR's core.img cannot find /boot/grub", u, uuid)
		}
		if n.read("boot/grub/grub.cfg") != grubCfg {
			t.Errorf("grub.cfg is not the node's old one (with the ramclone entry)")
		}
		if n.read("boot/clonecd/vmlinuz") != "kernel" || n.read("boot/clonecd/initrd.img") != "initrd" {
			t.Errorf("the cloner's kernel/initrd are not on the disk")
		}
		if n.read("boot/grub/old-marker") != "old\n" {
			t.Errorf("the old /boot/grub was not restored")
		}
		if _, err := os.Stat(filepath.Join(n.root, "boot/grub/i386-pc/normal.mod")); err != nil {
			t.Errorf("GRUB modules not restored: %v", err)
		}
		if env := testenv.Run(t, "grub-editenv", filepath.Join(n.root, "boot/grub/grubenv"), "list"); !strings.Contains(env, "saved_entry=ramclone\n") || strings.Contains(env, "next_entry") {
			t.Errorf("grubenv:\n%s\nwant saved_entry=ramclone and no next_entry", env)
		}
		if _, err := os.Stat(filepath.Join(n.root, "boot/grub/unicode.pf2")); err == nil {
			t.Errorf("the image's boot/grub/unicode.pf2 was written before the unpack was complete")
		}
		// the node's identity waits on the new root for the next attempt
		if h := n.read(carryDir + "/hostname"); h != "node07\n" {
			t.Errorf("/%s/hostname = %q, want node07", carryDir, h)
		}
		if _, err := os.Stat(filepath.Join(n.root, carryDir, "ssh_host_ed25519_key")); err != nil {
			t.Errorf("the node's ssh host key is not kept on the new root: %v", err)
		}
	})
	if t.Failed() {
		return
	}
	t.Run("next network clone completes", func(t *testing.T) {
		if err := run(Config{Media: os.DirFS(media), Net: true}); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(log.String(), "saved_entry=0") {
			t.Errorf("log does not say the normal entry was made the default")
		}
		n := openNode(t, img)
		if u := n.blkid(n.loop+"p2", "UUID"); u != uuid {
			t.Errorf("root UUID %s, was %s", u, uuid)
		}
		grub := n.read("boot/grub/grub.cfg")
		if !strings.Contains(grub, "root=UUID="+uuid) || !strings.Contains(grub, "--id ramclone") {
			t.Errorf("grub.cfg does not boot root=UUID=%s or has no ramclone entry", uuid)
		}
		if env := testenv.Run(t, "grub-editenv", filepath.Join(n.root, "boot/grub/grubenv"), "list"); !strings.Contains(env, "saved_entry=0\n") {
			t.Errorf("grubenv:\n%s\nwant saved_entry=0", env)
		}
		if _, err := os.Stat(filepath.Join(n.root, "boot/grub/unicode.pf2")); err != nil {
			t.Errorf("the image's boot/grub files were not copied in: %v", err)
		}
		if h := n.read("etc/hostname"); h != "node07\n" {
			t.Errorf("hostname %q", h)
		}
		// recloned under the same name, through a cut: the node keeps its
		// ssh host keys and machine-id, and the carried copy is gone
		if k := sshKeys(t, n.root); k == "" || k != keys {
			t.Errorf("ssh host keys after the reclone:\n%s\nwant the node's own:\n%s", k, keys)
		}
		if id := n.read("etc/machine-id"); id != machineID || len(id) != 33 {
			t.Errorf("machine-id %q, want the node's own %q", id, machineID)
		}
		if _, err := os.Stat(filepath.Join(n.root, carryDir)); err == nil {
			t.Errorf("/%s left on the node", carryDir)
		}
		if !strings.Contains(log.String(), "kept from the node's previous system (node07, ") || !strings.Contains(log.String(), "a clone cut short") {
			t.Errorf("the log does not say the identity was kept from the cut clone")
		}
	})
}

// TestSaveBoot covers what the network cloner keeps of the old boot
// filesystem before it formats it: nothing (with a warning) when there is
// no filesystem or no GRUB on it; the cloner's kernel and initrd from the
// media when the node has none; a cloner-only grub.cfg when the old one
// has no ramclone entry.
func TestSaveBoot(t *testing.T) {
	testenv.NeedRoot(t)
	testenv.NeedTools(t, "sfdisk", "mke2fs", "losetup", "partx")
	img := testenv.Sparse(t, "disk.img", 3<<30)
	testenv.Run(t, "sh", "-c", "sfdisk -q "+img+" <<'E'\n"+testLayout+"E\n")
	loop := testenv.Loop(t, img, 512)
	testenv.Output("partx", "-a", loop)
	layout, err := partition.ParseLayout(strings.NewReader(testLayout))
	if err != nil {
		t.Fatal(err)
	}
	media := t.TempDir()
	os.MkdirAll(filepath.Join(media, "isolinux"), 0o755)
	os.WriteFile(filepath.Join(media, "isolinux/vmlinuz"), []byte("kernel"), 0o644)
	os.WriteFile(filepath.Join(media, "isolinux/initrd.img"), []byte("initrd"), 0o644)
	dev := loop + "p2"
	mnt := t.TempDir()
	old, err := partition.Dump(loop)
	if err != nil {
		t.Fatal(err)
	}
	grubOnly := func(t *testing.T) {
		testenv.Run(t, "mount", dev, mnt)
		defer testenv.Output("umount", mnt)
		os.RemoveAll(filepath.Join(mnt, "boot"))
		os.MkdirAll(filepath.Join(mnt, "boot/grub/i386-pc"), 0o755)
		os.WriteFile(filepath.Join(mnt, "boot/grub/grub.cfg"), []byte("menuentry 'Debian' {\n}\n"), 0o644)
		os.WriteFile(filepath.Join(mnt, "boot/grub/i386-pc/normal.mod"), []byte("mod"), 0o644)
	}
	tests := []struct {
		name    string
		prepare func(t *testing.T)
		media   fs.FS
		saved   bool
		log     string // in the log
		err     string // saveBoot's error ("": none)
	}{
		{"no filesystem", func(t *testing.T) {}, os.DirFS(media), false, "cannot read the old filesystem", ""},
		{"no GRUB", func(t *testing.T) { testenv.Run(t, "mke2fs", "-q", "-F", "-t", "ext4", dev) }, os.DirFS(media), false, "has no GRUB", ""},
		{"GRUB without ramclone", grubOnly, os.DirFS(media), true, "taken from the media", ""},
		// a server that answers 503 for the cloner's kernel: the step
		// fails (before the table is written) instead of going on with
		// no safety net
		{"media error", grubOnly, failFS{FS: os.DirFS(media), name: "isolinux/vmlinuz"}, false, "", "isolinux/vmlinuz: 503 Service Unavailable"},
		{"media without the cloner", grubOnly, failFS{FS: os.DirFS(media), name: "isolinux/vmlinuz", err: fs.ErrNotExist}, false, "no isolinux/vmlinuz on the media", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.prepare(t)
			var log bytes.Buffer
			r := &run{cfg: Config{Net: true, Server: "http://srv:8080"}, log: &log, disk: loop, fitted: layout, layout: layout,
				keep: map[int]bool{}, media: tc.media, oldTable: old, hostname: "s011"}
			err := r.saveBoot()
			defer r.dropSaved()
			t.Logf("log:\n%s", log.String())
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("saveBoot = %v, want an error with %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if (r.safe != nil) != tc.saved || !strings.Contains(log.String(), tc.log) {
				t.Fatalf("saved %v, want %v; log lacks %q?", r.safe != nil, tc.saved, tc.log)
			}
			if r.safe == nil {
				return
			}
			if u := strings.TrimSpace(testenv.Run(t, "blkid", "-p", "-s", "UUID", "-o", "value", dev)); r.safe.uuid != u {
				t.Errorf("saved UUID %s, the filesystem's %s", r.safe.uuid, u)
			}
			for rel, want := range map[string]string{"clonecd/vmlinuz": "kernel", "clonecd/initrd.img": "initrd", "grub/i386-pc/normal.mod": "mod"} {
				if b, err := os.ReadFile(filepath.Join(r.safe.dir, rel)); err != nil || string(b) != want {
					t.Errorf("%s = %q, %v; want %q", rel, b, err, want)
				}
			}
			cfg, _ := os.ReadFile(filepath.Join(r.safe.dir, "grub/grub.cfg"))
			// the node keeps its name through the reclone: the cloner-only
			// entry passes it
			for _, want := range []string{"set default=ramclone", "--fs-uuid --set=root " + r.safe.uuid, "linux /boot/clonecd/vmlinuz clonecd.mode=net clonecd.server=http://srv:8080 clonecd.hostname=s011 "} {
				if !strings.Contains(string(cfg), want) {
					t.Errorf("grub.cfg lacks %q:\n%s", want, cfg)
				}
			}
		})
	}
}

// failFS fails opening one file of a media with err (a server's 503 after
// its retries when nil).
type failFS struct {
	fs.FS
	name string
	err  error
}

func (f failFS) Open(name string) (fs.File, error) {
	if name == f.name {
		err := f.err
		if err == nil {
			err = errors.New("GET http://srv:8080/" + name + ": 503 Service Unavailable (gave up after 10 attempts)")
		}
		return nil, &fs.PathError{Op: "open", Path: name, Err: err}
	}
	return f.FS.Open(name)
}

// TestESPUnchanged: the network cloner leaves the ESP unformatted when
// its table entry is what it was (its BOOTX64.EFI then finds the cloner's
// /boot/grub by the kept root UUID), and formats it (writing the saved
// EFI/ back at once) when it moved or changed size. The whole path runs
// in e2e's UEFI power-cut chains: this machine's kernel may have no vfat.
func TestESPUnchanged(t *testing.T) {
	esp := partition.Part{Number: 2, Start: 4096, Size: 204800, FS: "vfat", Mount: "/boot/efi"}
	for _, tc := range []struct {
		name      string
		safe      *saved
		keepTable bool
		p         partition.Part
		want      bool
	}{
		{"CD mode (no safety net)", nil, true, esp, false},
		{"ESP not saved", &saved{}, true, esp, false},
		{"table kept", &saved{esp: 2}, true, esp, true},
		{"table written, same entry", &saved{esp: 2, espStart: 4096, espSize: 204800}, false, esp, true},
		{"table written, ESP smaller", &saved{esp: 2, espStart: 4096, espSize: 206848}, false, esp, false},
		{"table written, ESP moved", &saved{esp: 2, espStart: 2048, espSize: 204800}, false, esp, false},
		{"another partition", &saved{esp: 2}, true, partition.Part{Number: 3, FS: "ext4"}, false},
	} {
		r := &run{safe: tc.safe, keepTable: tc.keepTable}
		if got := r.espUnchanged(tc.p); got != tc.want {
			t.Errorf("%s: espUnchanged = %v, want %v", tc.name, got, tc.want)
		}
	}
}
