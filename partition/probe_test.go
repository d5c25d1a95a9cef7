package partition

import (
	"bufio"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/clonecd/clonecd/internal/testenv"
)

// blkid returns what blkid's low-level probe says about a file.
func blkid(t *testing.T, path string) map[string]string {
	t.Helper()
	out := testenv.Run(t, "blkid", "-p", "-o", "export", path)
	m := map[string]string{}
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), "="); ok {
			m[k] = v
		}
	}
	return m
}

// TestProbeFS compares ProbeFS with blkid for every filesystem mkfs makes.
func TestProbeFS(t *testing.T) {
	tests := []struct {
		typ  string
		mb   int64
		mkfs []string
	}{
		{"ext2", 16, []string{"mkfs.ext2", "-q", "-F", "-L", "lab2"}},
		{"ext3", 16, []string{"mkfs.ext3", "-q", "-F", "-L", "lab3"}},
		{"ext4", 16, []string{"mkfs.ext4", "-q", "-F", "-L", "root"}},
		{"ext4", 16, []string{"mkfs.ext4", "-q", "-F", "-O", "^metadata_csum,^64bit"}},
		{"xfs", 320, []string{"mkfs.xfs", "-q", "-f", "-L", "scratch"}},
		{"vfat", 64, []string{"mkfs.vfat", "-F", "32", "-n", "EFI"}},
		{"vfat", 16, []string{"mkfs.vfat", "-F", "16", "-n", "BOOT"}},
		{"vfat", 4, []string{"mkfs.vfat", "-F", "12"}},
		{"swap", 16, []string{"mkswap", "-L", "swp"}},
	}
	for _, tt := range tests {
		t.Run(tt.typ+"-"+strings.Join(tt.mkfs[1:], ""), func(t *testing.T) {
			testenv.NeedTools(t, tt.mkfs[0], "blkid")
			img := testenv.Sparse(t, "fs.img", tt.mb<<20)
			testenv.Run(t, tt.mkfs[0], append(tt.mkfs[1:], img)...)
			got, err := ProbeFS(img)
			if err != nil {
				t.Fatal(err)
			}
			want := blkid(t, img)
			if got.Type != tt.typ || got.Type != want["TYPE"] || got.UUID != want["UUID"] || got.Label != want["LABEL"] {
				t.Errorf("ProbeFS = %+v, blkid = %v", got, want)
			}
		})
	}
	empty := testenv.Sparse(t, "empty.img", 1<<20)
	if _, err := ProbeFS(empty); !errors.Is(err, ErrNoFS) {
		t.Errorf("blank: %v", err)
	}
}

// TestCapture: a golden node's disk gives a layout with filesystems and
// mount points from its fstab (UUID=, LABEL=, PARTUUID=, device), /data
// preserved; real sfdisk accepts the captured file.
func TestCapture(t *testing.T) {
	testenv.NeedRoot(t)
	testenv.NeedTools(t, "mkfs.ext4", "mkfs.vfat", "mkswap", "sfdisk")
	dev := testenv.Loop(t, testenv.Sparse(t, "golden.img", 256<<20), 512)
	l, err := ParseLayout(strings.NewReader("label: gpt\nsize=16MiB,type=U\nsize=96MiB\nsize=16MiB,type=S\n,\n"))
	if err != nil {
		t.Fatal(err)
	}
	w, err := Apply(l, dev, ApplyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	testenv.Run(t, "mkfs.vfat", "-n", "ESP", PartDevice(dev, 1))
	testenv.Run(t, "mkfs.ext4", "-q", "-F", "-L", "root", PartDevice(dev, 2))
	testenv.Run(t, "mkswap", PartDevice(dev, 3))
	testenv.Run(t, "mkfs.ext4", "-q", "-F", "-L", "data", PartDevice(dev, 4))
	rootFS, err := ProbeFS(PartDevice(dev, 2))
	if err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "etc"), 0o755)
	fstab := "# <file system> <mount point> <type> <options> <dump> <pass>\n" +
		"UUID=" + rootFS.UUID + " / ext4 errors=remount-ro 0 1\n" +
		"PARTUUID=" + strings.ToLower(w.Part(1).UUID) + " /boot/efi vfat umask=0077 0 1\n" +
		PartDevice(dev, 3) + " none swap sw 0 0\n" +
		"LABEL=data /data ext4 defaults 0 2\n" +
		"proc /proc proc defaults 0 0\n"
	os.WriteFile(filepath.Join(root, "etc", "fstab"), []byte(fstab), 0o644)
	c, err := Capture(dev, root)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		n                int
		fs, mount, label string
		preserve         bool
	}{
		{1, "vfat", "/boot/efi", "ESP", false},
		{2, "ext4", "/", "root", false},
		{3, "swap", "", "", false},
		{4, "ext4", "/data", "data", true},
	}
	for _, tt := range tests {
		p := c.Part(tt.n)
		if p.FS != tt.fs || p.Mount != tt.mount || p.FSLabel != tt.label || p.Preserve != tt.preserve {
			t.Errorf("captured partition %d: fs=%q mount=%q label=%q preserve=%v, want %+v", tt.n, p.FS, p.Mount, p.FSLabel, p.Preserve, tt)
		}
	}
	text := c.String()
	dump := sfdiskDump(t, dev)
	for _, line := range strings.Split(dump, "\n") {
		if strings.HasPrefix(line, "last-lba:") || strings.HasPrefix(line, PartDevice(dev, 4)+" ") {
			continue // the last partition takes the rest of any disk
		}
		if !strings.Contains(text, line+"\n") {
			t.Errorf("captured layout lacks dump line %q", line)
		}
	}
	if !strings.Contains(text, PartDevice(dev, 4)+" : start=      264192, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4, uuid=") ||
		!strings.Contains(text, "# clonecd: part=4 fs=ext4 mount=/data label=data\n") {
		t.Errorf("captured layout:\n%s", text)
	}
	// The captured file parses back to the same and sfdisk takes it as is.
	back, err := ParseLayout(strings.NewReader(text))
	if err != nil || back.String() != text {
		t.Fatalf("captured layout does not round-trip: %v\n%s", err, back)
	}
	// On a bigger disk /data takes the rest, with sfdisk as with clonecd.
	img := testenv.Sparse(t, "other.img", 512<<20)
	sfdiskScript(t, img, text)
	d, err := Dump(img)
	if err != nil || len(d.Parts) != 4 || d.Part(4).Start != w.Part(4).Start || d.Part(4).Size != 1048576-34-264192-2014 {
		t.Errorf("sfdisk from the captured layout: %v %v", d, err)
	}
	img2 := testenv.Sparse(t, "other2.img", 512<<20)
	if _, err := Apply(back, img2, ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	if x, y := sfdiskDump(t, img), strings.ReplaceAll(sfdiskDump(t, img2), img2, img); x != y {
		t.Errorf("captured layout on a bigger disk: sfdisk\n%s\nclonecd\n%s", x, y)
	}
}

// TestCaptureRefusesNoMounts: without the node's fstab, or with one that
// names no partition of the disk (another disk, or the wrong root),
// Capture fails instead of writing a layout without mount points
// (usability L24, L25).
func TestCaptureRefusesNoMounts(t *testing.T) {
	testenv.NeedRoot(t)
	testenv.NeedTools(t, "mkfs.ext4")
	dev := testenv.Loop(t, testenv.Sparse(t, "golden.img", 64<<20), 512)
	l, _ := ParseLayout(strings.NewReader("label: gpt\nsize=16MiB\n,\n"))
	if _, err := Apply(l, dev, ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	testenv.Run(t, "mkfs.ext4", "-q", "-F", PartDevice(dev, 2))
	fsinfo, err := ProbeFS(PartDevice(dev, 2))
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name, fstab string // "": no etc/fstab at all
		want        string
	}{
		{"no fstab", "", "no fstab"},
		{"another disk at /", "UUID=0badc0de-0000-4000-8000-000000000000 / ext4 defaults 0 1\n", "names no partition of " + dev + " (it mounts UUID=0badc0de"},
		{"nothing of the disk", "proc /proc proc defaults 0 0\n", "it mounts nothing at /"},
		{"this disk at /", "UUID=" + fsinfo.UUID + " / ext4 defaults 0 1\n", ""},
	} {
		root := t.TempDir()
		if tt.fstab != "" {
			os.MkdirAll(filepath.Join(root, "etc"), 0o755)
			os.WriteFile(filepath.Join(root, "etc", "fstab"), []byte(tt.fstab), 0o644)
		}
		c, err := Capture(dev, root)
		switch {
		case tt.want == "" && (err != nil || c.Part(2).Mount != "/" || c.Part(1).Mount != ""):
			t.Errorf("%s: Capture = %v, %v; want partition 2 at /", tt.name, c, err)
		case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), root)):
			t.Errorf("%s: Capture = %v; want an error saying %q and naming %s", tt.name, err, tt.want, root)
		}
	}
}
