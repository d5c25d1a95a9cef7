package initramfs

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/clonecd/clonecd/internal/testenv"
	"github.com/clonecd/clonecd/kmod"
)

// goldenOptions builds from the golden root's modules with the test's
// clonecd as /init and the build host's programs and busybox.
func goldenOptions(t testing.TB) Options {
	return Options{Clonecd: testenv.Clonecd(t), Golden: testenv.GoldenRoot(t)}
}

// build writes the initramfs to a temp file and returns its path.
func build(t testing.TB, o Options) (string, *Summary) {
	t.Helper()
	p := filepath.Join(t.TempDir(), "initrd.img")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	s, err := Build(f, o)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return p, s
}

// extract unpacks img with gzip and GNU cpio (what the kernel's unpacker
// reads too) into a new directory.
func extract(t testing.TB, img string) string {
	t.Helper()
	testenv.NeedTools(t, "cpio", "gzip")
	dir := t.TempDir()
	cmd := exec.Command("sh", "-c", "gzip -dc \"$0\" | cpio -idm --quiet --no-absolute-filenames", img)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("extracting %s: %v\n%s", img, err, out)
	}
	return dir
}

func listing(t testing.TB, img string) string {
	t.Helper()
	out, err := exec.Command("sh", "-c", "gzip -dc \"$0\" | cpio -itv --quiet", img).CombinedOutput()
	if err != nil {
		t.Fatalf("listing %s: %v\n%s", img, err, out)
	}
	return string(out)
}

func TestBuildGolden(t *testing.T) {
	testenv.NeedRoot(t) // device nodes on extraction, chroot
	o := goldenOptions(t)
	img, s := build(t, o)
	t.Logf("initramfs: %d bytes compressed, %d uncompressed, %d files, %d modules, %d firmware, programs %v, missing %v",
		s.Compressed, s.Uncompressed, s.Files, s.Modules, s.Firmware, s.Programs, s.Missing)
	st, _ := os.Stat(img)
	if st.Size() != s.Compressed {
		t.Errorf("Summary.Compressed %d, file has %d bytes", s.Compressed, st.Size())
	}
	list := listing(t, img)
	for _, want := range []string{
		"crw------- ", // dev/console, checked below by name
	} {
		if !strings.Contains(list, want) {
			t.Errorf("listing lacks %q", want)
		}
	}
	dir := extract(t, img)
	ver := s.KernelVersion
	mods := filepath.Join(dir, "lib/modules", ver)
	for _, p := range []string{
		"init", "bin/busybox", "sbin/mke2fs", "sbin/e2fsck", "sbin/mkfs.xfs", "sbin/mkfs.vfat", "etc/mke2fs.conf",
		"lib64/ld-linux-x86-64.so.2", "lib/x86_64-linux-gnu/libext2fs.so.2",
		"lib/modules/" + ver + "/modules.dep", "lib/modules/" + ver + "/modules.alias",
		"lib/modules/" + ver + "/modules.softdep", "lib/modules/" + ver + "/modules.builtin",
		"lib/modules/" + ver + "/kernel/drivers/ata/ahci.ko", "lib/modules/" + ver + "/kernel/drivers/ata/ata_piix.ko",
		"lib/modules/" + ver + "/kernel/drivers/nvme/host/nvme.ko", "lib/modules/" + ver + "/kernel/drivers/block/virtio_blk.ko",
		"lib/modules/" + ver + "/kernel/drivers/net/ethernet/intel/e1000/e1000.ko",
		"lib/modules/" + ver + "/kernel/drivers/net/ethernet/realtek/8139too.ko",
		"lib/modules/" + ver + "/kernel/drivers/net/virtio_net.ko",
		"lib/modules/" + ver + "/kernel/fs/ext4/ext4.ko", "lib/modules/" + ver + "/kernel/fs/isofs/isofs.ko",
		"lib/modules/" + ver + "/kernel/fs/xfs/xfs.ko", "lib/modules/" + ver + "/kernel/fs/fat/vfat.ko",
		"lib/modules/" + ver + "/kernel/arch/x86/crypto/crc32c-intel.ko",
		"lib/modules/" + ver + "/kernel/drivers/usb/storage/usb-storage.ko",
		"lib/modules/" + ver + "/kernel/drivers/usb/host/xhci-pci.ko",
	} {
		if _, err := os.Stat(filepath.Join(dir, p)); err != nil {
			t.Errorf("missing %s", p)
		}
	}
	for link, target := range map[string]string{"sbin/modprobe": "/init", "bin/clonecd": "/init", "sbin/mkfs.ext4": "mke2fs", "bin/sh": "/bin/busybox"} {
		if got, err := os.Readlink(filepath.Join(dir, link)); err != nil || got != target {
			t.Errorf("%s -> %q (%v), want -> %s", link, got, err, target)
		}
	}
	if st, err := os.Lstat(filepath.Join(dir, "dev/console")); err != nil || st.Mode()&os.ModeCharDevice == 0 {
		t.Errorf("dev/console: %v %v, want a char device", st, err)
	}
	// The module index in the image is complete: every dependency of
	// every module is there, and modprobe resolves the kernel's requests.
	x, err := kmod.Load(mods)
	if err != nil {
		t.Fatal(err)
	}
	if len(x.Modules()) != s.Modules {
		t.Errorf("modules.dep has %d modules, Summary says %d", len(x.Modules()), s.Modules)
	}
	for _, m := range x.Modules() {
		if _, err := os.Stat(filepath.Join(mods, x.Path[m])); err != nil {
			t.Errorf("module %s listed but not in the image", m)
		}
		for _, d := range x.Deps[m] {
			if _, ok := x.Path[d]; !ok {
				t.Errorf("module %s needs %s, which is not in modules.dep", m, d)
			}
		}
	}
	for _, m := range []string{"btrfs", "i915", "snd_hda_intel"} {
		if _, ok := x.Path[m]; ok {
			t.Errorf("module %s is in the default image", m)
		}
	}
	// The programs run from the image alone (chroot): libraries and
	// loader resolved from ELF headers are enough.
	for _, c := range [][]string{
		{"/sbin/mke2fs", "-V"}, {"/sbin/mkfs.xfs", "-V"}, {"/bin/sh", "-c", "echo shell-ok"},
		{"/sbin/modprobe", "-n", "-v", "-d", "/lib/modules/" + ver, "fs-ext4"},
	} {
		out, err := exec.Command("chroot", append([]string{dir}, c...)...).CombinedOutput()
		if err != nil {
			t.Errorf("chroot %s: %v\n%s", strings.Join(c, " "), err, out)
		}
		if c[0] == "/sbin/modprobe" && !strings.Contains(string(out), "crc32c") {
			t.Errorf("modprobe fs-ext4 in the image does not load crc32c first:\n%s", out)
		}
	}
}

func TestSelectModules(t *testing.T) {
	root := testenv.GoldenRoot(t)
	ver := newestKernel(root)
	x, err := kmod.Load(filepath.Join(root, "lib/modules", ver))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name      string
		add, omit []string
		has, not  []string
		err       string
	}{
		{name: "default", has: []string{"ahci", "ext4", "crc32c_intel", "crc32c_generic", "libata", "e1000e", "usb_storage", "isofs"}, not: []string{"btrfs", "i915"}},
		{name: "add by name and softdep", add: []string{"btrfs"}, has: []string{"btrfs", "raid6_pq", "xxhash_generic"}},
		{name: "add by alias", add: []string{"fs-btrfs"}, has: []string{"btrfs"}},
		{name: "add by path", add: []string{"kernel/drivers/gpu/drm/i915/"}, has: []string{"i915", "drm"}},
		{name: "omit glob", omit: []string{"mlx*"}, has: []string{"e1000"}, not: []string{"mlx4_en", "mlx5_core"}},
		{name: "omit a dependency drops its users", omit: []string{"libata"}, not: []string{"libata", "ahci", "ata_piix"}, has: []string{"nvme"}},
		{name: "add by name beats omit", add: []string{"e1000"}, omit: []string{"kernel/drivers/net/ethernet/"}, has: []string{"e1000"}, not: []string{"e1000e", "tg3"}},
		{name: "unknown", add: []string{"no_such_module_x"}, err: "no_such_module_x"},
	} {
		t.Run(c.name, func(t *testing.T) {
			mods, err := selectModules(x, Options{AddModules: c.add, OmitModules: c.omit})
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("error %v, want one naming %q", err, c.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			set := map[string]bool{}
			for _, m := range mods {
				set[m] = true
			}
			for _, m := range c.has {
				if !set[m] {
					t.Errorf("%s missing", m)
				}
			}
			for _, m := range c.not {
				if set[m] {
					t.Errorf("%s present", m)
				}
			}
		})
	}
}

func TestBuildErrors(t *testing.T) {
	golden := testenv.GoldenRoot(t)
	bin := testenv.Clonecd(t)
	dynamic := testenv.Tool("mke2fs")
	for _, c := range []struct {
		name string
		o    Options
		want string
	}{
		{"dynamic init", Options{Clonecd: dynamic, Golden: golden}, "dynamically linked"},
		{"not ELF", Options{Clonecd: "/etc/passwd", Golden: golden}, "/etc/passwd"},
		{"no module tree", Options{Clonecd: bin, Modules: t.TempDir()}, "modules.dep"},
		{"missing program", Options{Clonecd: bin, Golden: golden, Programs: []string{"no-such-program"}}, "no-such-program"},
		{"bad busybox", Options{Clonecd: bin, Golden: golden, Busybox: dynamic}, "not a static"},
		{"missing busybox", Options{Clonecd: bin, Golden: golden, Busybox: "/nonexistent/busybox"}, "busybox: stat /nonexistent/busybox: no such file"},
		{"level 42", Options{Clonecd: bin, Golden: golden, Level: 42}, "gzip level 42: want 1 (fastest) to 9"},
		{"level -1", Options{Clonecd: bin, Golden: golden, Level: -1}, "gzip level -1"},
		{"missing extra", Options{Clonecd: bin, Golden: golden, ExtraFiles: map[string]string{"/etc/x": "/nonexistent/x"}}, "/nonexistent/x"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := Build(&bytes.Buffer{}, c.o)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %v, want one with %q", err, c.want)
			}
		})
	}
}

// TestBuildDirErrors: --from-dir that does not exist or is a file, a
// directory without /init and a gzip level out of range are refused, each
// saying which (usability I02, I09, I10).
func TestBuildDirErrors(t *testing.T) {
	rd := t.TempDir()
	os.WriteFile(filepath.Join(rd, "init"), []byte("#!/bin/sh\n"), 0o755)
	file := filepath.Join(rd, "init")
	for _, c := range []struct {
		name, dir string
		level     int
		want      string
	}{
		{"no such directory", filepath.Join(rd, "nodir"), 0, "directory " + filepath.Join(rd, "nodir") + ": stat"},
		{"a file", file, 0, file + " is not a directory"},
		{"no init", t.TempDir(), 0, "has no /init"},
		{"level 10", rd, 10, "gzip level 10"},
		{"level 42", rd, 42, "gzip level 42: want 1 (fastest) to 9 (smallest)"},
		{"default level", rd, 0, ""},
		{"level 1", rd, 1, ""},
	} {
		_, err := BuildDir(&bytes.Buffer{}, c.dir, Options{Level: c.level})
		if c.want == "" && err != nil || c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)) {
			t.Errorf("%s: BuildDir(%s, level %d) = %v; want %q", c.name, c.dir, c.level, err, c.want)
		}
	}
}

// TestFromDirRoundTrip is `make rdfs; make rd`: extract an initramfs, add
// a file, pack the directory, extract again: same tree plus the file.
func TestFromDirRoundTrip(t *testing.T) {
	testenv.NeedRoot(t)
	o := goldenOptions(t)
	o.NoModules = true
	img, _ := build(t, o)
	dir := extract(t, img)
	if err := os.WriteFile(filepath.Join(dir, "etc/added-by-admin"), []byte("new hardware\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "rd.img")
	f, _ := os.Create(p)
	if _, err := BuildDir(f, dir, Options{}); err != nil {
		t.Fatal(err)
	}
	f.Close()
	again := extract(t, p)
	if out, err := exec.Command("diff", "-r", "--no-dereference", "-x", "dev", dir, again).CombinedOutput(); err != nil {
		t.Errorf("trees differ after rdfs/rd: %v\n%s", err, out)
	}
	a, b := listing(t, img), listing(t, p)
	if !strings.Contains(b, "etc/added-by-admin") || !regexp.MustCompile(`crw------- .* 5, +1 .* dev/console`).MatchString(b) {
		t.Errorf("repacked listing lacks the added file or dev/console:\n%s", b)
	}
	if strings.Count(a, "\n")+1 != strings.Count(b, "\n") {
		t.Errorf("entries: %d built, %d repacked (want one more)", strings.Count(a, "\n"), strings.Count(b, "\n"))
	}
	if _, err := BuildDir(&bytes.Buffer{}, t.TempDir(), Options{}); err == nil || !strings.Contains(err.Error(), "no /init") {
		t.Errorf("BuildDir of a directory without init: %v", err)
	}
}

func TestVersionLess(t *testing.T) {
	vs := []string{"6.1.0-9-amd64", "6.1.0-50-amd64", "5.10.0-30-amd64", "6.10.0-1-amd64", "6.1.0-10-amd64"}
	sort.Slice(vs, func(i, j int) bool { return versionLess(vs[i], vs[j]) })
	if want := "5.10.0-30-amd64 6.1.0-9-amd64 6.1.0-10-amd64 6.1.0-50-amd64 6.10.0-1-amd64"; strings.Join(vs, " ") != want {
		t.Errorf("sorted %v, want %s", vs, want)
	}
}

// TestGoldenRootPrograms builds as the ISO builder does, programs from
// the golden root: what it lacks (mkfs.xfs, mkfs.vfat, sfdisk) comes from
// the build host when the libraries agree, and everything runs from the
// image alone.
func TestGoldenRootPrograms(t *testing.T) {
	testenv.NeedRoot(t)
	o := goldenOptions(t)
	o.Root = o.Golden
	o.NoModules = true
	img, s := build(t, o)
	have := map[string]bool{}
	for _, p := range s.Programs {
		have[p] = true
	}
	for _, p := range []string{"mke2fs", "mkfs.ext4", "e2fsck", "mkfs.xfs", "mkfs.vfat", "sfdisk"} {
		if !have[p] {
			t.Errorf("%s missing from the programs %v (missing: %v)", p, s.Programs, s.Missing)
		}
	}
	dir := extract(t, img)
	for _, c := range [][]string{{"/sbin/mke2fs", "-V"}, {"/sbin/mkfs.xfs", "-V"}, {"/sbin/sfdisk", "--version"}} {
		if out, err := exec.Command("chroot", append([]string{dir}, c...)...).CombinedOutput(); err != nil {
			t.Errorf("chroot %s: %v\n%s", strings.Join(c, " "), err, out)
		}
	}
	if !strings.Contains(listing(t, img), "etc/mke2fs.conf") {
		t.Error("no /etc/mke2fs.conf")
	}
}

// TestFirmwareAndExtraFiles: firmware named by an included module (tg3
// names tigon/tg3*.bin) is copied from the firmware tree, --no-firmware
// leaves it out, and extra files and directories land where asked.
func TestFirmwareAndExtraFiles(t *testing.T) {
	fw := t.TempDir()
	os.MkdirAll(filepath.Join(fw, "tigon"), 0o755)
	os.WriteFile(filepath.Join(fw, "tigon/tg3.bin"), []byte("firmware"), 0o644)
	os.WriteFile(filepath.Join(fw, "unrelated.bin"), []byte("x"), 0o644)
	extra := t.TempDir()
	os.MkdirAll(filepath.Join(extra, "tree/sub"), 0o755)
	os.WriteFile(filepath.Join(extra, "tree/sub/f"), []byte("f"), 0o644)
	os.WriteFile(filepath.Join(extra, "conf"), []byte("c"), 0o600)
	o := goldenOptions(t)
	o.Firmware = fw
	o.ExtraFiles = map[string]string{"/etc/extra.conf": filepath.Join(extra, "conf"), "/opt/tree": filepath.Join(extra, "tree")}
	img, s := build(t, o)
	list := listing(t, img)
	for _, want := range []string{"lib/firmware/tigon/tg3.bin", "etc/extra.conf", "opt/tree/sub/f"} {
		if !strings.Contains(list, want) {
			t.Errorf("image lacks %s", want)
		}
	}
	if strings.Contains(list, "unrelated.bin") {
		t.Error("firmware no module names was copied")
	}
	if s.Firmware != 1 || len(s.FirmwareMiss) == 0 {
		t.Errorf("Summary: %d firmware, %d missing; want 1 and some missing", s.Firmware, len(s.FirmwareMiss))
	}
	o.NoFirmware = true
	o.ExtraFiles = nil
	img, s = build(t, o)
	if strings.Contains(listing(t, img), "lib/firmware") || s.Firmware != 0 {
		t.Errorf("--no-firmware: %d firmware files", s.Firmware)
	}
}
