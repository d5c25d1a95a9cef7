package partition

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/clonecd/clonecd/internal/testenv"
)

const checkLayout = `label: dos
label-id: 0x0c0ffee0
size=64MiB, type=83, bootable
size=32MiB, type=82
type=83
# clonecd: part=1 fs=ext4 mount=/
# clonecd: part=2 fs=swap
# clonecd: part=3 fs=ext4 mount=/data label=data
`

func flush(t *testing.T, devs ...string) {
	t.Helper()
	for _, d := range devs {
		testenv.Run(t, "blockdev", "--flushbufs", d)
	}
}

// writeAtDev writes b at byte offset off of dev and syncs.
func writeAtDev(t *testing.T, dev string, off int64, b []byte) {
	t.Helper()
	f, err := os.OpenFile(dev, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	f.Close()
}

func readAtDev(t *testing.T, dev string, off int64, n int) []byte {
	t.Helper()
	f, err := os.Open(dev)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, n)
	if _, err := f.ReadAt(b, off); err != nil {
		t.Fatal(err)
	}
	return b
}

// TestCheckDecision: a loop disk laid out and formatted per the layout with
// a file on /data is preserved; a changed size, a wrong type, a missing
// partition, a corrupted superblock and fsck errors each give
// "repartition" with the right reason.
func TestCheckDecision(t *testing.T) {
	testenv.NeedRoot(t)
	testenv.NeedTools(t, "sfdisk", "mkfs.ext4", "mkswap", "debugfs", "e2fsck", "blockdev")
	l, err := ParseLayout(strings.NewReader(checkLayout))
	if err != nil {
		t.Fatal(err)
	}
	dev := testenv.Loop(t, testenv.Sparse(t, "disk.img", 256<<20), 512)
	if d, err := Check(l, dev); err != nil || d.Preserve || !strings.Contains(d.Reason, "no partition table") {
		t.Fatalf("blank disk: %+v %v", d, err)
	}
	if _, err := Apply(l, dev, ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	p1, p2, p3 := PartDevice(dev, 1), PartDevice(dev, 2), PartDevice(dev, 3)
	testenv.Run(t, "mkfs.ext4", "-q", "-F", p1)
	testenv.Run(t, "mkswap", p2)
	testenv.Run(t, "mkfs.ext4", "-q", "-F", "-L", "data", p3)
	keep := filepath.Join(t.TempDir(), "keep.txt")
	os.WriteFile(keep, []byte("precious results\n"), 0o644)
	testenv.Run(t, "debugfs", "-w", "-R", "write "+keep+" keep.txt", p3)
	flush(t, dev, p3)

	expect := func(name string, lay *Layout, preserve bool, reason string) {
		t.Helper()
		d, err := Check(lay, dev)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if d.Preserve != preserve || !strings.Contains(d.String(), reason) {
			t.Errorf("%s: decision %q, want preserve=%v and %q", name, d.String(), preserve, reason)
		}
		if preserve && (len(d.Keep) != 1 || d.Keep[0] != 3) {
			t.Errorf("%s: keep %v, want [3]", name, d.Keep)
		}
	}
	expect("intact", l, true, "preserve /data")

	t.Run("changed size", func(t *testing.T) {
		l2, err := ParseLayout(strings.NewReader(strings.Replace(checkLayout, "type=83\n#", "size=100MiB, type=83\n#", 1)))
		if err != nil {
			t.Fatal(err)
		}
		expect("changed size", l2, false, "repartition: partition 3 (/data) has 325632 sectors, the layout wants 204800")
	})
	t.Run("wrong type", func(t *testing.T) {
		testenv.Output("sfdisk", "--no-reread", "--part-type", dev, "3", "8e")
		expect("wrong type", l, false, "repartition: partition 3 (/data) has type 8e, the layout wants 83")
		testenv.Output("sfdisk", "--no-reread", "--part-type", dev, "3", "83")
		expect("type restored", l, true, "preserve /data")
	})
	t.Run("missing partition", func(t *testing.T) {
		testenv.Output("sfdisk", "--no-reread", "--delete", dev, "2")
		expect("missing partition", l, false, "repartition: partition 2 is missing on the disk")
		if _, err := Apply(l, dev, ApplyOptions{}); err != nil {
			t.Fatal(err)
		}
		flush(t, dev, p3)
		expect("partition restored", l, true, "preserve /data")
	})
	t.Run("wrong label", func(t *testing.T) {
		l2, _ := ParseLayout(strings.NewReader("label: gpt\nsize=64MiB\nsize=32MiB\n,\n# clonecd: part=3 mount=/data fs=ext4\n"))
		expect("wrong label", l2, false, "repartition: the disk has a dos partition table, the layout is gpt")
	})
	t.Run("corrupted superblock", func(t *testing.T) {
		off := int64(l.clonePart(t, dev, 3).Start)*512 + 1024
		saved := readAtDev(t, dev, off, 1024)
		writeAtDev(t, dev, off, make([]byte, 1024))
		flush(t, dev, p3)
		expect("corrupted superblock", l, false, "repartition: partition 3 (/data): no ext4 filesystem")
		writeAtDev(t, dev, off, saved)
		flush(t, dev, p3)
		expect("superblock restored", l, true, "preserve /data")
	})
	t.Run("wrong filesystem", func(t *testing.T) {
		l2, _ := ParseLayout(strings.NewReader(strings.Replace(checkLayout, "part=3 fs=ext4", "part=3 fs=xfs", 1)))
		expect("wrong fs", l2, false, "repartition: partition 3 (/data) holds ext4, the layout wants xfs")
	})
	t.Run("fsck errors", func(t *testing.T) {
		testenv.Run(t, "debugfs", "-w", "-R", "sif keep.txt links_count 7", p3)
		flush(t, dev, p3)
		expect("fsck errors", l, false, "repartition: partition 3 (/data): e2fsck -n -f found errors (exit 4)")
	})
	t.Run("nothing preserved", func(t *testing.T) {
		l2, _ := ParseLayout(strings.NewReader(strings.Replace(checkLayout, "mount=/data", "mount=/data preserve=no", 1)))
		expect("nothing preserved", l2, false, "repartition: the layout preserves no partition")
	})
}

// clonePart returns partition n of the layout fitted to dev.
func (l *Layout) clonePart(t *testing.T, dev string, n int) *Part {
	t.Helper()
	d, err := openDisk(dev, os.O_RDONLY)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	f, err := l.Fit(d.sectors(), d.ss)
	if err != nil {
		t.Fatal(err)
	}
	return f.Part(n)
}

// TestCheckVfatImage checks a vfat /data on an image file (fsck.vfat
// through a read-only loop device) and a damaged FAT.
func TestCheckVfatImage(t *testing.T) {
	testenv.NeedRoot(t)
	testenv.NeedTools(t, "mkfs.vfat", "fsck.vfat", "losetup")
	img := testenv.Sparse(t, "v.img", 96<<20)
	l, err := ParseLayout(strings.NewReader("label: gpt\nsize=16MiB\ntype=U\n# clonecd: part=2 fs=vfat mount=/data\n"))
	if err != nil {
		t.Fatal(err)
	}
	w, err := Apply(l, img, ApplyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	p := w.Part(2)
	testenv.Run(t, "mkfs.vfat", "-F", "16", "--offset", strconv.FormatUint(p.Start, 10), img, strconv.FormatUint(p.Size/2, 10))
	d, err := Check(l, img)
	if err != nil || !d.Preserve {
		t.Fatalf("vfat intact: %+v %v", d, err)
	}
	// Make the two FATs differ.
	off := int64(p.Start)*512 + 512*int64(readAtDev(t, img, int64(p.Start)*512+14, 1)[0]) + 4
	writeAtDev(t, img, off, []byte{0x77, 0x77})
	d, err = Check(l, img)
	if err != nil || d.Preserve || !strings.Contains(d.Reason, "fsck.vfat -n found errors") {
		t.Fatalf("vfat damaged: %+v %v", d, err)
	}
}
