package builder

import (
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/clonecd/clonecd/internal/testenv"
)

func TestVolumeID(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"1.19", "CLONECD_1_19"},
		{"", "CLONECD"},
		{"2.0-rc1", "CLONECD_2_0_RC1"},
		{"a very long version string 123456789", "CLONECD_A_VERY_LONG_VERSION_STRI"},
	} {
		if got := VolumeID(c.in); got != c.want {
			t.Errorf("VolumeID(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestVersionLess(t *testing.T) {
	for _, c := range []struct {
		a, b string
		less bool
	}{
		{"6.1.0-9-amd64", "6.1.0-50-amd64", true},
		{"6.1.0-50-amd64", "6.1.0-9-amd64", false},
		{"5.10.0-28-amd64", "6.1.0-1-amd64", true},
		{"6.1.0-50-amd64", "6.1.0-50-amd64", false},
		{"6.1", "6.1.0", true},
	} {
		if got := versionLess(c.a, c.b); got != c.less {
			t.Errorf("versionLess(%q, %q) = %v, want %v", c.a, c.b, got, c.less)
		}
	}
}

func TestDefaultKernel(t *testing.T) {
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "boot"), 0o755)
	if _, err := DefaultKernel(root); err == nil || !strings.Contains(err.Error(), "--kernel") {
		t.Fatalf("empty /boot: err = %v, want one that suggests --kernel", err)
	}
	for _, v := range []string{"6.1.0-9-amd64", "6.1.0-50-amd64", "6.1.0-10-amd64"} {
		os.WriteFile(filepath.Join(root, "boot", "vmlinuz-"+v), []byte("x"), 0o644)
	}
	got, err := DefaultKernel(root)
	if err != nil || filepath.Base(got) != "vmlinuz-6.1.0-50-amd64" {
		t.Fatalf("DefaultKernel = %q, %v; want vmlinuz-6.1.0-50-amd64", got, err)
	}
}

// TestKernelVersion reads the release out of real Debian kernels: every
// /boot/vmlinuz-* installed on this machine and in the golden root, whatever
// their versions are today (the file name says what the header must say).
func TestKernelVersion(t *testing.T) {
	var kernels []string
	for _, dir := range []string{"/boot", filepath.Join(testenv.GoldenRoot(t), "boot")} {
		ks, _ := filepath.Glob(filepath.Join(dir, "vmlinuz-*"))
		if len(ks) == 0 {
			testenv.Missing(t, "a Debian kernel in %s (package linux-image-amd64)", dir)
		}
		kernels = append(kernels, ks...)
	}
	for _, p := range kernels {
		want := strings.TrimPrefix(filepath.Base(p), "vmlinuz-")
		got, err := KernelFileVersion(p)
		if err != nil || got != want {
			t.Errorf("KernelFileVersion(%s) = %q, %v; want %q", p, got, err, want)
		}
	}
	junk := filepath.Join(t.TempDir(), "junk")
	os.WriteFile(junk, bytes.Repeat([]byte{0}, 4096), 0o644)
	if _, err := KernelFileVersion(junk); err == nil || !strings.Contains(err.Error(), junk) {
		t.Errorf("a non-kernel: err = %v, want one naming the file", err)
	}
}

func TestCheckNodes(t *testing.T) {
	for _, c := range []struct {
		in   string
		line string // "" = valid
	}{
		{"# nodes\n52:54:00:12:34:56 s001\n52:54:00:12:34:57 s002 10.0.0.2/24 10.0.0.1 # gw\n", ""},
		{"\n\n", ""},
		{"52:54:00:12:34:56\n", "nodes:1:"},
		{"s001 52:54:00:12:34:56\n", "nodes:1:"},
		{"# ok\n52:54:00:12:34:56 s001 10.0.0.2\n", "nodes:2:"},
		{"52:54:00:12:34:56 s1 10.0.0.2/24 gw extra\n", "nodes:1:"},
	} {
		err := CheckNodes("nodes", []byte(c.in))
		if c.line == "" && err != nil {
			t.Errorf("CheckNodes(%q): %v", c.in, err)
		}
		if c.line != "" && (err == nil || !strings.HasPrefix(err.Error(), c.line)) {
			t.Errorf("CheckNodes(%q) = %v, want an error at %s", c.in, err, c.line)
		}
	}
}

func TestMenu(t *testing.T) {
	m := Menu{Version: "1.19", Append: "clonecd.mode=probe quiet", Server: "http://10.0.0.1:8080"}
	es := m.Entries()
	var labels []string
	for _, e := range es {
		labels = append(labels, e.Label)
		if e.Local {
			continue
		}
		if !strings.HasPrefix(e.Args, Console+" clonecd.mode=") || !strings.HasSuffix(e.Args, " clonecd.mode=probe quiet") {
			t.Errorf("entry %s: args %q: want console first, --append last", e.Label, e.Args)
		}
	}
	if got := strings.Join(labels, " "); got != "clone clone-net shell local" {
		t.Fatalf("entries %q", got)
	}
	if !strings.Contains(es[1].Args, "clonecd.mode=net clonecd.server=http://10.0.0.1:8080") {
		t.Errorf("clone-net args %q", es[1].Args)
	}
	iso := m.Isolinux()
	for _, want := range []string{"serial 0 115200\n", "default clone\n", "timeout 30\n", "label local\n  localboot 0x80\n",
		"append initrd=/isolinux/initrd.img " + Console + " clonecd.mode=shell"} {
		if !strings.Contains(iso, want) {
			t.Errorf("isolinux.cfg lacks %q:\n%s", want, iso)
		}
	}
	if !strings.HasPrefix(iso, "serial ") {
		t.Errorf("isolinux.cfg must start with the serial directive")
	}
	g := m.Grub()
	for _, want := range []string{"search --no-floppy --set=root --file /CLONE_CD_VERSION", "set default=clone",
		"terminal_output serial console", "menuentry 'local' --id local {\n  exit", "initrd /isolinux/initrd.img",
		"linux /isolinux/vmlinuz " + Console + " clonecd.mode=cd"} {
		if !strings.Contains(g, want) {
			t.Errorf("grub.cfg lacks %q:\n%s", want, g)
		}
	}
}

func TestParseBootCatalog(t *testing.T) {
	good := catalog(t, []BootEntry{{Platform: PlatformBIOS, Sectors: 4, LBA: 100}, {Platform: PlatformEFI, Sectors: 16384, LBA: 32}})
	got, err := ParseBootCatalog(good)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].LBA != 100 || got[1].Platform != PlatformEFI || got[1].Sectors != 16384 {
		t.Fatalf("parsed %+v", got)
	}
	bad := append([]byte(nil), good...)
	bad[4] ^= 0xff // checksum no longer adds up
	if _, err := ParseBootCatalog(bad); err == nil || !strings.Contains(err.Error(), "checksum") {
		t.Errorf("bad checksum: err = %v", err)
	}
	if _, err := ParseBootCatalog(good[:40]); err == nil {
		t.Errorf("short catalog accepted")
	}
}

// catalog writes an El Torito catalog the way the specification lays it out.
func catalog(t testing.TB, es []BootEntry) []byte {
	b := make([]byte, 2048)
	b[0], b[1], b[0x1e], b[0x1f] = 1, es[0].Platform, 0x55, 0xaa
	var sum uint16
	for i := 0; i < 32; i += 2 {
		sum += binary.LittleEndian.Uint16(b[i:])
	}
	binary.LittleEndian.PutUint16(b[0x1c:], -sum)
	put := func(off int, e BootEntry) {
		b[off] = 0x88
		binary.LittleEndian.PutUint16(b[off+6:], e.Sectors)
		binary.LittleEndian.PutUint32(b[off+8:], e.LBA)
	}
	put(32, es[0])
	off := 64
	for i, e := range es[1:] {
		b[off] = 0x90
		if i == len(es)-2 {
			b[off] = 0x91
		}
		b[off+1] = e.Platform
		b[off+2] = 1
		put(off+32, e)
		off += 64
	}
	return b
}

func FuzzParseBootCatalog(f *testing.F) {
	f.Add(catalog(f, []BootEntry{{Platform: PlatformBIOS, Sectors: 4, LBA: 100}, {Platform: PlatformEFI, Sectors: 16384, LBA: 32}}))
	f.Fuzz(func(t *testing.T, b []byte) {
		es, err := ParseBootCatalog(b)
		if err == nil && len(es) == 0 {
			t.Fatal("no error and no entries")
		}
	})
}

func FuzzCheckNodes(f *testing.F) {
	f.Add([]byte("52:54:00:12:34:56 s001 10.0.0.2/24 10.0.0.1\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		if err := CheckNodes("nodes", b); err != nil && !strings.HasPrefix(err.Error(), "nodes:") && !strings.Contains(err.Error(), "token too long") {
			t.Fatalf("error without a line number: %v", err)
		}
	})
}

// TestHybridMBR checks the MBR with the real sfdisk: partition 1 active
// type 0x17 over the image padded to 1 MiB, partition 2 type 0xef on the
// ESP, and isolinux's LBA at byte 432.
func TestHybridMBR(t *testing.T) {
	testenv.NeedTools(t, "sfdisk")
	code := bytes.Repeat([]byte{0x90}, 432)
	p := filepath.Join(t.TempDir(), "x.iso")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Truncate(3<<20 + 2048); err != nil {
		t.Fatal(err)
	}
	h := Hybrid{Code: code, BootLBA: 40, DiskID: 0x12345678, ImageSize: 3<<20 + 2048, EFILBA: 30, EFISectors: 16384}
	size, err := h.Write(f)
	if err != nil {
		t.Fatal(err)
	}
	if size != 4<<20 {
		t.Errorf("padded size %d, want 4 MiB", size)
	}
	m := make([]byte, 512)
	f.ReadAt(m, 0)
	if got := binary.LittleEndian.Uint32(m[432:]); got != 160 {
		t.Errorf("boot LBA at 432 = %d, want 160", got)
	}
	if !bytes.Equal(m[:432], code) {
		t.Errorf("MBR code not copied")
	}
	out := testenv.Run(t, "sfdisk", "-d", p)
	for _, want := range []string{"label-id: 0x12345678", "x.iso1 : start=           0, size=        8192, type=17, bootable",
		"x.iso2 : start=         120, size=       16384, type=ef"} {
		if !strings.Contains(out, want) {
			t.Errorf("sfdisk -d lacks %q:\n%s", want, out)
		}
	}
	if _, _, err := (&Hybrid{Code: code[:10], BootLBA: 1}).MBR(); err == nil {
		t.Errorf("short MBR code accepted")
	}
}

// TestRefuseHugeFile: a (sparse) 4 GiB file is refused by name, both when
// staged and when found in a tree.
func TestRefuseHugeFile(t *testing.T) {
	big := testenv.Sparse(t, "huge.cpio.gz", 4<<30)
	st, err := NewStage(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Remove()
	if _, err := st.Link(big, "node.cpio.gz"); err == nil || !strings.Contains(err.Error(), big) || !strings.Contains(err.Error(), "4 GiB") {
		t.Errorf("Link of a 4 GiB file: err = %v", err)
	}
	os.Truncate(big, 4<<30-1)
	if _, err := st.Link(big, "node.cpio.gz"); err != nil {
		t.Errorf("Link of a 4 GiB - 1 file: %v", err)
	}
	os.Truncate(big, 4<<30)
	_, err = WriteISO(st.Dir, filepath.Join(t.TempDir(), "x.iso"), ISOOptions{})
	if err == nil || !strings.Contains(err.Error(), "node.cpio.gz") {
		t.Errorf("WriteISO with a 4 GiB file: err = %v", err)
	}
	if _, err := os.Stat(st.Dir); !os.IsNotExist(err) {
		t.Errorf("WriteISO left its workspace behind: %v", err)
	}
}
