package builder

import (
	"encoding/binary"
	"fmt"
	"os"
)

// Geometry isohybrid uses: 64 heads x 32 sectors, so one cylinder is 1 MiB
// and the image is padded to a whole number of cylinders.
const (
	hybridHeads   = 64
	hybridSectors = 32
	cylinderBytes = hybridHeads * hybridSectors * 512
)

// Hybrid is the isohybrid MBR written into sectors 0-15 of an ISO (which
// ISO 9660 leaves to the system), as syslinux's isohybrid does, so the ISO
// file written to a USB stick or hard disk boots: the BIOS runs the MBR
// code (isohdpfx.bin), which loads isolinux.bin from BootLBA; UEFI
// firmware finds the ESP through partition 2.
type Hybrid struct {
	Code       []byte // isohdpfx.bin: the first 432 bytes are used
	BootLBA    uint32 // 2048-byte block of isolinux.bin
	DiskID     uint32 // MBR disk signature
	ImageSize  int64  // bytes of the ISO volume
	EFILBA     uint32 // 2048-byte block of the ESP image; 0 = none
	EFISectors uint32 // 512-byte sectors of the ESP image
}

// MBR returns the 512-byte sector and the padded image size.
func (h *Hybrid) MBR() ([]byte, int64, error) {
	if len(h.Code) < 432 {
		return nil, 0, fmt.Errorf("MBR code is %d bytes, want at least 432", len(h.Code))
	}
	if h.BootLBA == 0 {
		return nil, 0, fmt.Errorf("no BIOS boot image")
	}
	padded := (h.ImageSize + cylinderBytes - 1) / cylinderBytes * cylinderBytes
	if padded == 0 {
		padded = cylinderBytes
	}
	total := padded / 512
	if total > 0xffffffff {
		return nil, 0, fmt.Errorf("image of %d bytes is too big for an MBR", padded)
	}
	m := make([]byte, 512)
	copy(m, h.Code[:432])
	binary.LittleEndian.PutUint64(m[432:440], uint64(h.BootLBA)*4)
	binary.LittleEndian.PutUint32(m[440:444], h.DiskID)
	putPart(m[446:462], true, 0x17, 0, uint32(total))
	if h.EFILBA != 0 && h.EFISectors != 0 {
		putPart(m[462:478], false, 0xef, h.EFILBA*4, h.EFISectors)
	}
	m[510], m[511] = 0x55, 0xaa
	return m, padded, nil
}

// Write puts the MBR into f (an ISO written already) and pads f to whole
// cylinders. It returns the new size.
func (h *Hybrid) Write(f *os.File) (int64, error) {
	m, padded, err := h.MBR()
	if err != nil {
		return 0, err
	}
	if _, err := f.WriteAt(m, 0); err != nil {
		return 0, err
	}
	if err := f.Truncate(padded); err != nil {
		return 0, err
	}
	return padded, nil
}

func putPart(p []byte, boot bool, typ byte, start, size uint32) {
	if boot {
		p[0] = 0x80
	}
	copy(p[1:4], chs(start))
	p[4] = typ
	copy(p[5:8], chs(start+size-1))
	binary.LittleEndian.PutUint32(p[8:12], start)
	binary.LittleEndian.PutUint32(p[12:16], size)
}

// chs encodes an LBA as cylinder/head/sector in the isohybrid geometry,
// saturating at cylinder 1023.
func chs(lba uint32) []byte {
	c := lba / (hybridHeads * hybridSectors)
	hd := (lba / hybridSectors) % hybridHeads
	s := lba%hybridSectors + 1
	if c > 1023 {
		c, hd, s = 1023, hybridHeads-1, hybridSectors
	}
	return []byte{byte(hd), byte(s) | byte((c>>2)&0xc0), byte(c)}
}
