package partition

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// Well-known partition types.
const (
	GPTLinux    = "0FC63DAF-8483-4772-8E79-3D69D8477DE4"
	GPTSwap     = "0657FD6D-A4AB-43C4-84E5-0933C84B4F4F"
	GPTHome     = "933AC7E1-2EB4-4F13-B844-0E14E2AEF915"
	GPTESP      = "C12A7328-F81F-11D2-BA4B-00A0C93EC93B"
	GPTRAID     = "A19D880F-05FC-4D3B-A006-743F0F84911E"
	GPTLVM      = "E6D6D379-F507-44C2-A23C-238F2A3DF928"
	GPTBIOSBoot = "21686148-6449-6E6F-744E-656564454649"
)

var dosShortcuts = map[string]string{
	"L": "83", "linux": "83", "S": "82", "swap": "82", "E": "5", "Ex": "5", "extended": "5",
	"X": "85", "linuxex": "85", "U": "ef", "uefi": "ef", "R": "fd", "raid": "fd", "V": "8e", "lvm": "8e",
}

var gptShortcuts = map[string]string{
	"L": GPTLinux, "linux": GPTLinux, "S": GPTSwap, "swap": GPTSwap, "H": GPTHome, "home": GPTHome,
	"U": GPTESP, "uefi": GPTESP, "R": GPTRAID, "raid": GPTRAID, "V": GPTLVM, "lvm": GPTLVM,
	"Linux filesystem": GPTLinux, "Linux swap": GPTSwap, "EFI System": GPTESP, "BIOS boot": GPTBIOSBoot,
}

// resolveType turns a script type (shortcut, alias, hex code or GUID) into
// the form sfdisk dumps: dos lower-case hex without 0x, gpt upper-case GUID.
// An empty type gives the Linux default.
func resolveType(label, t string) (string, error) {
	if label == "gpt" {
		if t == "" {
			return GPTLinux, nil
		}
		if g, ok := gptShortcuts[t]; ok {
			return g, nil
		}
		if isGUID(t) {
			return strings.ToUpper(t), nil
		}
		return "", fmt.Errorf("type %q: not a gpt type (GUID or L, S, H, U, R, V)", t)
	}
	if t == "" {
		return "83", nil
	}
	if c, ok := dosShortcuts[t]; ok {
		return c, nil
	}
	h := strings.TrimPrefix(strings.TrimPrefix(t, "0x"), "0X")
	v, err := strconv.ParseUint(h, 16, 8)
	if err != nil {
		return "", fmt.Errorf("type %q: not a dos type (hex code 0-ff or L, S, E, X, U, R, V)", t)
	}
	return strconv.FormatUint(v, 16), nil
}

// dosTypeCode returns the byte of a resolved dos type.
func dosTypeCode(t string) byte {
	v, _ := strconv.ParseUint(t, 16, 8)
	return byte(v)
}

const (
	attrRequired = 0
	attrNoBlock  = 1
	attrLegacy   = 2
)

// parseAttrs reads sfdisk's gpt attribute words: RequiredPartition,
// NoBlockIOProtocol, LegacyBIOSBootable, GUID:48,49 and bare bit numbers.
func parseAttrs(s string) (uint64, error) {
	var v uint64
	p := s
	for {
		p = strings.TrimLeft(p, " \t")
		if p == "" {
			return v, nil
		}
		bit := -1
		switch {
		case strings.HasPrefix(p, "RequiredPartition"):
			bit, p = attrRequired, p[len("RequiredPartition"):]
		case strings.HasPrefix(p, "RequiredPartiton"):
			bit, p = attrRequired, p[len("RequiredPartiton"):]
		case strings.HasPrefix(p, "NoBlockIOProtocol"):
			bit, p = attrNoBlock, p[len("NoBlockIOProtocol"):]
		case strings.HasPrefix(p, "LegacyBIOSBootable"):
			bit, p = attrLegacy, p[len("LegacyBIOSBootable"):]
		case strings.HasPrefix(p, "GUID:"):
			p = p[5:]
			continue
		case p[0] >= '0' && p[0] <= '9':
			j := 0
			for j < len(p) && p[j] >= '0' && p[j] <= '9' {
				j++
			}
			n, err := strconv.Atoi(p[:j])
			if err != nil || n > 63 {
				return 0, fmt.Errorf("attribute bit %q out of range 0-63", p[:j])
			}
			bit, p = n, p[j:]
		}
		if bit < 0 {
			return 0, fmt.Errorf("unknown gpt attribute %q", firstWord(p))
		}
		if p != "" && p[0] != ',' && p[0] != ' ' && p[0] != '\t' {
			return 0, fmt.Errorf("malformed gpt attributes %q", s)
		}
		v |= 1 << uint(bit)
		p = strings.TrimLeft(p, " \t")
		p = strings.TrimPrefix(p, ",")
	}
}

// formatAttrs writes attribute bits as sfdisk does (bits 3-47 are not shown).
func formatAttrs(v uint64) string {
	var words []string
	if v&(1<<attrRequired) != 0 {
		words = append(words, "RequiredPartition")
	}
	if v&(1<<attrNoBlock) != 0 {
		words = append(words, "NoBlockIOProtocol")
	}
	if v&(1<<attrLegacy) != 0 {
		words = append(words, "LegacyBIOSBootable")
	}
	var guid []string
	for b := 48; b < 64; b++ {
		if v&(1<<uint(b)) != 0 {
			guid = append(guid, strconv.Itoa(b))
		}
	}
	if len(guid) > 0 {
		words = append(words, "GUID:"+strings.Join(guid, ","))
	}
	return strings.Join(words, " ")
}

// guidToBytes encodes a textual GUID in the mixed-endian on-disk form.
func guidToBytes(s string) ([16]byte, error) {
	var out [16]byte
	if !isGUID(s) {
		return out, fmt.Errorf("malformed GUID %q", s)
	}
	raw, err := hex.DecodeString(strings.ReplaceAll(s, "-", ""))
	if err != nil {
		return out, fmt.Errorf("malformed GUID %q", s)
	}
	binary.LittleEndian.PutUint32(out[0:], binary.BigEndian.Uint32(raw[0:]))
	binary.LittleEndian.PutUint16(out[4:], binary.BigEndian.Uint16(raw[4:]))
	binary.LittleEndian.PutUint16(out[6:], binary.BigEndian.Uint16(raw[6:]))
	copy(out[8:], raw[8:])
	return out, nil
}

// guidString decodes an on-disk GUID to upper-case text.
func guidString(b []byte) string {
	return fmt.Sprintf("%08X-%04X-%04X-%X-%X",
		binary.LittleEndian.Uint32(b[0:]), binary.LittleEndian.Uint16(b[4:]),
		binary.LittleEndian.Uint16(b[6:]), b[8:10], b[10:16])
}

// newGUID returns a random (version 4) GUID as libfdisk makes them.
func newGUID() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err)
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%X-%X-%X-%X-%X", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// PartDevice returns the device name of partition n of disk, as the kernel
// and libfdisk name them: sda1, vda1, nvme0n1p1, mmcblk0p1, loop0p1,
// disk.img1; /dev/mapper and /dev/disk/by-id names get -partN.
func PartDevice(disk string, n int) string {
	if disk == "" {
		return strconv.Itoa(n)
	}
	w := disk
	sep := ""
	if c := w[len(w)-1]; c >= '0' && c <= '9' {
		sep = "p"
	}
	if strings.HasSuffix(w, "disc") {
		w, sep = strings.TrimSuffix(w, "disc"), "part"
	}
	if strings.HasPrefix(disk, "/dev/disk/by-id/") || strings.HasPrefix(disk, "/dev/disk/by-path/") ||
		strings.HasPrefix(disk, "/dev/mapper") {
		for _, s := range []string{"", "p"} {
			c := fmt.Sprintf("%s%s%d", w, s, n)
			if _, err := os.Stat(c); err == nil {
				return c
			}
		}
		sep = "-part"
	}
	return fmt.Sprintf("%s%s%d", w, sep, n)
}
