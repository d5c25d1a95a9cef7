package partition

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"sort"
	"strconv"
	"strings"
)

// chs encodes an LBA as the 3 CHS bytes libfdisk writes (255 heads, 63
// sectors; 1023/254/63 beyond the CHS limit).
func chs(lba uint64) [3]byte {
	const heads, secs = 255, 63
	c := lba / (heads * secs)
	if c > 1023 {
		return [3]byte{254, 0xff, 0xff}
	}
	h := (lba / secs) % heads
	s := lba%secs + 1
	return [3]byte{byte(h), byte(s) | byte((c>>8)<<6), byte(c)}
}

func putMBREntry(b []byte, boot bool, typ byte, startAbs, start, size uint64) {
	if boot {
		b[0] = 0x80
	}
	c := chs(startAbs)
	copy(b[1:4], c[:])
	b[4] = typ
	c = chs(startAbs + size - 1)
	copy(b[5:8], c[:])
	binary.LittleEndian.PutUint32(b[8:], uint32(start))
	binary.LittleEndian.PutUint32(b[12:], uint32(size))
}

// firstSector returns sector 0 with the boot code kept and the table zeroed.
func (d *disk) firstSector() ([]byte, error) {
	old, err := d.readSectors(0, 1)
	if err != nil {
		return nil, err
	}
	b := make([]byte, d.ss)
	copy(b[:440], old[:440])
	return b, nil
}

func (d *disk) dosSectors(l *Layout) (map[uint64][]byte, error) {
	out := map[uint64][]byte{}
	mbr, err := d.firstSector()
	if err != nil {
		return nil, err
	}
	id, err := strconv.ParseUint(strings.TrimPrefix(strings.ToLower(l.LabelID), "0x"), 16, 32)
	if err != nil {
		return nil, fmt.Errorf("label-id %q is not a 32-bit hex number", l.LabelID)
	}
	binary.LittleEndian.PutUint32(mbr[440:], uint32(id))
	mbr[510], mbr[511] = 0x55, 0xAA
	var ext *Part
	var logical []Part
	for i := range l.Parts {
		p := &l.Parts[i]
		if p.Start+p.Size > 1<<32 {
			return nil, fmt.Errorf("partition %d ends beyond 2 TiB sectors, which dos cannot address (use gpt)", p.Number)
		}
		if p.Number > 4 {
			logical = append(logical, *p)
			continue
		}
		putMBREntry(mbr[446+16*(p.Number-1):], p.Bootable, dosTypeCode(p.Type), p.Start, p.Start, p.Size)
		if IsExtended(p.Type) {
			ext = p
		}
	}
	out[0] = mbr
	if len(logical) > 0 {
		sort.Slice(logical, func(i, j int) bool { return logical[i].Number < logical[j].Number })
		ebrs := make([]uint64, len(logical))
		for i, p := range logical {
			ebrs[i] = p.ebr
			if ebrs[i] == 0 || ebrs[i] >= p.Start || ebrs[i] < ext.Start {
				return nil, fmt.Errorf("no room for the EBR of logical partition %d", p.Number)
			}
		}
		for i, p := range logical {
			b := make([]byte, d.ss)
			putMBREntry(b[446:], p.Bootable, dosTypeCode(p.Type), p.Start, p.Start-ebrs[i], p.Size)
			if i+1 < len(logical) {
				n := logical[i+1]
				putMBREntry(b[462:], false, 0x05, ebrs[i+1], ebrs[i+1]-ext.Start, n.Start+n.Size-ebrs[i+1])
			}
			b[510], b[511] = 0x55, 0xAA
			out[ebrs[i]] = b
		}
	} else if ext != nil {
		// an empty extended partition: an EBR without entries
		b := make([]byte, d.ss)
		b[510], b[511] = 0x55, 0xAA
		out[ext.Start] = b
	}
	// remove a stale gpt so nothing mistakes the disk for gpt
	for _, lba := range []uint64{1, d.sectors() - 1} {
		if _, ok := out[lba]; ok {
			continue
		}
		if b, err := d.readSectors(lba, 1); err == nil && bytes.HasPrefix(b, []byte("EFI PART")) {
			out[lba] = make([]byte, d.ss)
		}
	}
	return out, nil
}

func (d *disk) gptSectors(l *Layout) (map[uint64][]byte, error) {
	g, err := l.geometry(d.sectors(), d.ss)
	if err != nil {
		return nil, err
	}
	first, last := l.FirstLBA, l.LastLBA
	out := map[uint64][]byte{}
	pmbr, err := d.firstSector()
	if err != nil {
		return nil, err
	}
	size := d.sectors() - 1
	if size > 0xFFFFFFFF {
		size = 0xFFFFFFFF
	}
	e := pmbr[446:]
	e[1], e[2], e[3] = 0, 2, 0
	e[4] = 0xEE
	e[5], e[6], e[7] = 0xff, 0xff, 0xff
	binary.LittleEndian.PutUint32(e[8:], 1)
	binary.LittleEndian.PutUint32(e[12:], uint32(size))
	pmbr[510], pmbr[511] = 0x55, 0xAA
	out[0] = pmbr

	ents := make([]byte, g.entrySectors*uint64(d.ss))
	for _, p := range l.Parts {
		if p.Number < 1 || p.Number > g.entries {
			return nil, fmt.Errorf("partition %d outside the table of %d entries", p.Number, g.entries)
		}
		b := ents[(p.Number-1)*128:]
		t, err := guidToBytes(p.Type)
		if err != nil {
			return nil, fmt.Errorf("partition %d: type: %w", p.Number, err)
		}
		u, err := guidToBytes(p.UUID)
		if err != nil {
			return nil, fmt.Errorf("partition %d: uuid: %w", p.Number, err)
		}
		a, err := parseAttrs(p.Attrs)
		if err != nil {
			return nil, fmt.Errorf("partition %d: attrs: %w", p.Number, err)
		}
		name, err := encodeName(p.Name)
		if err != nil {
			return nil, fmt.Errorf("partition %d: %w", p.Number, err)
		}
		copy(b[0:], t[:])
		copy(b[16:], u[:])
		binary.LittleEndian.PutUint64(b[32:], p.Start)
		binary.LittleEndian.PutUint64(b[40:], p.Start+p.Size-1)
		binary.LittleEndian.PutUint64(b[48:], a)
		copy(b[56:], name)
	}
	entsCRC := crc32.ChecksumIEEE(ents[:g.entries*128])
	disk, err := guidToBytes(l.LabelID)
	if err != nil {
		return nil, fmt.Errorf("label-id: %w", err)
	}
	header := func(my, alt, entLBA uint64) []byte {
		h := make([]byte, d.ss)
		copy(h, "EFI PART")
		binary.LittleEndian.PutUint32(h[8:], 0x00010000)
		binary.LittleEndian.PutUint32(h[12:], 92)
		binary.LittleEndian.PutUint64(h[24:], my)
		binary.LittleEndian.PutUint64(h[32:], alt)
		binary.LittleEndian.PutUint64(h[40:], first)
		binary.LittleEndian.PutUint64(h[48:], last)
		copy(h[56:], disk[:])
		binary.LittleEndian.PutUint64(h[72:], entLBA)
		binary.LittleEndian.PutUint32(h[80:], uint32(g.entries))
		binary.LittleEndian.PutUint32(h[84:], 128)
		binary.LittleEndian.PutUint32(h[88:], entsCRC)
		binary.LittleEndian.PutUint32(h[16:], crc32.ChecksumIEEE(h[:92]))
		return h
	}
	n := d.sectors()
	out[1] = header(1, n-1, 2)
	out[n-1] = header(n-1, 1, last+1)
	for i := uint64(0); i < g.entrySectors; i++ {
		s := ents[i*uint64(d.ss) : (i+1)*uint64(d.ss)]
		out[2+i] = s
		out[last+1+i] = s
	}
	return out, nil
}
