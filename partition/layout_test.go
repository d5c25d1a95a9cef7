package partition

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/clonecd/clonecd/internal/testenv"
)

const nodeLayout = `label: dos
label-id: 0x4d454455
unit: sectors
sector-size: 512

/dev/sda1 : start=        2048, size=     2097152, type=83, bootable
/dev/sda2 : start=     2099200, size=     1048576, type=82
/dev/sda3 : start=     3147776, type=83
# clonecd: part=1 fs=ext4 mount=/ label=root mkfs="-O ^metadata_csum -E lazy_itable_init=0"
# clonecd: part=2 fs=swap
# clonecd: part=3 fs=ext4 mount=/data label=data
`

func TestParseLayoutMetadata(t *testing.T) {
	l, err := ParseLayout(strings.NewReader(nodeLayout))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		n                      int
		fs, mount, label, mkfs string
		preserve, boot         bool
		start, size            uint64
	}{
		{1, "ext4", "/", "root", "-O ^metadata_csum -E lazy_itable_init=0", false, true, 2048, 2097152},
		{2, "swap", "", "", "", false, false, 2099200, 1048576},
		{3, "ext4", "/data", "data", "", true, false, 3147776, 0},
	}
	for _, tt := range tests {
		p := l.Part(tt.n)
		if p == nil {
			t.Fatalf("no partition %d", tt.n)
		}
		if p.FS != tt.fs || p.Mount != tt.mount || p.FSLabel != tt.label || p.Mkfs != tt.mkfs || p.Preserve != tt.preserve ||
			p.Bootable != tt.boot || p.Start != tt.start || p.Size != tt.size {
			t.Errorf("partition %d = %+v, want %+v", tt.n, *p, tt)
		}
	}
	// WriteTo gives back the same file, and parsing that gives the same layout.
	if got := l.String(); got != nodeLayout {
		t.Errorf("round trip differs:\n%s\nwant:\n%s", got, nodeLayout)
	}
}

func TestPreserveDefaults(t *testing.T) {
	tests := []struct {
		meta string
		want bool
	}{
		{"# clonecd: part=2 mount=/data", true},
		{"# clonecd: part=2 mount=/data preserve=no", false},
		{"# clonecd: part=2 mount=/scratch preserve=yes", true},
		{"# clonecd: part=2 mount=/scratch", false},
	}
	for _, tt := range tests {
		l, err := ParseLayout(strings.NewReader("label: dos\n,1G\n,\n" + tt.meta + "\n"))
		if err != nil {
			t.Fatalf("%s: %v", tt.meta, err)
		}
		if got := l.Part(2).Preserve; got != tt.want {
			t.Errorf("%s: preserve = %v, want %v", tt.meta, got, tt.want)
		}
		l2, err := ParseLayout(strings.NewReader(l.String()))
		if err != nil || l2.Part(2).Preserve != tt.want {
			t.Errorf("%s: not kept through WriteTo: %v\n%s", tt.meta, err, l.String())
		}
	}
}

// TestBadLayouts: bad layout files give an error naming the line.
func TestBadLayouts(t *testing.T) {
	tests := []struct {
		name, text string
		line       int
		msg        string
	}{
		{"unknown header", "label: dos\nfoo: bar\n", 2, "unknown header"},
		{"unknown field", "label: dos\nstart=2048, colour=red\n", 2, "unknown field"},
		{"unknown clonecd key", "label: dos\nsize=1G\n# clonecd: part=1 fs=ext4 colour=red\n", 3, "unknown key"},
		{"clonecd no part", "label: dos\nsize=1G\n# clonecd: fs=ext4\n", 3, "part=N"},
		{"clonecd bad part", "label: dos\nsize=1G\n# clonecd: part=7 fs=ext4\n", 3, "no such partition"},
		{"clonecd bad fs", "label: dos\nsize=1G\n# clonecd: part=1 fs=ntfs\n", 3, "not supported"},
		{"clonecd bad bool", "label: dos\nsize=1G\n# clonecd: part=1 grow=maybe\n", 3, "yes or no"},
		{"clonecd bad quote", "label: dos\nsize=1G\n# clonecd: part=1 mkfs=\"-O x\n", 3, "unterminated"},
		{"overlap", "label: dos\nstart=2048, size=4096\nstart=4096, size=100\n", 3, "overlaps partition 1"},
		{"malformed size", "label: dos\nsize=12Q\n", 2, "malformed number"},
		{"malformed start", "label: dos\nstart=abc\n", 2, "malformed number"},
		{"malformed first-lba", "label: gpt\nfirst-lba: 3x4\n", 2, "malformed number"},
		{"bad sector size", "label: dos\nsector-size: 1000\n", 2, "multiple of 512"},
		{"five primaries", "label: dos\nsize=1M\nsize=1M\nsize=1M\nsize=1M\nsize=1M\n", 6, "4 primaries"},
		{"duplicate number", "label: gpt\n1: size=1M\n1: size=2M\n", 3, "already defined on line 2"},
		{"bad uuid", "label: gpt\nuuid=1234\n", 2, "malformed uuid"},
		{"bad type", "label: dos\ntype=zz\n", 2, "not a dos type"},
		{"gpt type on dos", "label: dos\ntype=0FC63DAF-8483-4772-8E79-3D69D8477DE4\n", 2, "not a dos type"},
		{"bad attrs", "label: gpt\nattrs=\"Sparkly\"\n", 2, "unknown gpt attribute"},
		{"logical without extended", "label: dos\n5: size=1M\n", 2, "without an extended"},
		{"unknown label", "label: sun\n", 1, "not supported"},
		{"unterminated name", "label: gpt\nname=\"abc\n", 2, "malformed value"},
		{"logical outside extended", "label: dos\nstart=2048,size=10000,type=5\n5: start=20000,size=100\n", 3, "outside the extended"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseLayout(strings.NewReader(tt.text))
			if err == nil {
				t.Fatalf("no error for\n%s", tt.text)
			}
			var le *LineError
			if !errors.As(err, &le) || le.Line != tt.line {
				t.Errorf("error %q does not name line %d", err, tt.line)
			}
			if !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("error %q does not say %q", err, tt.msg)
			}
		})
	}
	// A file's name is in the error too.
	p := filepath.Join(t.TempDir(), "node.sfdisk")
	os.WriteFile(p, []byte("label: dos\nbogus: 1\n"), 0o644)
	if _, err := ReadLayoutFile(p); err == nil || !strings.Contains(err.Error(), p+": line 2") {
		t.Errorf("ReadLayoutFile error %v does not name file and line", err)
	}
}

func TestParseSize(t *testing.T) {
	tests := []struct {
		in    string
		want  uint64
		bytes bool
		bad   bool
	}{
		{"2048", 2048, false, false},
		{"1K", 1024, true, false},
		{"1KiB", 1024, true, false},
		{"1KB", 1000, true, false},
		{"100M", 100 << 20, true, false},
		{"1.5G", 3 << 29, true, false},
		{"2g", 2 << 30, true, false},
		{"1T", 1 << 40, true, false},
		{"", 0, false, true},
		{"1.5", 0, false, true},
		{"12X", 0, false, true},
		{"M", 0, false, true},
		{"99999999999999999999", 0, false, true},
		{"9999999999E", 0, false, true},
	}
	for _, tt := range tests {
		v, b, err := parseSize(tt.in)
		if (err != nil) != tt.bad || v != tt.want || b != tt.bytes {
			t.Errorf("parseSize(%q) = %d, %v, %v; want %d, %v, bad=%v", tt.in, v, b, err, tt.want, tt.bytes, tt.bad)
		}
	}
}

func TestPartDevice(t *testing.T) {
	tests := []struct {
		disk string
		n    int
		want string
	}{
		{"/dev/sda", 1, "/dev/sda1"},
		{"/dev/vda", 3, "/dev/vda3"},
		{"/dev/nvme0n1", 1, "/dev/nvme0n1p1"},
		{"/dev/mmcblk0", 2, "/dev/mmcblk0p2"},
		{"/dev/loop0", 1, "/dev/loop0p1"},
		{"disk.img", 5, "disk.img5"},
		{"/dev/disk/by-id/ata-FOO_123", 1, "/dev/disk/by-id/ata-FOO_123-part1"},
		{"", 4, "4"},
	}
	for _, tt := range tests {
		if got := PartDevice(tt.disk, tt.n); got != tt.want {
			t.Errorf("PartDevice(%q, %d) = %q, want %q", tt.disk, tt.n, got, tt.want)
		}
	}
}

func TestAttrs(t *testing.T) {
	tests := []struct {
		in, out string
		bits    uint64
	}{
		{"RequiredPartition", "RequiredPartition", 1},
		{"LegacyBIOSBootable GUID:48,49", "LegacyBIOSBootable GUID:48,49", 4 | 1<<48 | 1<<49},
		{"GUID:63,50,48 RequiredPartition", "RequiredPartition GUID:48,50,63", 1 | 1<<48 | 1<<50 | 1<<63},
		{"NoBlockIOProtocol,2", "NoBlockIOProtocol LegacyBIOSBootable", 6},
		{"10", "", 1 << 10},
	}
	for _, tt := range tests {
		v, err := parseAttrs(tt.in)
		if err != nil || v != tt.bits || formatAttrs(v) != tt.out {
			t.Errorf("attrs %q = %#x %q %v, want %#x %q", tt.in, v, formatAttrs(v), err, tt.bits, tt.out)
		}
	}
}

// TestFit: one layout serves a 13 GB and a 22 GB disk (the last partition
// takes the rest), grow/maxsize share free space, 4K disks get converted
// sizes, and a layout that does not fit says by how much.
func TestFit(t *testing.T) {
	const gib = 1 << 30
	l, err := ParseLayout(strings.NewReader(nodeLayout))
	if err != nil {
		t.Fatal(err)
	}
	for _, sz := range []uint64{13 * 1000 * 1000 * 1000, 22 * 1000 * 1000 * 1000} {
		f, err := l.Fit(sz/512, 512)
		if err != nil {
			t.Fatal(err)
		}
		p3 := f.Part(3)
		if p3.Start != 3147776 || p3.Start+p3.Size != sz/512 {
			t.Errorf("%d-byte disk: /scr partition %d+%d does not reach the end %d", sz, p3.Start, p3.Size, sz/512)
		}
	}
	// 4096-byte sectors: same bytes.
	f, err := l.Fit(8*gib/4096, 4096)
	if err != nil {
		t.Fatal(err)
	}
	if p := f.Part(2); p.Start != 2099200/8 || p.Size != 1048576/8 || f.SectorSize != 4096 {
		t.Errorf("4K fit: partition 2 = %d+%d", p.Start, p.Size)
	}
	// grow/maxsize
	g, err := ParseLayout(strings.NewReader("label: gpt\nsize=1G\nsize=1G\nsize=1G\n" +
		"# clonecd: part=2 grow=yes maxsize=3GiB\n# clonecd: part=3 grow=yes\n"))
	if err != nil {
		t.Fatal(err)
	}
	f, err = g.Fit(10*gib/512, 512)
	if err != nil {
		t.Fatal(err)
	}
	if p := f.Part(2); p.Size != 3*gib/512 {
		t.Errorf("grow with maxsize: partition 2 has %d sectors, want %d", p.Size, 3*gib/512)
	}
	if p := f.Part(3); p.Start != f.Part(2).Start+f.Part(2).Size || p.Start+p.Size < 10*gib/512-34-2048 {
		t.Errorf("grow: partition 3 = %d+%d does not take the rest", p.Start, p.Size)
	}
	// too big
	big, _ := ParseLayout(strings.NewReader("label: dos\nsize=6G\nsize=4G\n,\n"))
	_, err = big.Fit(8*gib/512, 512)
	if err == nil || !strings.Contains(err.Error(), "MiB too small") || !strings.Contains(err.Error(), "line 3") {
		t.Fatalf("too big: %v", err)
	}
	if !strings.Contains(err.Error(), "is 2050 MiB too small") {
		t.Errorf("too big: wrong amount: %v", err)
	}
	// layout sizes that are not whole 4K sectors
	odd, _ := ParseLayout(strings.NewReader("label: dos\nsize=1001\n"))
	if _, err := odd.Fit(gib/4096, 4096); err == nil || !strings.Contains(err.Error(), "line 2") {
		t.Errorf("odd size on 4K: %v", err)
	}
}

// TestSfdiskAcceptsLayout: a layout file with clonecd lines and unit sizes
// is accepted unchanged by real sfdisk, which writes what clonecd writes.
func TestSfdiskAcceptsLayout(t *testing.T) {
	testenv.NeedTools(t, "sfdisk")
	l, err := ParseLayout(strings.NewReader("label: gpt\nlabel-id: 01234567-89AB-4CDE-8F01-23456789ABCD\n" +
		"size=512MiB, type=U, uuid=11234567-89AB-4CDE-8F01-23456789ABCD, name=\"EFI System\"\n" +
		"size=2GiB, uuid=21234567-89AB-4CDE-8F01-23456789ABCD, name=\"root\"\n" +
		"uuid=31234567-89AB-4CDE-8F01-23456789ABCD, name=\"data\"\n" +
		"# clonecd: part=1 fs=vfat mount=/boot/efi\n# clonecd: part=2 fs=ext4 mount=/ mkfs=\"-O ^metadata_csum\"\n" +
		"# clonecd: part=3 fs=ext4 mount=/data\n"))
	if err != nil {
		t.Fatal(err)
	}
	text := l.String()
	if !strings.Contains(text, "# clonecd: part=3 fs=ext4 mount=/data\n") {
		t.Fatalf("metadata lost:\n%s", text)
	}
	a := testenv.Sparse(t, "a.img", 4<<30)
	b := testenv.Sparse(t, "b.img", 4<<30)
	sfdiskScript(t, a, text)
	if _, err := Apply(l, b, ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	if x, y := sfdiskDump(t, a), strings.ReplaceAll(sfdiskDump(t, b), b, a); x != y {
		t.Errorf("sfdisk from the layout file:\n%s\nclonecd:\n%s", x, y)
	}
}

func TestDryRunWritesNothing(t *testing.T) {
	img := testenv.Sparse(t, "d.img", 64<<20)
	l, _ := ParseLayout(strings.NewReader("label: dos\nsize=8M\n,\n"))
	w, err := Apply(l, img, ApplyOptions{DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(w.Parts) != 2 || w.Part(2).Size == 0 {
		t.Errorf("dry run table: %+v", w)
	}
	b, _ := os.ReadFile(img)
	for _, c := range b {
		if c != 0 {
			t.Fatal("dry run wrote to the disk")
		}
	}
	if _, err := Dump(img); !errors.Is(err, ErrNoTable) {
		t.Errorf("dump of a blank disk: %v", err)
	}
}
