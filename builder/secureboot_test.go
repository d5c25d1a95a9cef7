package builder

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/clonecd/clonecd/internal/testenv"
)

// TestSecureBootISO: Build with SecureBoot puts Debian's signed shim on
// the ESP's removable path, the signed GRUB beside it, and the menu where
// that GRUB looks: ESP EFI/debian/grub.cfg (USB) and the ISO's
// /boot/grub/grub.cfg, found by /.disk/info (CD).
func TestSecureBootISO(t *testing.T) {
	testenv.NeedTools(t, "xorriso", "mtype", "fsck.vfat")
	if !SignedChainAvailable() {
		testenv.Missing(t, "%v", ErrNoSignedChain)
	}
	dir := t.TempDir()
	image, layout, nodes := inputs(t, dir)
	kernel := filepath.Join(dir, "vmlinuz")
	k, err := DefaultKernel(testenv.GoldenRoot(t))
	if err != nil {
		t.Fatal(err)
	}
	testenv.Run(t, "cp", k, kernel)
	initrd := filepath.Join(dir, "initrd.img")
	os.WriteFile(initrd, []byte("not an initramfs: never booted here"), 0o644)
	iso := filepath.Join(dir, "sb.iso")
	if _, err := Build(Options{Output: iso, Image: image, Layout: layout, Nodes: nodes, Version: "1.20", Kernel: kernel,
		Initrd: initrd, SecureBoot: true, Quiet: true}); err != nil {
		t.Fatal(err)
	}
	esp := filepath.Join(dir, "efi.img")
	testenv.Run(t, "xorriso", "-osirrox", "on", "-indev", iso, "-extract", "/"+ESPPath, esp,
		"-extract", "/.disk/info", filepath.Join(dir, "info"), "-extract", "/boot/grub/grub.cfg", filepath.Join(dir, "iso-grub.cfg"))
	testenv.Run(t, "fsck.vfat", "-n", esp)
	shim, _ := os.ReadFile(ShimSigned)
	grub, _ := os.ReadFile(GrubSigned)
	menu := Menu{Version: "1.20"}.Grub()
	for _, tt := range []struct {
		path string
		want []byte
	}{{"EFI/BOOT/BOOTX64.EFI", shim}, {"EFI/BOOT/grubx64.efi", grub}, {"EFI/debian/grub.cfg", []byte(menu)}} {
		got := []byte(testenv.Run(t, "mtype", "-i", esp, "::/"+tt.path))
		if !bytes.Equal(got, tt.want) {
			t.Errorf("ESP %s: %d bytes, want %d bytes of the signed chain", tt.path, len(got), len(tt.want))
		}
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "iso-grub.cfg")); string(b) != menu {
		t.Errorf("ISO /boot/grub/grub.cfg:\n%s\nwant the menu", b)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "info")); !strings.Contains(string(b), "1.20") {
		t.Errorf("ISO /.disk/info = %q", b)
	}
}

// TestInstallSignedChain: a root with shim-signed and
// grub-efi-amd64-signed gets them on its ESP's removable path, and the
// signed GRUB's prefix config points at the root by UUID; a root without
// them is told apart; an image's symlink cannot redirect a write.
func TestInstallSignedChain(t *testing.T) {
	rootDir, espDir := t.TempDir(), t.TempDir()
	for p, body := range map[string]string{rootShim: "SHIM", rootGrub: "GRUB", rootMok: "MOK"} {
		os.MkdirAll(filepath.Join(rootDir, filepath.Dir(p)), 0o755)
		os.WriteFile(filepath.Join(rootDir, p), []byte(body), 0o644)
	}
	outside := t.TempDir()
	os.Symlink(outside, filepath.Join(espDir, "EFI")) // a hostile ESP: EFI -> elsewhere
	root, _ := os.OpenRoot(rootDir)
	defer root.Close()
	esp, _ := os.OpenRoot(espDir)
	defer esp.Close()
	if !HasSignedChain(root) {
		t.Fatal("HasSignedChain = false; want true")
	}
	if _, err := InstallSignedChain(root, esp, "1234-ABCD"); err == nil {
		t.Errorf("InstallSignedChain through a symlink leaving the ESP = nil; want an error")
	}
	if ents, _ := os.ReadDir(outside); len(ents) > 0 {
		t.Fatalf("InstallSignedChain wrote outside the ESP: %v", ents)
	}
	os.Remove(filepath.Join(espDir, "EFI"))
	wrote, err := InstallSignedChain(root, esp, "1234-ABCD")
	if err != nil {
		t.Fatal(err)
	}
	for p, want := range map[string]string{"EFI/BOOT/BOOTX64.EFI": "SHIM", "EFI/BOOT/grubx64.efi": "GRUB", "EFI/BOOT/mmx64.efi": "MOK"} {
		if b, _ := os.ReadFile(filepath.Join(espDir, p)); string(b) != want {
			t.Errorf("ESP %s = %q; want %q", p, b, want)
		}
	}
	cfg, _ := os.ReadFile(filepath.Join(espDir, "EFI/debian/grub.cfg"))
	if !strings.Contains(string(cfg), "search.fs_uuid 1234-ABCD root") || !strings.Contains(string(cfg), "configfile $prefix/grub.cfg") {
		t.Errorf("EFI/debian/grub.cfg:\n%s", cfg)
	}
	if len(wrote) != 4 {
		t.Errorf("InstallSignedChain wrote %v", wrote)
	}
	bare, _ := os.OpenRoot(t.TempDir())
	defer bare.Close()
	if HasSignedChain(bare) {
		t.Errorf("HasSignedChain(a root without shim-signed) = true")
	}
}
