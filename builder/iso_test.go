package builder

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/clonecd/clonecd/internal/testenv"
	"github.com/clonecd/clonecd/medium"
)

// inputs writes a small node.cpio.gz (GNU cpio, crc format as on the
// Medusa page, then gzip), node.sfdisk and a nodes table into dir.
func inputs(t testing.TB, dir string) (image, layout, nodes string) {
	t.Helper()
	testenv.NeedTools(t, "cpio", "gzip")
	root := filepath.Join(dir, "root")
	// usr/share/noise makes node.cpio.gz larger than bigMin, so that the boot
	// tests read an appended file through the kernel's isofs.
	noise := make([]byte, bigMin+1<<20)
	rand.NewChaCha8([32]byte{7}).Read(noise)
	for p, body := range map[string]string{"etc/hostname": "golden\n", "etc/motd": "cloned by clonecd\n", "data/.keep": "", "usr/share/noise": string(noise)} {
		os.MkdirAll(filepath.Join(root, filepath.Dir(p)), 0o755)
		if err := os.WriteFile(filepath.Join(root, p), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	image = filepath.Join(dir, "node.cpio.gz")
	cmd := exec.Command("sh", "-c", "find . -xdev | cpio -o --format=crc --quiet | gzip > "+image)
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("making %s: %v\n%s", image, err, out)
	}
	layout = filepath.Join(dir, "node.sfdisk")
	os.WriteFile(layout, []byte("label: dos\nunit: sectors\n\n/dev/sda1 : start=2048, size=1048576, type=83, bootable\n"+
		"# clonecd: part=1 fs=ext4 mount=/\n/dev/sda2 : start=1050624, type=83\n# clonecd: part=2 fs=ext4 mount=/data\n"), 0o644)
	nodes = filepath.Join(dir, "nodes")
	os.WriteFile(nodes, []byte("# MAC HOSTNAME ADDRESS GATEWAY\n52:54:00:12:34:56 s001 10.0.2.15/24 10.0.2.2\n"), 0o644)
	return image, layout, nodes
}

// stageTree stages a bootable tree with a payload file.
func stageTree(t testing.TB, parent, payload string) *Stage {
	t.Helper()
	st, err := NewStage(parent)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{IsolinuxBin, LdlinuxC32} {
		if _, err := st.Link(p, "isolinux/"+filepath.Base(p)); err != nil {
			t.Fatal(err)
		}
	}
	st.WriteFile("isolinux/isolinux.cfg", []byte(Menu{Version: "1.19"}.Isolinux()), 0o644)
	st.WriteFile(medium.Version, []byte("1.19\n"), 0o644)
	if _, err := st.Link(payload, medium.ImageGzip); err != nil {
		t.Fatal(err)
	}
	if _, err := WriteESP(filepath.Join(st.Dir, ESPPath), map[string][]byte{"EFI/BOOT/BOOTX64.EFI": []byte("not really an EFI program")}); err != nil {
		t.Fatal(err)
	}
	return st
}

// TestWriteISO checks an ISO made by WriteISO with the real xorriso, fdisk
// and fsck.vfat: El Torito BIOS (boot info table) and UEFI entries, Rock
// Ridge full names, the volume label, the hybrid MBR, a clean FAT16 ESP.
func TestWriteISO(t *testing.T) {
	testenv.NeedTools(t, "xorriso", "sfdisk", "fsck.vfat")
	dir := t.TempDir()
	image, _, _ := inputs(t, dir)
	st := stageTree(t, dir, image)
	before := fileSum(t, IsolinuxBin)
	iso := filepath.Join(dir, "x.iso")
	info, err := WriteISO(st.Dir, iso, ISOOptions{VolumeID: "CLONECD_1_19", BIOSBoot: "isolinux/isolinux.bin",
		EFIBoot: ESPPath, Hybrid: true, DiskID: 0xc10ecd01})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(st.Dir); !os.IsNotExist(err) {
		t.Errorf("workspace %s still there: %v", st.Dir, err)
	}
	if _, err := os.Stat(image); err != nil {
		t.Errorf("the input image was removed with the workspace: %v", err)
	}
	if fi, _ := os.Stat(iso); fi == nil || fi.Size() != info.Size || info.Size%(1<<20) != 0 {
		t.Errorf("ISO size %v, info %+v: want a 1 MiB multiple", fi, info)
	}
	checkISO(t, iso, "CLONECD_1_19", true)
	if len(info.Boot) != 2 || info.Boot[0].Platform != PlatformBIOS || info.Boot[1].Platform != PlatformEFI {
		t.Fatalf("boot entries %+v", info.Boot)
	}
	// the boot info table is patched into the ISO's copy of isolinux.bin
	// only: the hard-linked system file stays as it was
	if after := fileSum(t, IsolinuxBin); after != before {
		t.Errorf("%s was modified (hard link written through)", IsolinuxBin)
	}
	bin := filepath.Join(dir, "isolinux.bin")
	testenv.Run(t, "xorriso", "-osirrox", "on", "-indev", iso, "-extract", "/isolinux/isolinux.bin", bin)
	b, _ := os.ReadFile(bin)
	if len(b) < 64 || binary.LittleEndian.Uint32(b[8:]) != 16 || binary.LittleEndian.Uint32(b[12:]) != info.Boot[0].LBA ||
		binary.LittleEndian.Uint32(b[16:]) != uint32(len(b)) {
		t.Errorf("boot info table not patched: % x", b[8:24])
	}
	// the ESP passes fsck.vfat
	esp := filepath.Join(dir, "efi.img")
	testenv.Run(t, "xorriso", "-osirrox", "on", "-indev", iso, "-extract", "/"+ESPPath, esp)
	testenv.Run(t, "fsck.vfat", "-n", esp)
	if out := testenv.Run(t, "mdir", "-i", esp, "::/EFI/BOOT"); !strings.Contains(out, "BOOTX64") {
		t.Errorf("ESP lacks EFI/BOOT/BOOTX64.EFI:\n%s", out)
	}
	// the payload comes back intact
	back := filepath.Join(dir, "back.cpio.gz")
	testenv.Run(t, "xorriso", "-osirrox", "on", "-indev", iso, "-extract", "/node.cpio.gz", back)
	if a, b := fileSum(t, image), fileSum(t, back); a != b {
		t.Errorf("node.cpio.gz changed on the ISO: %s vs %s", a, b)
	}
}

// checkISO asserts what the acceptance asks of every clone CD.
func checkISO(t *testing.T, iso, label string, uefi bool) {
	t.Helper()
	out := testenv.Run(t, "xorriso", "-indev", iso, "-report_el_torito", "plain", "-find", "/", "-exec", "lsdl")
	want := []string{"Volume id    : '" + label + "'", "El Torito boot img :   1  BIOS  y   none",
		"El Torito img opts :   1  boot-info-table isohybrid-suitable", "El Torito img path :   1  /isolinux/isolinux.bin",
		"MBR isohybrid", "/node.cpio.gz", "/CLONE_CD_VERSION", "/isolinux/ldlinux.c32"}
	if uefi {
		want = append(want, "El Torito boot img :   2  UEFI  y   none", "El Torito img path :   2  /boot/grub/efi.img")
	}
	for _, w := range want {
		if !strings.Contains(out, w) {
			t.Errorf("xorriso report lacks %q:\n%s", w, out)
		}
	}
	if strings.Contains(out, "NODE.CPI") || strings.Contains(out, "node_cpio") {
		t.Errorf("8.3 names on the ISO (Rock Ridge missing):\n%s", out)
	}
	sf := testenv.Run(t, "sfdisk", "-d", iso)
	if !strings.Contains(sf, "1 : start=           0") || !strings.Contains(sf, "type=17, bootable") {
		t.Errorf("sfdisk -d: no active type-17 partition 1 from sector 0:\n%s", sf)
	}
	if uefi && !strings.Contains(sf, "type=ef") {
		t.Errorf("sfdisk -d: no EFI partition:\n%s", sf)
	}
}

func fileSum(t testing.TB, p string) string {
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// TestBuildErrors: bad input gets a clear error naming what is wrong,
// before anything is written.
func TestBuildErrors(t *testing.T) {
	dir := t.TempDir()
	image, layout, _ := inputs(t, dir)
	badNodes := filepath.Join(dir, "badnodes")
	os.WriteFile(badNodes, []byte("s001 52:54:00:12:34:56\n"), 0o644)
	badSum := filepath.Join(dir, "bad", "node.cpio.gz")
	os.MkdirAll(filepath.Dir(badSum), 0o755)
	os.Link(image, badSum)
	os.WriteFile(badSum+".sha256", []byte(strings.Repeat("0", 64)+"  node.cpio.gz\n"), 0o644)
	out := filepath.Join(dir, "x.iso")
	for _, c := range []struct {
		name string
		o    Options
		want string
	}{
		{"no image", Options{Layout: layout, Version: "1.19"}, "--image"},
		{"no layout", Options{Image: image, Version: "1.19"}, "--layout"},
		{"missing image", Options{Image: filepath.Join(dir, "nope.cpio.gz"), Layout: layout, Version: "1.19", Initrd: image}, "nope.cpio.gz"},
		{"bad nodes", Options{Image: image, Layout: layout, Version: "1.19", Nodes: badNodes, Initrd: image}, "badnodes:1:"},
		{"bad sha256", Options{Image: badSum, Layout: layout, Version: "1.19", Initrd: image}, "damaged"},
		{"bad version", Options{Image: image, Layout: layout, Version: "1 2"}, "want MAJOR.MINOR"},
		{"bad append", Options{Image: image, Layout: layout, Version: "1.19", Append: "a;b"}, "--append"},
		{"not a kernel", Options{Image: image, Layout: layout, Version: "1.19", Kernel: layout}, "HdrS"},
	} {
		t.Run(c.name, func(t *testing.T) {
			c.o.Output, c.o.Quiet = out, true
			_, err := Build(c.o)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("err = %v, want one mentioning %q", err, c.want)
			}
			if _, err := os.Stat(out); !os.IsNotExist(err) {
				t.Errorf("%s written despite the error", out)
			}
			if m, _ := filepath.Glob(filepath.Join(dir, ".clonecd-*")); len(m) > 0 {
				t.Errorf("left behind: %v", m)
			}
		})
	}
}

// TestBuildKickstart: with --kickstart and no --layout the layout comes
// from ks.cfg (package kickstart) and ks.cfg itself goes on the media for
// its %post scripts. A prebuilt initramfs keeps it quick.
func TestBuildKickstart(t *testing.T) {
	testenv.NeedTools(t, "xorriso", "sfdisk", "grub-mkstandalone", "fsck.vfat")
	dir := t.TempDir()
	image, _, _ := inputs(t, dir)
	ks := filepath.Join(dir, "ks.cfg")
	os.WriteFile(ks, []byte("zerombr\nclearpart --all --initlabel\npart / --fstype ext4 --size 4096\npart swap --size 512\n"+
		"part /data --fstype ext4 --size 1024 --grow\n%post\necho posted > /etc/posted\n%end\n"), 0o644)
	initrd := filepath.Join(dir, "initrd.img")
	os.WriteFile(initrd, []byte("prebuilt"), 0o644)
	iso := filepath.Join(dir, "ks.iso")
	s, err := Build(Options{Output: iso, Image: image, Kickstart: ks, Version: "2.0", Initrd: initrd, Quiet: true})
	if err != nil {
		t.Fatal(err)
	}
	if !s.Initrd.Prebuilt || s.Initrd.Compressed != 8 || s.Label != "CLONECD_2_0" {
		t.Errorf("summary %+v", s)
	}
	checkISO(t, iso, "CLONECD_2_0", true)
	media := filepath.Join(dir, "media")
	testenv.Run(t, "xorriso", "-osirrox", "on", "-indev", iso, "-extract", "/", media)
	layout, _ := os.ReadFile(filepath.Join(media, "node.sfdisk"))
	for _, want := range []string{"mount=/data", "mount=/", "type=82"} {
		if !strings.Contains(string(layout), want) {
			t.Errorf("layout from ks.cfg lacks %q:\n%s", want, layout)
		}
	}
	if b, _ := os.ReadFile(filepath.Join(media, "ks.cfg")); !strings.Contains(string(b), "echo posted") {
		t.Errorf("/ks.cfg on the media: %q", b)
	}
	if b, _ := os.ReadFile(filepath.Join(media, "isolinux/initrd.img")); string(b) != "prebuilt" {
		t.Errorf("/isolinux/initrd.img is not the prebuilt one: %q", b)
	}
}

// TestNoGrubEFI: a build host without grub-mkstandalone gets a clear error
// pointing at the package and --no-uefi; with --no-uefi the ISO is
// BIOS-only.
func TestNoGrubEFI(t *testing.T) {
	testenv.NeedTools(t, "xorriso", "sfdisk", "cpio", "gzip")
	dir := t.TempDir()
	image, layout, _ := inputs(t, dir)
	t.Setenv("PATH", filepath.Join(dir, "empty"))
	o := Options{Output: filepath.Join(dir, "x.iso"), Image: image, Layout: layout, Version: "1.19", Initrd: image, Quiet: true}
	if _, err := Build(o); err == nil || !strings.Contains(err.Error(), "grub-efi-amd64-bin") || !strings.Contains(err.Error(), "--no-uefi") {
		t.Fatalf("err = %v, want the grub-efi-amd64-bin / --no-uefi hint", err)
	}
	o.NoUEFI = true
	s, err := Build(o)
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Boot) != 1 || s.Boot[0].Platform != PlatformBIOS {
		t.Errorf("boot entries %+v, want BIOS only", s.Boot)
	}
	checkISO(t, o.Output, "CLONECD_1_19", false)
}
