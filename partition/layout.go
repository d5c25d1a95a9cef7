package partition

import (
	"errors"
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

	// Source names the file the layout was read from in errors about its
	// lines (ReadLayoutFile sets it; "" when parsed from a reader, and a
	// caller may set it). WriteTo does not write it.
	Source string
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
	sizeUnit         bool   // size given with a unit: sfdisk aligns its end
	sizeBytes        uint64 // that size in bytes
	sizeZero         bool   // "size=0" in sectors (dos: one sector; gpt: refused)
	autoNumber       bool   // the line gave no number: sfdisk chose it
	ebr              uint64 // dos logical partitions: where Fit put the EBR
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

// ErrEmpty is a layout with no label header and no partitions: sfdisk
// leaves the disk's table as it is for such a script, so clonecd refuses it
// rather than guess.
var ErrEmpty = errors.New("empty layout: no label header and no partitions (sfdisk would leave the table as it is)")

// ErrNoPartitions is a layout with a label but no partitions: sfdisk
// writes an empty table for it, deleting every partition. Apply refuses it
// unless ApplyOptions.AllowEmpty is set.
var ErrNoPartitions = errors.New("the layout has no partitions")

// LineError is an error at a line of a layout file: File is the file's
// name when known (Layout.Source).
type LineError struct {
	File string
	Line int
	Err  error
}

func (e *LineError) Error() string {
	if e.File != "" {
		return fmt.Sprintf("%s: line %d: %v", e.File, e.Line, e.Err)
	}
	return fmt.Sprintf("line %d: %v", e.Line, e.Err)
}

func (e *LineError) Unwrap() error { return e.Err }

// lineErr is an error at line n of the layout's file.
func (l *Layout) lineErr(n int, format string, a ...any) error {
	return &LineError{File: l.Source, Line: n, Err: fmt.Errorf(format, a...)}
}

// FitError says why a layout does not fit a disk: partition Part (on the
// layout's line, carried by the LineError around it) has a Problem; when
// the disk is too small, by how many MiB.
type FitError struct {
	Disk     string // device or image file; "" when Fit was given only a size
	Part     int
	Problem  string // "ends at sector 16779263, last usable is 524287"
	DiskMiB  uint64 // the disk's size
	ShortMiB uint64 // how much bigger the disk must be; 0 when size is not the problem
}

func (e *FitError) Error() string {
	var b strings.Builder
	b.WriteString("layout does not fit")
	if e.Disk != "" {
		b.WriteString(" " + e.Disk)
	}
	fmt.Fprintf(&b, ": partition %d %s", e.Part, e.Problem)
	if e.ShortMiB > 0 {
		fmt.Fprintf(&b, "; the disk (%d MiB) is %d MiB too small", e.DiskMiB, e.ShortMiB)
	}
	return b.String()
}

// fitErr is a FitError at the partition's line.
func (l *Layout) fitErr(p *Part, format string, a ...any) error {
	return &LineError{File: l.Source, Line: p.Line, Err: &FitError{Part: p.Number, Problem: fmt.Sprintf(format, a...)}}
}

// onDisk names the disk in a Fit error.
func onDisk(err error, dev string) error {
	var fe *FitError
	if errors.As(err, &fe) {
		fe.Disk = dev
		return err
	}
	var le *LineError
	if errors.As(err, &le) {
		return err // about the layout itself, whatever the disk
	}
	return fmt.Errorf("%s: %w", dev, err)
}
