package builder

import (
	"encoding/binary"
	"fmt"
	"io"
)

// Platform IDs of El Torito boot catalog entries.
const (
	PlatformBIOS = 0x00
	PlatformEFI  = 0xef
)

// BootEntry is one bootable entry of an El Torito boot catalog.
type BootEntry struct {
	Platform  byte   // PlatformBIOS or PlatformEFI
	Emulation byte   // 0 = no emulation
	Sectors   uint16 // 512-byte sectors loaded (0 for big EFI images)
	LBA       uint32 // 2048-byte block of the boot image
}

// ReadBootCatalog finds the El Torito boot record among the volume
// descriptors of the ISO r and parses its catalog.
func ReadBootCatalog(r io.ReaderAt) ([]BootEntry, error) {
	vd := make([]byte, 2048)
	for sector := int64(16); sector < 16+64; sector++ {
		if _, err := r.ReadAt(vd, sector*2048); err != nil {
			return nil, fmt.Errorf("reading volume descriptor %d: %w", sector, err)
		}
		if string(vd[1:6]) != "CD001" {
			return nil, fmt.Errorf("volume descriptor %d: no CD001 signature", sector)
		}
		switch vd[0] {
		case 0: // boot record
			if string(vd[7:30]) != "EL TORITO SPECIFICATION" {
				continue
			}
			lba := binary.LittleEndian.Uint32(vd[0x47:0x4b])
			cat := make([]byte, 2048)
			if _, err := r.ReadAt(cat, int64(lba)*2048); err != nil {
				return nil, fmt.Errorf("reading boot catalog at block %d: %w", lba, err)
			}
			return ParseBootCatalog(cat)
		case 255: // terminator
			return nil, fmt.Errorf("no El Torito boot record")
		}
	}
	return nil, fmt.Errorf("no volume descriptor set terminator")
}

// ParseBootCatalog parses an El Torito boot catalog (one 2048-byte block):
// the validation entry, the initial/default entry, then section headers
// with their entries.
func ParseBootCatalog(b []byte) ([]BootEntry, error) {
	if len(b) < 64 {
		return nil, fmt.Errorf("boot catalog: %d bytes, too short", len(b))
	}
	if b[0] != 1 || b[0x1e] != 0x55 || b[0x1f] != 0xaa {
		return nil, fmt.Errorf("boot catalog: bad validation entry")
	}
	var sum uint16
	for i := 0; i < 32; i += 2 {
		sum += binary.LittleEndian.Uint16(b[i:])
	}
	if sum != 0 {
		return nil, fmt.Errorf("boot catalog: validation entry checksum is %#04x, want 0", sum)
	}
	entry := func(e []byte, platform byte) (BootEntry, error) {
		if e[0] != 0x88 && e[0] != 0x00 {
			return BootEntry{}, fmt.Errorf("boot catalog: bad boot indicator %#02x", e[0])
		}
		return BootEntry{Platform: platform, Emulation: e[1] & 0x0f,
			Sectors: binary.LittleEndian.Uint16(e[6:8]), LBA: binary.LittleEndian.Uint32(e[8:12])}, nil
	}
	first, err := entry(b[32:64], b[1])
	if err != nil {
		return nil, err
	}
	out := []BootEntry{first}
	for off := 64; off+32 <= len(b); {
		h := b[off : off+32]
		if h[0] != 0x90 && h[0] != 0x91 {
			break
		}
		platform := h[1]
		n := int(binary.LittleEndian.Uint16(h[2:4]))
		off += 32
		for i := 0; i < n; i++ {
			if off+32 > len(b) {
				return nil, fmt.Errorf("boot catalog: section runs past the catalog's end")
			}
			e, err := entry(b[off:off+32], platform)
			if err != nil {
				return nil, err
			}
			out = append(out, e)
			off += 32
		}
		if h[0] == 0x91 {
			break
		}
	}
	return out, nil
}
