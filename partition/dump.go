package partition

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"unicode/utf16"
)

// ErrNoTable means the disk holds no dos or gpt partition table.
var ErrNoTable = errors.New("does not contain a recognized partition table")

// Dump reads the partition table of a block device or image file. Its
// WriteTo output equals util-linux 2.38's `sfdisk -d DEV`.
func Dump(dev string) (*Layout, error) {
	d, err := openDisk(dev, os.O_RDONLY)
	if err != nil {
		return nil, err
	}
	defer d.Close()
	return d.dump()
}

func (d *disk) dump() (*Layout, error) {
	mbr, err := d.readSectors(0, 1)
	if err != nil {
		return nil, err
	}
	if mbr[510] != 0x55 || mbr[511] != 0xAA {
		return nil, fmt.Errorf("%s: %w", d.path, ErrNoTable)
	}
	l := &Layout{Device: d.path, Unit: "sectors", SectorSize: d.ss}
	if d.grain != 1<<20 {
		l.Grain = d.grain
	}
	protective := false
	for i := 0; i < 4; i++ {
		if mbr[446+16*i+4] == 0xEE {
			protective = true
		}
	}
	if protective {
		if err := d.readGPT(l); err == nil {
			return l, nil
		} else if !errors.Is(err, errNoGPT) {
			return nil, err
		}
	}
	if err := d.readDOS(l, mbr); err != nil {
		return nil, err
	}
	return l, nil
}

type mbrEntry struct {
	boot  byte
	typ   byte
	start uint32
	size  uint32
}

func parseMBREntry(b []byte) mbrEntry {
	return mbrEntry{boot: b[0], typ: b[4], start: binary.LittleEndian.Uint32(b[8:]), size: binary.LittleEndian.Uint32(b[12:])}
}

func (d *disk) readDOS(l *Layout, mbr []byte) error {
	l.Label = "dos"
	l.LabelID = fmt.Sprintf("0x%08x", binary.LittleEndian.Uint32(mbr[440:]))
	var ext *mbrEntry
	for i := 0; i < 4; i++ {
		e := parseMBREntry(mbr[446+16*i:])
		if e.size == 0 {
			continue
		}
		l.Parts = append(l.Parts, Part{
			Number: i + 1, Node: PartDevice(d.path, i+1), Start: uint64(e.start), Size: uint64(e.size),
			Type: fmt.Sprintf("%x", e.typ), Bootable: e.boot == 0x80,
		})
		if IsExtended(fmt.Sprintf("%x", e.typ)) && ext == nil {
			e := e
			ext = &e
		}
	}
	if ext == nil {
		return nil
	}
	// Follow the EBR chain as libfdisk does: one partition per EBR (the
	// first data entry), the first extended entry links to the next EBR,
	// at most 60 partitions, empty logical partitions dropped.
	extStart := uint64(ext.start)
	ebr := extStart
	total := d.sectors()
	var logical []Part
	for nparts := 4; nparts < 60 && ebr < total; nparts++ {
		b, err := d.readSectors(ebr, 1)
		if err != nil {
			return err
		}
		var ents [4]mbrEntry
		pt, ex := -1, -1
		for i := 0; i < 4; i++ {
			ents[i] = parseMBREntry(b[446+16*i:])
			e := ents[i]
			if e.start != 0 && IsExtended(fmt.Sprintf("%x", e.typ)) {
				if ex < 0 {
					ex = i
				}
			} else if e.typ != 0 && pt < 0 {
				pt = i
			}
		}
		if pt < 0 {
			pt = 0
			if ex == 0 {
				pt = 1
			}
		}
		if ex < 0 {
			ex = 0
			if pt == 0 {
				ex = 1
			}
		}
		e := ents[pt]
		logical = append(logical, Part{Start: ebr + uint64(e.start), Size: uint64(e.size),
			Type: fmt.Sprintf("%x", e.typ), Bootable: e.boot == 0x80})
		if !IsExtended(fmt.Sprintf("%x", ents[ex].typ)) {
			break
		}
		ebr = extStart + uint64(ents[ex].start)
	}
	n := 5
	for _, p := range logical {
		if p.Size == 0 {
			continue
		}
		p.Number, p.Node = n, PartDevice(d.path, n)
		l.Parts = append(l.Parts, p)
		n++
	}
	return nil
}

var errNoGPT = errors.New("no valid gpt header")

type gptHeader struct {
	myLBA, altLBA, first, last, entriesLBA uint64
	guid                                   string
	count, entrySize                       uint32
}

func (d *disk) readGPTHeader(lba uint64) (*gptHeader, []byte, error) {
	b, err := d.readSectors(lba, 1)
	if err != nil {
		return nil, nil, err
	}
	if !bytes.Equal(b[:8], []byte("EFI PART")) {
		return nil, nil, errNoGPT
	}
	hs := binary.LittleEndian.Uint32(b[12:])
	if hs < 92 || int(hs) > d.ss {
		return nil, nil, errNoGPT
	}
	h := make([]byte, hs)
	copy(h, b[:hs])
	want := binary.LittleEndian.Uint32(h[16:])
	binary.LittleEndian.PutUint32(h[16:], 0)
	if crc32.ChecksumIEEE(h) != want {
		return nil, nil, errNoGPT
	}
	g := &gptHeader{
		myLBA: binary.LittleEndian.Uint64(b[24:]), altLBA: binary.LittleEndian.Uint64(b[32:]),
		first: binary.LittleEndian.Uint64(b[40:]), last: binary.LittleEndian.Uint64(b[48:]),
		guid: guidString(b[56:72]), entriesLBA: binary.LittleEndian.Uint64(b[72:]),
		count: binary.LittleEndian.Uint32(b[80:]), entrySize: binary.LittleEndian.Uint32(b[84:]),
	}
	if g.myLBA != lba || g.entrySize != 128 || g.count == 0 || g.count > 65536 {
		return nil, nil, errNoGPT
	}
	n := (uint64(g.count)*uint64(g.entrySize) + uint64(d.ss) - 1) / uint64(d.ss)
	if g.entriesLBA+n > d.sectors() {
		return nil, nil, errNoGPT
	}
	ents, err := d.readSectors(g.entriesLBA, int(n))
	if err != nil {
		return nil, nil, err
	}
	ents = ents[:uint64(g.count)*uint64(g.entrySize)]
	if crc32.ChecksumIEEE(ents) != binary.LittleEndian.Uint32(b[88:]) {
		return nil, nil, errNoGPT
	}
	return g, ents, nil
}

func (d *disk) readGPT(l *Layout) error {
	g, ents, err := d.readGPTHeader(1)
	if errors.Is(err, errNoGPT) {
		g, ents, err = d.readGPTHeader(d.sectors() - 1)
	}
	if err != nil {
		return err
	}
	l.Label = "gpt"
	l.LabelID = g.guid
	l.FirstLBA, l.LastLBA = g.first, g.last
	if g.count != 128 {
		l.TableLength = int(g.count)
	}
	var zero [16]byte
	for i := 0; i < int(g.count); i++ {
		e := ents[i*int(g.entrySize):]
		if bytes.Equal(e[:16], zero[:]) {
			continue
		}
		first := binary.LittleEndian.Uint64(e[32:])
		last := binary.LittleEndian.Uint64(e[40:])
		size := uint64(0)
		if last >= first {
			size = last - first + 1
		}
		l.Parts = append(l.Parts, Part{
			Number: i + 1, Node: PartDevice(d.path, i+1), Start: first, Size: size,
			Type: guidString(e[0:16]), UUID: guidString(e[16:32]),
			Attrs: formatAttrs(binary.LittleEndian.Uint64(e[48:])), Name: decodeName(e[56:128]),
		})
	}
	return nil
}

func decodeName(b []byte) string {
	u := make([]uint16, 0, 36)
	for i := 0; i+1 < len(b); i += 2 {
		c := binary.LittleEndian.Uint16(b[i:])
		if c == 0 {
			break
		}
		u = append(u, c)
	}
	return string(utf16.Decode(u))
}

func encodeName(s string) ([]byte, error) {
	u := utf16.Encode([]rune(s))
	if len(u) > 36 {
		return nil, fmt.Errorf("name %q longer than 36 UTF-16 units", s)
	}
	b := make([]byte, 72)
	for i, c := range u {
		binary.LittleEndian.PutUint16(b[2*i:], c)
	}
	return b, nil
}
