package partition

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/clonecd/clonecd/internal/testenv"
)

// The disks of these tests: a 64 MiB sparse image on a loop device
// (testenv.Loop, detached at cleanup) with a gpt table of three
// partitions: p1 8 MiB, p2 8 MiB, p3 the rest. The table regions (the
// first MiB: MBR, gpt header and entries; the last MiB: the backup) lie
// outside every partition, so a mounted filesystem never writes there and
// their hash shows whether Apply wrote.
const inUseLayout = "label: gpt\nsize=8M\nsize=8M\n,\n"

// otherLayout is what the tests try to write over it.
const otherLayout = "label: dos\nsize=16M\n,\n"

func loopDisk(t *testing.T) string {
	t.Helper()
	testenv.NeedRoot(t)
	dev := testenv.Loop(t, testenv.Sparse(t, "disk.img", 64<<20), 512)
	l, err := ParseLayout(strings.NewReader(inUseLayout))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Apply(l, dev, ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	return dev
}

// tableHash hashes the first and the last MiB of dev.
func tableHash(t *testing.T, dev string) string {
	t.Helper()
	f, err := os.Open(dev)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	for _, off := range []int64{0, 63 << 20} {
		b := make([]byte, 1<<20)
		if _, err := f.ReadAt(b, off); err != nil {
			t.Fatal(err)
		}
		h.Write(b)
	}
	return fmt.Sprintf("%x", h.Sum(nil))
}

func mountAt(t *testing.T, dev string) string {
	t.Helper()
	testenv.NeedTools(t, "mkfs.ext4", "mount", "umount")
	testenv.Run(t, "mkfs.ext4", "-q", "-F", dev)
	dir := filepath.Join(t.TempDir(), "mnt")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	testenv.Run(t, "mount", "-t", "ext4", dev, dir)
	t.Cleanup(func() { testenv.Output("umount", dir) })
	return dir
}

func swapOn(t *testing.T, dev string) {
	t.Helper()
	testenv.NeedTools(t, "mkswap", "swapon", "swapoff")
	testenv.Run(t, "mkswap", "-q", dev)
	testenv.Run(t, "swapon", dev)
	t.Cleanup(func() { testenv.Output("swapoff", dev) })
}

// dmOver makes a device-mapper linear device over dev; it skips when the
// kernel has no device-mapper (dmsetup cannot reach it).
func dmOver(t *testing.T, dev string) string {
	t.Helper()
	testenv.NeedTools(t, "dmsetup")
	if out, err := testenv.Output("dmsetup", "version"); err != nil || !strings.Contains(out, "Driver version") {
		t.Skipf("this kernel has no device-mapper (dmsetup version: %s)", strings.TrimSpace(out))
	}
	name := fmt.Sprintf("clonecd-test-%d", os.Getpid())
	size := strings.TrimSpace(testenv.Run(t, "blockdev", "--getsz", dev))
	testenv.Run(t, "dmsetup", "create", name, "--table", "0 "+size+" linear "+dev+" 0")
	t.Cleanup(func() { testenv.Output("dmsetup", "remove", name) })
	return name
}

// TestApplyRefusesDiskInUse: a disk with a mounted partition, active swap,
// a device-mapper device on a partition, a filesystem on the whole disk,
// or an image file whose loop device has a mounted partition is refused
// before anything is written, with an error naming the disk, the
// partition and what uses it and saying --force; the dry run warns
// instead; Force writes.
func TestApplyRefusesDiskInUse(t *testing.T) {
	testenv.NeedRoot(t)
	tests := []struct {
		name  string
		setup func(t *testing.T, dev string) (target, part, what string)
	}{
		{"mounted partition", func(t *testing.T, dev string) (string, string, string) {
			dir := mountAt(t, dev+"p3")
			return dev, dev + "p3", "mounted at " + dir
		}},
		{"active swap", func(t *testing.T, dev string) (string, string, string) {
			swapOn(t, dev+"p2")
			return dev, dev + "p2", "active swap"
		}},
		{"device-mapper holder", func(t *testing.T, dev string) (string, string, string) {
			name := dmOver(t, dev+"p1")
			return dev, dev + "p1", "(device-mapper " + name + ")"
		}},
		{"filesystem on the whole disk", func(t *testing.T, dev string) (string, string, string) {
			testenv.Run(t, "partx", "-d", dev)
			dir := mountAt(t, dev)
			return dev, dev, "mounted at " + dir
		}},
		{"image file of a loop device in use", func(t *testing.T, dev string) (string, string, string) {
			dir := mountAt(t, dev+"p3")
			img := strings.TrimSpace(testenv.Run(t, "losetup", "--noheadings", "--output", "BACK-FILE", dev))
			return img, dev + "p3", "mounted at " + dir + " (" + img + " is attached to " + dev + ")"
		}},
	}
	other, err := ParseLayout(strings.NewReader(otherLayout))
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dev := loopDisk(t)
			target, part, what := tt.setup(t, dev)
			before := tableHash(t, dev)
			_, err := Apply(other, target, ApplyOptions{})
			var iu *InUseError
			if !errors.As(err, &iu) {
				t.Fatalf("Apply(%s) = %v; want an *InUseError", target, err)
			}
			for _, s := range []string{target + " is in use", part + " is ", what, "--force", "nothing was written"} {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("Apply(%s) = %q; want it to say %q", target, err, s)
				}
			}
			if after := tableHash(t, dev); after != before {
				t.Errorf("Apply(%s) refused but the table regions changed", target)
			}

			// The dry run warns with the same error and writes nothing.
			var warned error
			w, err := Apply(other, target, ApplyOptions{DryRun: true, Warn: func(e error) { warned = e }})
			if err != nil || w == nil || !errors.As(warned, &iu) || !strings.Contains(warned.Error(), what) {
				t.Errorf("dry run: Apply = %v, warned %v; want a table and an *InUseError warning", err, warned)
			}
			if after := tableHash(t, dev); after != before {
				t.Errorf("dry run changed the table regions of %s", dev)
			}
		})
	}
}

// TestApplyForce: Force writes the table of a disk in use; the kernel
// keeps the old partitions that are busy and the error says so.
func TestApplyForce(t *testing.T) {
	dev := loopDisk(t)
	mountAt(t, dev+"p3")
	other, _ := ParseLayout(strings.NewReader(otherLayout))
	var warned error
	_, err := Apply(other, dev, ApplyOptions{Force: true, Warn: func(e error) { warned = e }})
	if err != nil && !strings.Contains(err.Error(), "the kernel still uses the old one") {
		t.Fatalf("Apply with Force = %v", err)
	}
	var iu *InUseError
	if !errors.As(warned, &iu) {
		t.Errorf("Apply with Force warned %v; want the *InUseError", warned)
	}
	if l, err := Dump(dev); err != nil || l.Label != "dos" {
		t.Errorf("after Apply with Force: Dump = %v, %v; want the new dos table", l, err)
	}
}

// TestInUseFree: a disk nobody uses, and an image file on no loop device,
// are not in use.
func TestInUseFree(t *testing.T) {
	for _, dev := range []string{loopDisk(t), testenv.Sparse(t, "free.img", 1<<20)} {
		if uses, err := InUse(dev); err != nil || len(uses) != 0 {
			t.Errorf("InUse(%s) = %v, %v; want nothing", dev, uses, err)
		}
	}
}

// TestHolders reads a sysfs tree as the kernel lays out holders (this
// kernel may have no device-mapper or md to make real ones).
func TestHolders(t *testing.T) {
	sys := t.TempDir()
	for _, p := range []string{"holders/dm-3/dm", "holders/md0"} {
		if err := os.MkdirAll(filepath.Join(sys, p), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	os.WriteFile(filepath.Join(sys, "holders/dm-3/dm/name"), []byte("vg-root\n"), 0o644)
	got := holders(blockDev{node: "/dev/sdz1", sysfs: sys})
	want := []Use{{"/dev/sdz1", "held by dm-3 (device-mapper vg-root)"}, {"/dev/sdz1", "held by md0 (md RAID)"}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("holders = %v; want %v", got, want)
	}
}

func TestUnescape(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{`/mnt/a\040b`, "/mnt/a b"}, {`/x\011y\012z\134`, "/x\ty\nz\\"}, {`/plain`, "/plain"}, {`/bad\09`, `/bad\09`},
	} {
		if got := unescape(tt.in); got != tt.want {
			t.Errorf("unescape(%q) = %q; want %q", tt.in, got, tt.want)
		}
	}
}
