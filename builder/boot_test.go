package builder

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/clonecd/clonecd/internal/testenv"
	"github.com/clonecd/clonecd/internal/vm"
)

// TestBootISO builds a probe ISO with `clonecd build` (the real binary,
// its own initramfs, the build host's kernel) and boots the same file
// four ways under QEMU TCG: a CD on IDE under SeaBIOS, a USB disk under
// SeaBIOS (isohybrid MBR), a CD under OVMF (El Torito EFI entry, GRUB) and
// a USB disk under OVMF (ESP as MBR partition 2).
// Each boot must reach clonecd's init, which lists the drivers it loaded,
// finds and mounts the media and checks node.cpio.gz against its sha256.
func TestBootISO(t *testing.T) {
	testenv.NeedTools(t, "qemu-system-x86_64", "xorriso", "sfdisk", "cpio", "grub-mkstandalone")
	bin := testenv.Clonecd(t)
	dir := t.TempDir()
	image, layout, nodes := inputs(t, dir)
	iso := filepath.Join(dir, "probe.iso")
	out := testenv.Run(t, bin, "build", "--image", image, "--layout", layout, "--version", "1.19", "--nodes", nodes,
		"--server", "http://10.0.2.2:8080", "--append", "clonecd.mode=probe", "-o", iso)
	t.Logf("clonecd build:\n%s", out)
	for _, re := range []string{`label CLONECD_1_19, version 1\.19`, `kernel +/boot/vmlinuz-\S+ \(\S+\)`,
		`initramfs +[0-9.]+ MiB compressed, [1-9][0-9]* modules, [0-9]+ firmware files`} {
		if !regexp.MustCompile(re).MatchString(out) {
			t.Errorf("summary lacks %s", re)
		}
	}
	checkISO(t, iso, "CLONECD_1_19", true)
	media := filepath.Join(dir, "media")
	testenv.Run(t, "xorriso", "-osirrox", "on", "-indev", iso, "-extract", "/", media)
	for name, want := range map[string]string{
		"CLONE_CD_VERSION":    "1.19\n",
		"node.cpio.gz.sha256": fileSum(t, image) + "  node.cpio.gz\n",
		"clonecd.conf":        "version=1.19\nserver=http://10.0.2.2:8080\n",
		"nodes":               "52:54:00:12:34:56 s001",
		"node.sfdisk":         "# clonecd: part=2 fs=ext4 mount=/data",
		"isolinux/isolinux.cfg": "label clone-net\n  kernel /isolinux/vmlinuz\n  append initrd=/isolinux/initrd.img " +
			Console + " clonecd.mode=net clonecd.server=http://10.0.2.2:8080 clonecd.mode=probe",
	} {
		b, err := os.ReadFile(filepath.Join(media, name))
		if err != nil || !strings.Contains(string(b), want) {
			t.Errorf("media /%s = %q, %v; want it to hold %q", name, b, err, want)
		}
	}
	usb := filepath.Join(dir, "usb.img")
	testenv.Run(t, "cp", iso, usb)
	usb2 := filepath.Join(dir, "usb2.img")
	testenv.Run(t, "cp", iso, usb2)

	for _, c := range []struct {
		name    string
		o       vm.Options
		loader  string // boot loader marker
		drivers []string
		timeout time.Duration
	}{
		{"bios-cd-ide", vm.Options{CDROM: iso}, `ISOLINUX \d`, []string{"ata_piix", "sr_mod"}, 6 * time.Minute},
		{"bios-usb", vm.Options{Disks: []vm.Disk{{Path: usb, Bus: "usb"}}}, `ISOLINUX \d`, []string{"xhci_pci", "usb_storage"}, 6 * time.Minute},
		{"uefi-cd", vm.Options{UEFI: true, CDROM: iso}, `Booting .clone.`, []string{"ata_piix", "sr_mod"}, 12 * time.Minute},
		// dd to a USB stick boots both ways: UEFI finds the ESP by MBR partition 2
		{"uefi-usb", vm.Options{UEFI: true, Disks: []vm.Disk{{Path: usb2, Bus: "usb"}}}, `Booting .clone.`, []string{"xhci_pci", "usb_storage"}, 12 * time.Minute},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			c.o.Name, c.o.NIC = c.name, "none"
			log, _ := os.Create(filepath.Join(dir, c.name+".log"))
			defer log.Close()
			c.o.Log = log
			v, err := vm.Start(c.o)
			if err != nil {
				t.Fatal(err)
			}
			defer v.Kill()
			for _, want := range []string{c.loader, `Command line: .*clonecd\.mode=probe`} {
				if _, err := v.Expect(want, c.timeout); err != nil {
					t.Fatal(err)
				}
			}
			line, err := v.Expect(`clonecd: drivers loaded: [^\r\n]*[\r\n]`, c.timeout)
			if err != nil {
				t.Fatal(err)
			}
			for _, d := range c.drivers {
				if !regexp.MustCompile(`\b` + d + `\b`).MatchString(line) {
					t.Errorf("driver %s not loaded: %s", d, line)
				}
			}
			if _, err := v.Expect(`clonecd: media OK: node\.cpio\.gz sha256 matches`, c.timeout); err != nil {
				t.Fatal(err)
			}
			if err := v.Wait(2 * time.Minute); err != nil {
				t.Errorf("no power-off after the probe: %v", err)
			}
		})
	}
}

// TestMakeWorkflow runs the repository Makefile's clonecd.iso recipe the
// Medusa way: node.cpio.gz, node.sfdisk and CLONE_CD_VERSION in a
// directory, `make` there builds clonecd.iso. (GO=true: the binary is
// prebuilt by testenv.)
func TestMakeWorkflow(t *testing.T) {
	testenv.NeedTools(t, "make", "xorriso", "sfdisk", "cpio", "grub-mkstandalone")
	bin := testenv.Clonecd(t)
	dir := t.TempDir()
	inputs(t, dir)
	os.WriteFile(filepath.Join(dir, "CLONE_CD_VERSION"), []byte("1.20\n"), 0o644)
	cmd := exec.Command("make", "-f", filepath.Join(testenv.RepoRoot(), "Makefile"), "clonecd.iso", "GO=true", "BIN="+bin)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("make clonecd.iso: %v\n%s", err, out)
	}
	t.Logf("make:\n%s", out)
	checkISO(t, filepath.Join(dir, "clonecd.iso"), "CLONECD_1_20", true)
}

// TestBuildGolden builds with --root GOLDEN: the golden root's kernel and
// its modules, not the build host's.
func TestBuildGolden(t *testing.T) {
	golden := testenv.GoldenRoot(t)
	testenv.NeedTools(t, "xorriso", "cpio", "grub-mkstandalone")
	bin := testenv.Clonecd(t)
	dir := t.TempDir()
	image, layout, _ := inputs(t, dir)
	want, err := DefaultKernel(golden)
	if err != nil {
		t.Fatal(err)
	}
	kver, _ := KernelFileVersion(want)
	iso := filepath.Join(dir, "golden.iso")
	out := testenv.Run(t, bin, "build", "--root", golden, "--image", image, "--layout", layout, "--version", "1.19", "--no-uefi", "-o", iso)
	if !strings.Contains(out, want+" ("+kver+")") || !regexp.MustCompile(`[1-9][0-9]* modules`).MatchString(out) {
		t.Errorf("summary does not name the golden kernel %s (%s) with modules:\n%s", want, kver, out)
	}
	checkISO(t, iso, "CLONECD_1_19", false)
}
