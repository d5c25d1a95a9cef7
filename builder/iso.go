package builder

import (
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/diskfs/go-diskfs/backend/file"
	"github.com/diskfs/go-diskfs/filesystem/iso9660"
	"github.com/diskfs/go-diskfs/partition/mbr"
)

// Why go-diskfs: github.com/kdomanski/iso9660 (v0.4.0) cannot make a
// bootable ISO — no El Torito, no Rock Ridge, fixed layout, and it renames
// node.cpio.gz to node_cpio.gz. go-diskfs' iso9660 writes El Torito with a
// patched boot info table and Rock Ridge names; we keep Joliet off (with
// it the boot record moves and SeaBIOS refuses the CD) and write the
// isohybrid MBR ourselves (go-diskfs leaves sectors 0-15 zero).

// ISOOptions says how to write an ISO from a staged tree.
type ISOOptions struct {
	VolumeID    string // at most 32 characters A-Z 0-9 _ (see VolumeID)
	BIOSBoot    string // no-emulation boot image in the tree, e.g. isolinux/isolinux.bin; "" = none
	BootCatalog string // default isolinux/boot.cat (next to BIOSBoot)
	EFIBoot     string // FAT ESP image in the tree, e.g. boot/grub/efi.img; "" = none
	// Hybrid writes an isohybrid MBR (needs BIOSBoot and an isolinux
	// built for it) so that the file, written to a disk, boots.
	Hybrid bool
	// MBRCode is the 432-byte isohybrid boot code; default IsohdpfxPath.
	MBRCode []byte
	// DiskID is the MBR disk signature; 0 picks one from the clock.
	DiskID uint32
	// Progress, if not nil, is called with the bytes written so far while
	// the ISO is written (from another goroutine).
	Progress func(written int64)
}

// IsohdpfxPath is syslinux's isohybrid MBR boot code on Debian (package isolinux).
const IsohdpfxPath = "/usr/lib/ISOLINUX/isohdpfx.bin"

// ISOInfo describes a written ISO.
type ISOInfo struct {
	Size    int64       // bytes of the output file (padded to 1 MiB when hybrid)
	Volume  int64       // bytes the ISO 9660 volume occupies
	Files   int         // regular files
	Payload int64       // their total size
	Boot    []BootEntry // the El Torito catalog as written
}

// WriteISO writes the tree dir as an ISO 9660 image (Rock Ridge, El Torito
// per o) to out. dir must be a fresh workspace (see Stage): it is consumed
// (deleted), on success and on failure. out is replaced only when the
// whole ISO is written.
func WriteISO(dir, out string, o ISOOptions) (info *ISOInfo, err error) {
	defer os.RemoveAll(dir)
	files, payload, err := checkTree(dir)
	if err != nil {
		return nil, err
	}
	if o.VolumeID == "" {
		o.VolumeID = "CLONECD"
	}
	if len(o.VolumeID) > 32 {
		return nil, fmt.Errorf("volume label %q is longer than 32 characters", o.VolumeID)
	}
	var mbrCode []byte
	if o.Hybrid {
		if o.BIOSBoot == "" {
			return nil, fmt.Errorf("isohybrid needs a BIOS boot image")
		}
		mbrCode = o.MBRCode
		if mbrCode == nil {
			if mbrCode, err = os.ReadFile(IsohdpfxPath); err != nil {
				return nil, fmt.Errorf("isohybrid MBR code: %w (install package isolinux)", err)
			}
		}
		if len(mbrCode) < 432 {
			return nil, fmt.Errorf("isohybrid MBR code is %d bytes, want 432", len(mbrCode))
		}
	}
	fopts := iso9660.FinalizeOptions{RockRidge: true, VolumeIdentifier: o.VolumeID, PublisherIdentifier: "clonecd"}
	var et *iso9660.ElTorito
	if o.BIOSBoot != "" || o.EFIBoot != "" {
		et = &iso9660.ElTorito{BootCatalog: o.BootCatalog}
		if et.BootCatalog == "" {
			base := "/"
			if o.BIOSBoot != "" {
				base = filepath.Dir("/" + o.BIOSBoot)
			}
			et.BootCatalog = filepath.Join(base, "boot.cat")
		}
		et.BootCatalog = "/" + strings.TrimPrefix(et.BootCatalog, "/")
		if o.BIOSBoot != "" {
			if _, err := os.Stat(filepath.Join(dir, o.BIOSBoot)); err != nil {
				return nil, fmt.Errorf("BIOS boot image: %w", err)
			}
			et.Entries = append(et.Entries, &iso9660.ElToritoEntry{Platform: iso9660.BIOS, Emulation: iso9660.NoEmulation,
				BootFile: "/" + strings.TrimPrefix(o.BIOSBoot, "/"), BootTable: true, LoadSegment: 0})
		}
		if o.EFIBoot != "" {
			if _, err := os.Stat(filepath.Join(dir, o.EFIBoot)); err != nil {
				return nil, fmt.Errorf("EFI boot image: %w", err)
			}
			et.Entries = append(et.Entries, &iso9660.ElToritoEntry{Platform: iso9660.EFI, Emulation: iso9660.NoEmulation,
				BootFile: "/" + strings.TrimPrefix(o.EFIBoot, "/"), SystemType: mbr.EFISystem})
		}
		fopts.ElTorito = et
	}

	var efiSize int64
	if o.EFIBoot != "" {
		if st, err := os.Stat(filepath.Join(dir, o.EFIBoot)); err == nil {
			efiSize = st.Size()
		}
	}

	aside := dir + ".big"
	defer os.RemoveAll(aside)
	big, err := setAside(dir, aside, o.BIOSBoot, o.EFIBoot)
	if err != nil {
		return nil, err
	}

	tmp := out + ".part"
	os.Remove(tmp)
	// The size only preallocates (sparse); the file grows as written.
	b, err := file.CreateFromPath(tmp, 1<<20)
	if err != nil {
		return nil, fmt.Errorf("creating %s: %w", tmp, err)
	}
	defer func() {
		if err != nil {
			os.Remove(tmp)
		}
	}()
	fsys, err := iso9660.Create(b, 0, 0, 2048, dir)
	if err != nil {
		closeBackend(b)
		return nil, fmt.Errorf("creating ISO %s: %w", out, err)
	}
	stop := watchSize(tmp, o.Progress)
	err = fsys.Finalize(fopts)
	stop()
	closeBackend(b)
	if err != nil {
		return nil, fmt.Errorf("writing ISO %s: %w", out, err)
	}

	f, err := os.OpenFile(tmp, os.O_RDWR, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	info = &ISOInfo{Files: files, Payload: payload}
	if info.Volume, err = volumeSize(f); err != nil {
		return nil, fmt.Errorf("%s: %w", tmp, err)
	}
	if info.Volume, err = appendBig(f, info.Volume, big); err != nil {
		return nil, fmt.Errorf("%s: %w", tmp, err)
	}
	info.Size = info.Volume
	if et != nil {
		if info.Boot, err = ReadBootCatalog(f); err != nil {
			return nil, fmt.Errorf("%s: %w", tmp, err)
		}
	}
	if o.Hybrid {
		h := Hybrid{Code: mbrCode, DiskID: o.DiskID, ImageSize: info.Volume}
		for _, e := range info.Boot {
			switch e.Platform {
			case PlatformBIOS:
				if h.BootLBA == 0 {
					h.BootLBA = e.LBA
				}
			case PlatformEFI:
				// the catalog's count is 0 for an image over 32 MiB
				h.EFILBA, h.EFISectors = e.LBA, uint32((efiSize+511)/512)
			}
		}
		if h.DiskID == 0 {
			h.DiskID = uint32(time.Now().UnixNano())
		}
		if info.Size, err = h.Write(f); err != nil {
			return nil, fmt.Errorf("%s: isohybrid MBR: %w", out, err)
		}
	} else if err := f.Truncate(info.Volume); err != nil {
		return nil, err
	}
	if err := f.Close(); err != nil {
		return nil, fmt.Errorf("%s: %w", tmp, err)
	}
	if err := os.Rename(tmp, out); err != nil {
		return nil, err
	}
	return info, nil
}

func closeBackend(b interface{ Close() error }) { b.Close() }

// watchSize reports the growing size of path every 200 ms until stopped.
func watchSize(path string, fn func(int64)) (stop func()) {
	if fn == nil {
		return func() {}
	}
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(200 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				if st, err := os.Stat(path); err == nil {
					fn(st.Size())
				}
			}
		}
	}()
	return func() { close(done); <-finished }
}

// volumeSize reads the volume space size from the primary volume descriptor.
func volumeSize(r io.ReaderAt) (int64, error) {
	pvd := make([]byte, 2048)
	if _, err := r.ReadAt(pvd, 16*2048); err != nil {
		return 0, fmt.Errorf("reading the primary volume descriptor: %w", err)
	}
	if pvd[0] != 1 || string(pvd[1:6]) != "CD001" {
		return 0, fmt.Errorf("no ISO 9660 primary volume descriptor at sector 16")
	}
	blocks := binary.LittleEndian.Uint32(pvd[80:84])
	bs := binary.LittleEndian.Uint16(pvd[128:130])
	return int64(blocks) * int64(bs), nil
}

// VolumeID turns a version ("1.19") into an ISO volume label
// ("CLONECD_1_19"): upper case, characters outside A-Z 0-9 become _, at
// most 32 characters.
func VolumeID(version string) string {
	var b strings.Builder
	b.WriteString("CLONECD")
	if version != "" {
		b.WriteByte('_')
	}
	for _, r := range strings.ToUpper(version) {
		if (r >= 'A' && r <= 'Z') || (r >= '0' && r <= '9') || r == '_' {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	s := b.String()
	if len(s) > 32 {
		s = s[:32]
	}
	return s
}
