package partition

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"strings"
)

// FSInfo is what a filesystem superblock says about itself.
type FSInfo struct {
	Type  string // ext2, ext3, ext4, xfs, vfat, swap
	UUID  string // as blkid prints it
	Label string
}

// ProbeFS reads the superblock at the start of dev (a partition device or
// file) and returns the filesystem's type, UUID and label. It needs no
// blkid, so the initramfs can use it.
func ProbeFS(dev string) (*FSInfo, error) {
	f, err := os.Open(dev)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := ProbeFSAt(f, 0)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", dev, err)
	}
	return fi, nil
}

// ErrNoFS means no known superblock was found.
var ErrNoFS = fmt.Errorf("no known filesystem superblock (ext2/3/4, xfs, vfat, swap)")

func uuidString(b []byte) string {
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

func cstr(b []byte) string {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	return string(b)
}

// ProbeFSAt probes the filesystem starting at byte offset off of r.
func ProbeFSAt(r io.ReaderAt, off int64) (*FSInfo, error) {
	buf := make([]byte, 8192)
	n, err := r.ReadAt(buf, off)
	if n < 2048 {
		if err == nil {
			err = io.ErrUnexpectedEOF
		}
		return nil, fmt.Errorf("reading superblock: %w", err)
	}
	buf = buf[:n]
	// ext2/3/4: superblock at 1024, magic 0xEF53 at 56.
	sb := buf[1024:]
	if binary.LittleEndian.Uint16(sb[56:]) == 0xEF53 {
		compat := binary.LittleEndian.Uint32(sb[92:])
		incompat := binary.LittleEndian.Uint32(sb[96:])
		ro := binary.LittleEndian.Uint32(sb[100:])
		typ := "ext2"
		switch {
		case incompat&0x8 != 0:
			typ = "jbd"
		case incompat&^uint32(0x2|0x4|0x10) != 0 || ro&^uint32(0x1|0x2|0x4) != 0:
			typ = "ext4"
		case compat&0x4 != 0:
			typ = "ext3"
		}
		return &FSInfo{Type: typ, UUID: uuidString(sb[104:120]), Label: cstr(sb[120:136])}, nil
	}
	if bytes.Equal(buf[:4], []byte("XFSB")) {
		return &FSInfo{Type: "xfs", UUID: uuidString(buf[32:48]), Label: cstr(buf[108:120])}, nil
	}
	for _, ps := range []int{4096, 8192} {
		if len(buf) >= ps {
			m := string(buf[ps-10 : ps])
			if m == "SWAPSPACE2" || m == "SWAP-SPACE" {
				fi := &FSInfo{Type: "swap"}
				if m == "SWAPSPACE2" {
					fi.UUID = uuidString(buf[1024+12 : 1024+28])
					fi.Label = cstr(buf[1024+28 : 1024+44])
				}
				return fi, nil
			}
		}
	}
	if buf[510] == 0x55 && buf[511] == 0xAA && (buf[0] == 0xEB || buf[0] == 0xE9) {
		bps := binary.LittleEndian.Uint16(buf[11:])
		if bps >= 512 && bps <= 4096 && bps&(bps-1) == 0 && buf[13] != 0 {
			var id, label []byte
			switch {
			case string(buf[82:87]) == "FAT32":
				id, label = buf[67:71], buf[71:82]
			case string(buf[54:57]) == "FAT":
				id, label = buf[39:43], buf[43:54]
			}
			if id != nil {
				l := strings.TrimRight(string(label), " ")
				if l == "NO NAME" {
					l = ""
				}
				return &FSInfo{Type: "vfat", UUID: fmt.Sprintf("%02X%02X-%02X%02X", id[3], id[2], id[1], id[0]), Label: l}, nil
			}
		}
	}
	return nil, ErrNoFS
}
