package pxe

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/clonecd/clonecd/internal/atomicfile"
)

// Boot file names, as served over TFTP and HTTP from BootDir.
const (
	FileBIOS = "undionly.kpxe" // iPXE for a BIOS PXE ROM (UNDI)
	FileUEFI = "snponly.efi"   // iPXE for UEFI through the firmware's network driver
	FileIPXE = "ipxe.efi"      // iPXE for UEFI with its own drivers (kept for NICs without SNP)
	FileShim = "shimx64.efi"   // Debian's shim, signed by Microsoft: the Secure Boot chain's first stage
	FileGrub = "grubx64.efi"   // Debian's signed network GRUB; shim loads this name from its own directory
)

// BootFile is one boot program and where Debian installs it.
type BootFile struct {
	Name    string // in BootDir
	Source  string // on the master
	Package string // the Debian package that ships Source
}

// BootFiles are what CopyBootFiles copies: iPXE from Debian's ipxe
// package, the Secure Boot chain from shim-signed and
// grub-efi-amd64-signed (the network image grubnetx64, under the name
// shim asks for). They are copied from the master's packages, never
// downloaded.
var BootFiles = []BootFile{
	{FileBIOS, "/usr/lib/ipxe/undionly.kpxe", "ipxe"},
	{FileUEFI, "/usr/lib/ipxe/snponly.efi", "ipxe"},
	{FileIPXE, "/usr/lib/ipxe/ipxe.efi", "ipxe"},
	{FileShim, "/usr/lib/shim/shimx64.efi.signed", "shim-signed"},
	{FileGrub, "/usr/lib/grub/x86_64-efi-signed/grubnetx64.efi.signed", "grub-efi-amd64-signed"},
}

// CopyBootFiles copies BootFiles into dir (made 0755 if missing), each
// written atomically, and returns the names it copied. A missing source
// is not an error while another file is there: the missing ones are
// named in the returned error's text only when none could be copied, and
// listed in missing otherwise, so that publish can warn ("PXE for UEFI
// Secure Boot needs shim-signed") and go on.
func CopyBootFiles(dir string, files []BootFile) (copied []string, missing []BootFile, err error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, nil, err
	}
	for _, f := range files {
		b, err := os.ReadFile(f.Source)
		if errors.Is(err, fs.ErrNotExist) {
			missing = append(missing, f)
			continue
		}
		if err != nil {
			return copied, missing, err
		}
		if err := atomicfile.WriteFile(filepath.Join(dir, f.Name), b, 0o644); err != nil {
			return copied, missing, err
		}
		copied = append(copied, f.Name)
	}
	if len(copied) == 0 && len(missing) > 0 {
		return nil, missing, fmt.Errorf("no PXE boot files: %s not found (install package %s)", missing[0].Source, missing[0].Package)
	}
	return copied, missing, nil
}
