package builder

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"sort"

	"github.com/diskfs/go-diskfs/backend/file"
	"github.com/diskfs/go-diskfs/filesystem/fat16"
)

// GrubModules are the GRUB modules put into the standalone UEFI loader's
// memdisk (with their dependencies): enough to find the ISO, show the menu
// on the serial console and boot Linux.
var GrubModules = []string{"normal", "configfile", "echo", "test", "sleep", "halt", "reboot",
	"linux", "gzio", "iso9660", "udf", "fat", "part_msdos", "part_gpt",
	"search", "search_fs_file", "search_label", "serial", "terminal", "all_video", "efi_gop"}

// GrubEFIDir is where grub-efi-amd64-bin keeps the x86_64-efi modules.
const GrubEFIDir = "/usr/lib/grub/x86_64-efi"

// ErrNoGrubEFI says the build host cannot make the UEFI loader.
var ErrNoGrubEFI = errors.New("grub-mkstandalone with x86_64-efi modules not found: install grub-efi-amd64-bin and grub-common, or build with --no-uefi")

// GrubEFI builds BOOTX64.EFI: a `grub-mkstandalone -O x86_64-efi` image
// with cfg embedded as its grub.cfg. It takes about 0.1 s, so it is not
// cached. tmp is a scratch directory.
func GrubEFI(cfg, tmp string) ([]byte, error) {
	tool, err := exec.LookPath("grub-mkstandalone")
	if err != nil {
		return nil, ErrNoGrubEFI
	}
	if _, err := os.Stat(filepath.Join(GrubEFIDir, "linux.mod")); err != nil {
		return nil, ErrNoGrubEFI
	}
	cfgPath := filepath.Join(tmp, "grub.cfg")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		return nil, err
	}
	out := filepath.Join(tmp, "BOOTX64.EFI")
	mods := ""
	for i, m := range GrubModules {
		if i > 0 {
			mods += " "
		}
		mods += m
	}
	cmd := exec.Command(tool, "-O", "x86_64-efi", "-o", out,
		"--install-modules="+mods, "--modules=part_msdos part_gpt iso9660 search serial terminal",
		"--locales=", "--fonts=", "--themes=", "boot/grub/grub.cfg="+cfgPath)
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	if b, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("grub-mkstandalone: %w\n%s", err, b)
	}
	return os.ReadFile(out)
}

// WriteESP creates a FAT16 EFI system partition image at p holding files
// (paths like EFI/BOOT/BOOTX64.EFI). FAT16 because go-diskfs' FAT32
// fails fsck.vfat; the image is at least 8 MiB (FAT16's cluster minimum)
// with room to spare. It returns the image size.
func WriteESP(p string, files map[string][]byte) (int64, error) {
	var need int64
	for _, b := range files {
		need += int64(len(b)) + 4096
	}
	size := need + need/4 + 1<<20
	size = (size + 1<<20 - 1) &^ (1<<20 - 1)
	if size < 8<<20 {
		size = 8 << 20
	}
	os.Remove(p)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return 0, fmt.Errorf("ESP image: %w", err)
	}
	b, err := file.CreateFromPath(p, size)
	if err != nil {
		return 0, fmt.Errorf("ESP image: %w", err)
	}
	fsys, err := fat16.Create(b, size, 0, 512, "CLONECD_EFI", false)
	if err != nil {
		b.Close()
		return 0, fmt.Errorf("ESP image %s: %w", p, err)
	}
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		name := "/" + n
		if err := fsys.Mkdir(path.Dir(name)); err != nil {
			b.Close()
			return 0, fmt.Errorf("ESP image %s: mkdir %s: %w", p, path.Dir(name), err)
		}
		f, err := fsys.OpenFile(name, os.O_CREATE|os.O_RDWR)
		if err != nil {
			b.Close()
			return 0, fmt.Errorf("ESP image %s: %s: %w", p, name, err)
		}
		if _, err := f.Write(files[n]); err != nil {
			f.Close()
			b.Close()
			return 0, fmt.Errorf("ESP image %s: writing %s: %w", p, name, err)
		}
		if err := f.Close(); err != nil {
			b.Close()
			return 0, fmt.Errorf("ESP image %s: %s: %w", p, name, err)
		}
	}
	if err := b.Close(); err != nil {
		return 0, fmt.Errorf("ESP image %s: %w", p, err)
	}
	if err := freeCluster2(p); err != nil {
		return 0, fmt.Errorf("ESP image %s: %w", p, err)
	}
	return size, nil
}

// freeCluster2 undoes a go-diskfs v1.9.4 FAT16 quirk: Create marks cluster
// 2 as end-of-chain for a FAT32-style root directory, but FAT16 keeps its
// root directory outside the data area, so nothing references cluster 2
// and fsck.vfat reports it ("Reclaimed 1 unused cluster"). Only a cluster
// 2 holding a bare end-of-chain mark is freed.
func freeCluster2(p string) error {
	f, err := os.OpenFile(p, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	bs := make([]byte, 512)
	if _, err := f.ReadAt(bs, 0); err != nil {
		return err
	}
	if string(bs[54:62]) != "FAT16   " {
		return fmt.Errorf("not a FAT16 image")
	}
	bps := int64(binary.LittleEndian.Uint16(bs[11:13]))
	reserved := int64(binary.LittleEndian.Uint16(bs[14:16]))
	fats := int64(bs[16])
	spf := int64(binary.LittleEndian.Uint16(bs[22:24]))
	for i := int64(0); i < fats; i++ {
		off := (reserved+i*spf)*bps + 2*2
		e := make([]byte, 2)
		if _, err := f.ReadAt(e, off); err != nil {
			return err
		}
		if binary.LittleEndian.Uint16(e) >= 0xfff8 {
			if _, err := f.WriteAt([]byte{0, 0}, off); err != nil {
				return err
			}
		}
	}
	return f.Close()
}
