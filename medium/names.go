package medium

import (
	"errors"
	"fmt"
	"io/fs"
	"path"
	"strings"
)

// The files of a medium, by their relative names.
const (
	Version       = "CLONE_CD_VERSION"
	ImageGzip     = "node.cpio.gz"
	ImageZstd     = "node.cpio.zst"
	Layout        = "node.sfdisk"
	Kickstart     = "ks.cfg"
	Nodes         = "nodes"
	Conf          = "clonecd.conf"
	Kernel        = "isolinux/vmlinuz"
	Initrd        = "isolinux/initrd.img"
	Files         = "node.files"
	Torrent       = "node.torrent"
	ManifestFile  = "MANIFEST"
	SignatureFile = "MANIFEST.minisig"

	// Credentials is a clone CD's extra initramfs with the tokens of the
	// nodes in its nodes table (package trust: CredentialsInitrd). It is
	// never a file of a version: IsFile refuses it, so no server serves it.
	Credentials = "isolinux/credentials.img"

	// SumSuffix names an image's sha256 file: node.cpio.gz.sha256.
	SumSuffix = ".sha256"

	// BootDir holds a version's network boot programs (package pxe
	// serves them over TFTP and HTTP, by their base names).
	BootDir = "pxe"
)

// BootFiles are the network boot programs a version may carry, copied
// by publish from the master's Debian packages (package pxe's BootFiles
// names them): iPXE for BIOS and UEFI, Debian's signed shim and network
// GRUB for Secure Boot.
var BootFiles = []string{BootDir + "/undionly.kpxe", BootDir + "/snponly.efi", BootDir + "/ipxe.efi",
	BootDir + "/shimx64.efi", BootDir + "/grubx64.efi"}

// Images are the image names a medium may hold, the preferred first.
var Images = []string{ImageGzip, ImageZstd}

// Optional are the files a version may lack.
var Optional = append([]string{Kickstart, Nodes, Conf, Kernel, Initrd, Files, Torrent}, BootFiles...)

// SumName is the sha256 file of name (node.cpio.gz.sha256).
func SumName(name string) string { return name + SumSuffix }

// IsImage reports whether name is one of Images.
func IsImage(name string) bool {
	for _, n := range Images {
		if n == name {
			return true
		}
	}
	return false
}

// FindImage returns the name of the image fsys holds (node.cpio.gz, else
// node.cpio.zst).
func FindImage(fsys fs.FS) (string, error) {
	for _, n := range Images {
		if _, err := fs.Stat(fsys, n); err == nil {
			return n, nil
		} else if !errors.Is(err, fs.ErrNotExist) {
			return "", err
		}
	}
	return "", fmt.Errorf("no image (%s): %w", strings.Join(Images, " or "), fs.ErrNotExist)
}

// CheckImageName refuses a file name for image (one of Images) whose
// compression suffix says the other compression: node.cpio.gz for a zstd
// image, x.zst for a gzip one. Names without .gz, .zst or .zstd pass.
func CheckImageName(file, image string) error {
	ext := path.Ext(file)
	want := path.Ext(image)
	switch ext {
	case ".gz", ".zst", ".zstd":
	default:
		return nil
	}
	if ext == want || ext == ".zstd" && want == ".zst" {
		return nil
	}
	return fmt.Errorf("%s: a %s name for the image %s: name it %s", file, ext, image, strings.TrimSuffix(file, ext)+want)
}

// ValidName reports whether name may be a file of a medium (and a line of
// a manifest): relative, slash separated, components of [A-Za-z0-9._+-],
// none empty, "." or "..".
func ValidName(name string) error {
	if name == "" {
		return errors.New("empty file name")
	}
	if len(name) > 255 {
		return fmt.Errorf("file name %.40q... is longer than 255 bytes", name)
	}
	for _, c := range strings.Split(name, "/") {
		if c == "" || c == "." || c == ".." {
			return fmt.Errorf("file name %q: empty, \".\" or \"..\" component", name)
		}
		for _, r := range c {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("._+-", r)) {
				return fmt.Errorf("file name %q: character %q not allowed", name, r)
			}
		}
	}
	return nil
}

// IsFile reports whether name is a file a version may hold, which is
// what a server serves of it: Version, an image or its sha256 file,
// Layout, one of Optional, ManifestFile or SignatureFile.
func IsFile(name string) bool {
	switch name {
	case Version, Layout, ManifestFile, SignatureFile:
		return true
	}
	for _, n := range Images {
		if name == n || name == SumName(n) {
			return true
		}
	}
	for _, n := range Optional {
		if name == n {
			return true
		}
	}
	return false
}
