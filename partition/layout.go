package partition

import (
	"fmt"
	"strings"
)

// Layout is a partition table as an sfdisk script describes it, plus the
// clonecd metadata carried on "# clonecd:" comment lines.
type Layout struct {
	Label      string // dos or gpt
	LabelID    string // dos: 0x1234abcd; gpt: disk GUID
	Device     string // as given to sfdisk/dump (informational)
	Unit       string // "sectors" or ""
	FirstLBA   uint64 // gpt first usable LBA (0 = default)
	LastLBA    uint64 // gpt last usable LBA (0 = default)
	SectorSize int    // sector size the numbers are in (0 = 512 when reading a file)

	TableLength int    // gpt entries when not 128 (0 = default)
	Grain       uint64 // alignment in bytes when not 1 MiB (0 = default)

	Parts []Part
}

// Part is one partition line. Start and Size are in sectors of the layout's
// sector size; 0 means "first free" / "rest of the free space".
type Part struct {
	Line     int    // line in the layout file (0 when read from a disk)
	Node     string // device node as written in the file (e.g. sda1), may be ""
	Number   int    // partition number, 1-based (5+ are dos logical partitions)
	Start    uint64
	Size     uint64
	Type     string // dos: hex code without 0x ("83", "5"); gpt: upper-case GUID
	UUID     string // gpt partition GUID
	Name     string // gpt partition name (UTF-8)
	Attrs    string // gpt attributes in sfdisk's words
	Bootable bool   // dos active flag

	// clonecd metadata ("# clonecd: part=N ..." lines).
	FS       string // ext4, ext3, ext2, xfs, vfat, swap, or "" (leave alone)
	Mount    string // mount point ("/", "/data") or ""
	FSLabel  string // filesystem label for mkfs
	Mkfs     string // extra mkfs options
	Preserve bool   // keep this partition's data when the table matches
	Grow     bool   // share the disk's free space (up to MaxSize)
	MaxSize  uint64 // sectors; 0 = no limit

	explicitPreserve bool
	sizeBytes        uint64 // size given with a unit (sfdisk aligns its end)
}

// SectorBytes returns the sector size the layout's numbers are in.
func (l *Layout) SectorBytes() int {
	if l.SectorSize == 0 {
		return 512
	}
	return l.SectorSize
}

// Part returns partition n or nil.
func (l *Layout) Part(n int) *Part {
	for i := range l.Parts {
		if l.Parts[i].Number == n {
			return &l.Parts[i]
		}
	}
	return nil
}

// IsExtended reports whether a dos type code is an extended container.
func IsExtended(typ string) bool {
	switch strings.ToLower(strings.TrimPrefix(strings.ToLower(typ), "0x")) {
	case "5", "f", "85":
		return true
	}
	return false
}

// HasMetadata reports whether p carries any clonecd metadata.
func (p *Part) HasMetadata() bool {
	return p.FS != "" || p.Mount != "" || p.FSLabel != "" || p.Mkfs != "" || p.Grow || p.MaxSize != 0 ||
		p.Preserve != (p.Mount == "/data")
}

// LineError is a parse error at a line of a layout file.
type LineError struct {
	Line int
	Err  error
}

func (e *LineError) Error() string { return fmt.Sprintf("line %d: %v", e.Line, e.Err) }
func (e *LineError) Unwrap() error { return e.Err }

func lineErr(n int, format string, a ...any) error {
	return &LineError{Line: n, Err: fmt.Errorf(format, a...)}
}
