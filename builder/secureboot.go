package builder

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/clonecd/clonecd/internal/atomicfile"
)

// The Secure Boot chain is Debian's: shim signed by Microsoft (package
// shim-signed), GRUB signed by Debian (grub-efi-amd64-signed), and the
// Debian-signed kernel; shim checks GRUB, GRUB asks shim to check the
// kernel. The initramfs is not checked, so ours needs no signature.
//
// How Debian's signed GRUB finds its configuration (read from the images'
// embedded memdisk): grubx64.efi.signed has prefix /EFI/debian on the
// device it was loaded from and runs
//
//	if [ -z "$prefix" -o ! -e "$prefix" ]; then
//		if ! search --file --set=root /.disk/info; then
//			search --file --set=root /.disk/mini-info
//		fi
//		set prefix=($root)/boot/grub
//	fi
//	if [ -e $prefix/x86_64-efi/grub.cfg ]; then source $prefix/x86_64-efi/grub.cfg
//	elif [ -e $prefix/grub.cfg ]; then source $prefix/grub.cfg
//	else source $cmdpath/grub.cfg; fi
//
// Booted from a CD's El Torito image, GRUB's device is the CD, which has no
// /EFI/debian: it finds the ISO by /.disk/info and sources
// /boot/grub/grub.cfg there. Booted from a USB stick (the hybrid MBR's
// partition 2 is the ESP), its device is the ESP, which has
// /EFI/debian/grub.cfg. The ISO carries our menu in both places. The
// network image grubnetx64.efi.signed has prefix /grub on the TFTP server
// (package pxe serves it). shim loads grubx64.efi from its own directory.
var (
	ShimSigned = "/usr/lib/shim/shimx64.efi.signed"
	GrubSigned = "/usr/lib/grub/x86_64-efi-signed/grubx64.efi.signed"
)

// Paths of the signed chain on an ESP and on the ISO.
const (
	espBoot       = "EFI/BOOT/BOOTX64.EFI" // the removable path: shim
	espGrub       = "EFI/BOOT/grubx64.efi" // what shim loads next
	espDebianCfg  = "EFI/debian/grub.cfg"  // the signed GRUB's prefix on the ESP
	isoDiskInfo   = ".disk/info"           // how the signed GRUB finds the CD
	isoGrubConfig = "boot/grub/grub.cfg"   // and its configuration there
)

// ErrNoSignedChain says the build host lacks the signed boot loaders.
var ErrNoSignedChain = errors.New("Secure Boot needs " + ShimSigned + " and " + GrubSigned + ": install shim-signed and grub-efi-amd64-signed, or build without Secure Boot")

// SignedChainAvailable reports whether the build host has shim-signed
// and grub-efi-amd64-signed.
func SignedChainAvailable() bool {
	for _, p := range []string{ShimSigned, GrubSigned} {
		if _, err := os.Stat(p); err != nil {
			return false
		}
	}
	return true
}

// SecureBootLoader returns the ESP files and the ISO files of the signed
// UEFI chain that boots menu cfg: shim as EFI/BOOT/BOOTX64.EFI, Debian's
// signed GRUB beside it as grubx64.efi, and cfg where that GRUB looks
// (see above). version goes into /.disk/info.
func SecureBootLoader(cfg, version string) (esp, iso map[string][]byte, err error) {
	shim, err := os.ReadFile(ShimSigned)
	if err != nil {
		return nil, nil, ErrNoSignedChain
	}
	grub, err := os.ReadFile(GrubSigned)
	if err != nil {
		return nil, nil, ErrNoSignedChain
	}
	esp = map[string][]byte{espBoot: shim, espGrub: grub, espDebianCfg: []byte(cfg)}
	iso = map[string][]byte{isoDiskInfo: []byte("clonecd " + version + "\n"), isoGrubConfig: []byte(cfg)}
	return esp, iso, nil
}

// uefiLoader is Build's UEFI step: the ESP's files, and files for the
// ISO's own tree (the signed chain's configuration), by o.SecureBoot.
func uefiLoader(o Options, menu Menu, scratch string) (esp, iso map[string][]byte, err error) {
	if o.SecureBoot {
		return SecureBootLoader(menu.Grub(), o.Version)
	}
	efi, err := GrubEFI(menu.Grub(), scratch)
	if err != nil {
		return nil, nil, err
	}
	return map[string][]byte{espBoot: efi}, nil, nil
}

// Signed chain sources inside a golden (or cloned) root: Debian's
// shim-signed and grub-efi-amd64-signed install them here.
const (
	rootShim = "usr/lib/shim/shimx64.efi.signed"
	rootGrub = "usr/lib/grub/x86_64-efi-signed/grubx64.efi.signed"
	rootMok  = "usr/lib/shim/mmx64.efi.signed"
)

// HasSignedChain reports whether root (a cloned node's root) has
// shim-signed and grub-efi-amd64-signed installed.
func HasSignedChain(root *os.Root) bool {
	for _, p := range []string{rootShim, rootGrub} {
		if st, err := root.Stat(p); err != nil || !st.Mode().IsRegular() {
			return false
		}
	}
	return true
}

// InstallSignedChain is the clone's bootloader step for Secure Boot, run
// after grub-install and update-grub when HasSignedChain(root): it puts
// the root's own shim on the ESP's removable path (EFI/BOOT/BOOTX64.EFI),
// the root's signed GRUB beside it (EFI/BOOT/grubx64.efi, replacing
// grub-install's unsigned one), MokManager when the root has it, and
// EFI/debian/grub.cfg, which sends the signed GRUB (prefix /EFI/debian)
// to the root filesystem's /boot/grub/grub.cfg by its UUID, as Debian's
// grub-install does. Every file is read through root and written through
// esp (os.Root: an image cannot point them elsewhere), atomically. It
// returns the ESP paths it wrote.
func InstallSignedChain(root, esp *os.Root, rootUUID string) ([]string, error) {
	if rootUUID == "" {
		return nil, errors.New("signed chain: no UUID of the root filesystem")
	}
	files := []struct{ src, dst string }{{rootShim, espBoot}, {rootGrub, espGrub}}
	if st, err := root.Stat(rootMok); err == nil && st.Mode().IsRegular() {
		files = append(files, struct{ src, dst string }{rootMok, "EFI/BOOT/mmx64.efi"})
	}
	var wrote []string
	for _, f := range files {
		b, err := fs.ReadFile(root.FS(), f.src)
		if err != nil {
			return wrote, fmt.Errorf("signed chain: %w", err)
		}
		if err := esp.MkdirAll(filepath.Dir(f.dst), 0o755); err != nil {
			return wrote, fmt.Errorf("signed chain: ESP %s: %w", filepath.Dir(f.dst), err)
		}
		if err := atomicfile.WriteFileIn(esp, f.dst, b, 0o644); err != nil {
			return wrote, fmt.Errorf("signed chain: ESP %s: %w", f.dst, err)
		}
		wrote = append(wrote, f.dst)
	}
	cfg := fmt.Sprintf("search.fs_uuid %s root\nset prefix=($root)'/boot/grub'\nconfigfile $prefix/grub.cfg\n", rootUUID)
	if err := esp.MkdirAll(filepath.Dir(espDebianCfg), 0o755); err != nil {
		return wrote, fmt.Errorf("signed chain: ESP %s: %w", filepath.Dir(espDebianCfg), err)
	}
	if err := atomicfile.WriteFileIn(esp, espDebianCfg, []byte(cfg), 0o644); err != nil {
		return wrote, fmt.Errorf("signed chain: ESP %s: %w", espDebianCfg, err)
	}
	return append(wrote, espDebianCfg), nil
}
