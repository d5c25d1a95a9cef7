package partition

import (
	"bytes"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/clonecd/clonecd/internal/testenv"
	"github.com/diskfs/go-diskfs"
	"github.com/diskfs/go-diskfs/partition/gpt"
)

// sfdiskScript runs real sfdisk with script on stdin.
func sfdiskScript(t testing.TB, dev, script string) {
	t.Helper()
	cmd := exec.Command(testenv.Tool("sfdisk"), "--no-reread", "--no-tell-kernel", "-q", dev)
	cmd.Stdin = strings.NewReader(script)
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("sfdisk %s: %v\n%s\nscript:\n%s", dev, err, out, script)
	}
}

func sfdiskDump(t testing.TB, dev string) string {
	t.Helper()
	return testenv.Run(t, "sfdisk", "-d", dev)
}

type tableCase struct {
	name   string
	mib    int64
	ss     int  // 512 or 4096
	loop   bool // on a loop device (4096 needs a loop device)
	script string
}

// tableCases are the partition tables real sfdisk makes in the tests:
// dos with logical partitions and bootable flags, gpt with names, attrs,
// index gaps, first-lba 34 and 2048, 4K sectors, several disk sizes.
var tableCases = []tableCase{
	{"dos-primaries", 64, 512, false, "label: dos\nlabel-id: 0x11223344\nsize=8M, bootable\nsize=16M, type=82\ntype=c\n"},
	{"dos-logical", 1024, 512, false, "label: dos\nlabel-id: 0x12345678\n,100M,83,*\n,200M,82\n,,E\n,50M,83\n,,83\n"},
	{"dos-logical-loop", 2048, 512, true, "label: dos\nlabel-id: 0xdeadbeef\nsize=256M,type=83\ntype=f\nsize=64M\nsize=128M,type=82\nsize=32M,bootable\ntype=8e\n"},
	{"dos-4k-loop", 1024, 4096, true, "label: dos\nlabel-id: 0x0badcafe\nsize=100M,bootable\ntype=E\nsize=10M\nsize=20M\ntype=82\n"},
	{"dos-gaps", 512, 512, false, "label: dos\nlabel-id: 0x00000001\n3: start=409600, size=102400, type=fd\n1: start=4096, size=8192, type=ef, bootable\n"},
	{"dos-explicit-logical", 1024, 512, false, "label: dos\nlabel-id: 0xa1b2c3d4\n,100M,83,*\n,,E\nstart=300000,size=50M\nstart=800000,size=1000\n"},
	{"dos-big", 20480, 512, false, "label: dos\nlabel-id: 0x5a5a5a5a\n,1G\n,,E\n,1G\n,1G\n,,82\n"},
	{"dos-tiny", 2, 512, false, "label: dos\nlabel-id: 0x7e577e57\nsize=1000\n,,E\nsize=100\n,\n"},
	{"gpt-tiny", 3, 512, false, "label: gpt\nlabel-id: 1A2B3C4D-1111-2222-3333-444455556666\n" +
		"size=2000,uuid=2A2B3C4D-1111-2222-3333-444455556666\nuuid=3A2B3C4D-1111-2222-3333-444455556666\n"},
	// layouts in 512-byte sectors applied to 4K disks (sfdisk recalculates)
	{"gpt-512-on-4k", 1024, 4096, true, "label: gpt\nlabel-id: 1A2B3C4D-1111-2222-3333-444455556666\nsector-size: 512\nfirst-lba: 2048\n\n" +
		"start=2048, size=204800, uuid=2A2B3C4D-1111-2222-3333-444455556666\n" +
		"start=206848, size=409600, type=S, uuid=3A2B3C4D-1111-2222-3333-444455556666\nuuid=4A2B3C4D-1111-2222-3333-444455556666\n"},
	{"dos-512-on-4k", 1024, 4096, true, "label: dos\nlabel-id: 0x4b4b4b4b\nsector-size: 512\n\n" +
		"start=2048, size=204800, type=83, bootable\nstart=206848, type=5\nstart=210944, size=102400\nstart=315392, type=82\n"},
	{"dos-empty", 32, 512, false, "label: dos\nlabel-id: 0x01020304\n"},
	{"gpt-lba34-names", 2048, 512, false, "label: gpt\nlabel-id: 207DD57A-F128-B645-B089-960257318936\nfirst-lba: 34\n" +
		"size=100M,type=U,uuid=FB912271-2375-AD4D-B6E0-C1342962D24C,name=\"EFI system\"\n" +
		"size=200M,type=S,uuid=71D0AA63-9E00-D74D-9859-06820122E84F,attrs=\"RequiredPartition GUID:60\"\n" +
		"3: size=300M,type=L,uuid=417DB603-1F8F-EC44-99BC-70116DDC590D,name=\"root fs\",attrs=\"LegacyBIOSBootable\"\n" +
		"5: type=L,uuid=0EBD4A11-24CD-2746-A3D7-16481A098E06\n"},
	{"gpt-default", 256, 512, false, "label: gpt\nlabel-id: 5E733153-E52E-AF4B-AFDE-E2A3FCBBBB15\n" +
		"size=1M,type=21686148-6449-6E6F-744E-656564454649,uuid=E1A02746-6BD1-CE4E-AF82-DDD7F38C849D,name=\"bios\"\n" +
		"size=64M,uuid=C88F7ECA-1268-574C-B8B8-308705A31D0B,name=\"root\"\n" +
		"uuid=D64594E2-5141-484C-B7FA-3DBD63CC21E1,name=\"data\"\n"},
	{"gpt-loop-attrs", 3072, 512, true, "label: gpt\nlabel-id: 6E3B4E3F-1B2C-4D5E-8F90-A1B2C3D4E5F6\nfirst-lba: 2048\n" +
		"2: size=512M,type=S,uuid=11111111-2222-4333-8444-555555555555,attrs=\"RequiredPartition NoBlockIOProtocol GUID:48,49\"\n" +
		"4: size=1G,uuid=21111111-2222-4333-8444-555555555555,name=\"a\\x22b$c`d\\\\e \\xc3\\xa9\"\n" +
		"7: uuid=31111111-2222-4333-8444-555555555555,type=H,attrs=\"GUID:63\"\n"},
	{"gpt-4k-loop", 1024, 4096, true, "label: gpt\nlabel-id: 709693B8-395C-6C41-A9EA-3004AA303DA6\n" +
		"size=100M,type=U,uuid=6BC2641B-3985-0148-8841-C9815162C0D1,name=\"esp\"\n" +
		"size=200M,type=S,uuid=7BC2641B-3985-0148-8841-C9815162C0D1\n" +
		"uuid=8BC2641B-3985-0148-8841-C9815162C0D1,name=\"data\"\n"},
	{"gpt-table-length", 128, 512, false, "label: gpt\nlabel-id: 0A0B0C0D-1111-2222-3333-444455556666\ntable-length: 64\nfirst-lba: 34\n" +
		"start=34,size=2014,uuid=1A0B0C0D-1111-2222-3333-444455556666,type=21686148-6449-6E6F-744E-656564454649\n" +
		"10: uuid=2A0B0C0D-1111-2222-3333-444455556666\n"},
	{"gpt-big", 22528, 512, false, "label: gpt\nlabel-id: 9A0B0C0D-1111-2222-3333-444455556666\n" +
		"size=512M,type=U,uuid=9B0B0C0D-1111-2222-3333-444455556666\n" +
		"size=8G,type=L,uuid=9C0B0C0D-1111-2222-3333-444455556666,name=\"root\"\n" +
		"size=2G,type=S,uuid=9D0B0C0D-1111-2222-3333-444455556666\n" +
		"uuid=9E0B0C0D-1111-2222-3333-444455556666,name=\"scr\"\n"},
}

// newDisk makes a blank sparse disk, on a loop device when asked.
func newDisk(t *testing.T, name string, c tableCase) string {
	t.Helper()
	img := testenv.Sparse(t, name, c.mib<<20)
	if c.loop || c.ss != 512 {
		return testenv.Loop(t, img, c.ss)
	}
	return img
}

// TestDumpAndApplyMatchSfdisk is the acceptance test of issue 3: for every
// table real sfdisk makes, `layout dump` equals `sfdisk -d` byte for byte;
// applying the same script (and the dump) with clonecd on a blank disk gives
// the same `sfdisk -d` and the same on-disk table bytes; `sfdisk --verify`
// (and `sgdisk -v` for gpt) find no problem; go-diskfs reads our gpt.
func TestDumpAndApplyMatchSfdisk(t *testing.T) {
	testenv.NeedTools(t, "sfdisk", "sgdisk")
	for _, c := range tableCases {
		t.Run(c.name, func(t *testing.T) {
			if c.loop || c.ss != 512 {
				testenv.NeedRoot(t)
			}
			ref := newDisk(t, "ref.img", c)
			sfdiskScript(t, ref, c.script)
			want := sfdiskDump(t, ref)
			l, err := Dump(ref)
			if err != nil {
				t.Fatal(err)
			}
			if got := l.String(); got != want {
				t.Fatalf("dump differs from sfdisk -d\n--- sfdisk -d:\n%s\n--- clonecd:\n%s", want, got)
			}
			for _, src := range []struct{ what, text string }{{"script", c.script}, {"dump", want}} {
				lay, err := ParseLayout(strings.NewReader(src.text))
				if err != nil {
					t.Fatalf("parse %s: %v", src.what, err)
				}
				dst := newDisk(t, "dst-"+src.what+".img", c)
				if _, err := Apply(lay, dst, ApplyOptions{AllowEmpty: true}); err != nil {
					t.Fatalf("apply %s: %v", src.what, err)
				}
				got := strings.ReplaceAll(sfdiskDump(t, dst), dst, ref)
				if got != want {
					t.Fatalf("apply %s: sfdisk -d differs\n--- sfdisk wrote:\n%s\n--- clonecd wrote:\n%s", src.what, want, got)
				}
				compareTableSectors(t, ref, dst, l)
				v := testenv.Run(t, "sfdisk", "--verify", dst)
				if !strings.Contains(v, "No errors detected") {
					t.Errorf("sfdisk --verify %s:\n%s", dst, v)
				}
				if l.Label == "dos" {
					// sgdisk -v converts a dos table to gpt in memory and may
					// warn about that conversion: it must say nothing about
					// ours that it does not say about sfdisk's.
					x, _ := testenv.Output("sgdisk", "-v", ref)
					y, _ := testenv.Output("sgdisk", "-v", dst)
					if x != strings.ReplaceAll(y, dst, ref) {
						t.Errorf("sgdisk -v differs:\nsfdisk's table:\n%s\nclonecd's:\n%s", x, y)
					}
				}
				if l.Label == "gpt" {
					v := testenv.Run(t, "sgdisk", "-v", dst)
					if !strings.Contains(v, "No problems found") {
						t.Errorf("sgdisk -v %s:\n%s", dst, v)
					}
					if c.ss == 512 {
						crossCheckDiskfs(t, dst, l)
					}
				}
			}
		})
	}
}

// compareTableSectors compares the bytes of every sector a table lives
// in: MBR, EBRs, gpt headers and entry arrays.
func compareTableSectors(t *testing.T, a, b string, l *Layout) {
	t.Helper()
	da, err := openDisk(a, os.O_RDONLY)
	if err != nil {
		t.Fatal(err)
	}
	defer da.Close()
	db, err := openDisk(b, os.O_RDONLY)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	lbas := []uint64{0}
	n := da.sectors()
	if l.Label == "gpt" {
		for i := uint64(1); i < 2+64 && i < n; i++ {
			lbas = append(lbas, i, n-i)
		}
	}
	for _, p := range l.Parts {
		if p.Number > 4 || IsExtended(p.Type) {
			lbas = append(lbas, p.Start, p.Start-1, p.Start-da.grain/uint64(da.ss))
		}
	}
	for _, lba := range lbas {
		x, err1 := da.readSectors(lba, 1)
		y, err2 := db.readSectors(lba, 1)
		if err1 != nil || err2 != nil {
			t.Fatal(err1, err2)
		}
		if !bytes.Equal(x, y) {
			t.Errorf("sector %d differs between sfdisk's and clonecd's table", lba)
		}
	}
}

func crossCheckDiskfs(t *testing.T, img string, l *Layout) {
	t.Helper()
	d, err := diskfs.Open(img, diskfs.WithOpenMode(diskfs.ReadOnly))
	if err != nil {
		t.Fatalf("go-diskfs open %s: %v", img, err)
	}
	defer d.Close()
	pt, err := d.GetPartitionTable()
	if err != nil {
		t.Fatalf("go-diskfs table of %s: %v", img, err)
	}
	tab, ok := pt.(*gpt.Table)
	if !ok {
		t.Fatalf("go-diskfs sees %T, want gpt", pt)
	}
	seen := 0
	for _, p := range tab.Partitions {
		if p == nil || p.Type == gpt.Unused {
			continue
		}
		seen++
		want := l.Part(p.Index)
		if want == nil {
			t.Errorf("go-diskfs sees partition %d that sfdisk does not", p.Index)
			continue
		}
		if p.Start != want.Start || p.End != want.Start+want.Size-1 || !strings.EqualFold(string(p.Type), want.Type) ||
			!strings.EqualFold(p.GUID, want.UUID) || p.Name != want.Name {
			t.Errorf("go-diskfs partition %d = %+v, want %+v", p.Index, p, want)
		}
	}
	if seen != len(l.Parts) {
		t.Errorf("go-diskfs sees %d partitions, want %d", seen, len(l.Parts))
	}
}

// TestDumpOddTables: damaged or unusual tables (an entry of type 0, a
// logical partition running out of its extended one, a 4-entry gpt, tiny
// disks with a 512-byte grain) dump exactly as sfdisk -d shows them.
func TestDumpOddTables(t *testing.T) {
	testenv.NeedTools(t, "sfdisk")
	dosScript := "label: dos\nlabel-id: 0x12345678\nstart=1,size=1,type=83,bootable\nstart=2,size=20,type=5\nstart=3,size=2\nstart=6,size=2\n"
	tests := []struct {
		name, script string
		patchAt      int64
		patch        byte
	}{
		{"dos-small", dosScript, -1, 0},
		{"dos-type-0", dosScript, 446 + 4, 0},
		{"dos-logical-outside", dosScript, 5*512 + 446 + 12, 0xff},
		{"dos-ebr-loop", dosScript, 2*512 + 446 + 16 + 8, 0}, // link back to the first EBR
		{"gpt-table-length-4", "label: gpt\ntable-length: 4\nfirst-lba: 3\nstart=3,size=20,name=\"x\"\nstart=30,size=10,attrs=\"GUID:50\"\n", -1, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			img := testenv.Sparse(t, "odd.img", 64<<10)
			sfdiskScript(t, img, tt.script)
			if tt.patchAt >= 0 {
				f, err := os.OpenFile(img, os.O_RDWR, 0)
				if err != nil {
					t.Fatal(err)
				}
				f.WriteAt([]byte{tt.patch}, tt.patchAt)
				f.Close()
			}
			out, _ := exec.Command(testenv.Tool("sfdisk"), "-d", img).Output() // stdout only: warnings go to stderr
			want := string(out)
			l, err := Dump(img)
			if err != nil {
				t.Fatal(err)
			}
			if got := l.String(); got != want {
				t.Errorf("dump differs\n--- sfdisk -d:\n%s\n--- clonecd:\n%s", want, got)
			}
		})
	}
}
