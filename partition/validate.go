package partition

import (
	"sort"
)

// resolve normalizes types, assigns default partition numbers as sfdisk
// does, and checks the table is writable in principle.
func (l *Layout) resolve() error {
	used := map[int]int{}
	logicals := 0
	for i := range l.Parts {
		p := &l.Parts[i]
		typ, err := resolveType(l.Label, p.Type)
		if err != nil {
			return l.lineErr(p.Line, "%v", err)
		}
		p.Type = typ
		if p.sizeZero {
			if l.Label == "gpt" {
				return l.lineErr(p.Line, "size=0: sfdisk refuses a gpt partition of 0 sectors; leave size out for the rest of the free space")
			}
			p.Size, p.sizeZero = 1, false // sfdisk 2.38 makes it one sector
		}
		if l.Label == "gpt" && p.Bootable {
			return l.lineErr(p.Line, "bootable is a dos flag; gpt uses attrs=LegacyBIOSBootable")
		}
		if l.Label == "dos" && (p.UUID != "" || p.Name != "" || p.Attrs != "") {
			return l.lineErr(p.Line, "uuid=, name= and attrs= are gpt fields, this is a dos layout")
		}
		if p.Number != 0 {
			if prev, dup := used[p.Number]; dup {
				return l.lineErr(p.Line, "partition %d already defined on line %d", p.Number, prev)
			}
		} else {
			p.Number, p.autoNumber = l.defaultNumber(used, i), true
			if p.Number == 0 {
				return l.lineErr(p.Line, "no free primary partition number: dos allows 4 primaries (use an extended partition)")
			}
		}
		used[p.Number] = p.Line
		if l.Label == "dos" && p.Number > 4 {
			// libfdisk numbers logical partitions in the order it makes
			// them, whatever number the line gives
			if logicals++; p.Number != 4+logicals {
				return l.lineErr(p.Line, "logical partition %d: sfdisk numbers logical partitions 5, 6, ... in the order of their lines, so this one is %d", p.Number, 4+logicals)
			}
		}
		if l.Label == "dos" {
			if p.Number > 4 && !l.hasExtended() {
				return l.lineErr(p.Line, "logical partition %d without an extended partition", p.Number)
			}
			if p.Number <= 4 && p.Number < 1 {
				return l.lineErr(p.Line, "bad partition number %d", p.Number)
			}
			if p.Number > 4 && IsExtended(p.Type) {
				return l.lineErr(p.Line, "an extended partition must be primary (1-4)")
			}
		} else {
			max := l.TableLength
			if max == 0 {
				max = 128
			}
			if p.Number > max {
				return l.lineErr(p.Line, "partition %d beyond the table length %d", p.Number, max)
			}
		}
	}
	// Keep the order the file gave (sfdisk creates them in that order).
	return nil
}

func (l *Layout) hasExtended() bool {
	for _, p := range l.Parts {
		if p.Number >= 1 && p.Number <= 4 && IsExtended(p.Type) {
			return true
		}
	}
	return false
}

// defaultNumber is the number sfdisk gives the partition on line upto,
// which has none: on gpt the lowest free one; on dos the lowest free
// primary, or the next logical number when sfdisk would make it logical.
// Without the disk that is a guess in one case (no start, after an
// extended partition with a size: primary if a slot is free), which Fit
// checks against libfdisk's rule with the real free space.
func (l *Layout) defaultNumber(used map[int]int, upto int) int {
	free := func(from, to int) int {
		for n := from; n <= to; n++ {
			if _, ok := used[n]; !ok {
				return n
			}
		}
		return 0
	}
	if l.Label == "gpt" {
		return free(1, 1<<30)
	}
	primary := free(1, 4)
	var ext *Part
	for i := range l.Parts[:upto] {
		if p := &l.Parts[i]; p.Number <= 4 && IsExtended(p.Type) {
			ext = p
		}
	}
	p := &l.Parts[upto]
	if ext == nil || IsExtended(p.Type) || (primary != 0 && !guessLogical(p, ext)) {
		return primary
	}
	return free(5, 1<<30)
}

// guessLogical is libfdisk's choice between a logical and a primary
// partition for a line without number after the extended partition ext,
// as far as the layout alone tells: a start inside ext is logical, one
// outside primary; without a start, primary when ext has a size (there is
// room after it), logical when ext takes the rest.
func guessLogical(p, ext *Part) bool {
	sized := ext.Size != 0 || ext.sizeUnit
	if p.Start != 0 {
		return ext.Start == 0 || p.Start >= ext.Start && (!sized || p.Start < ext.Start+ext.Size)
	}
	return !sized
}

// validate checks explicit partitions for overlaps.
func (l *Layout) validate() error {
	type iv struct {
		a, b uint64
		p    *Part
	}
	var ivs []iv
	for i := range l.Parts {
		p := &l.Parts[i]
		if p.Start == 0 || p.Size == 0 || p.sizeUnit { // a unit size is aligned when fitted
			continue
		}
		if l.Label == "dos" && IsExtended(p.Type) {
			continue
		}
		if p.Start+p.Size < p.Start {
			return l.lineErr(p.Line, "partition %d: start+size overflows", p.Number)
		}
		ivs = append(ivs, iv{p.Start, p.Start + p.Size - 1, p})
	}
	sort.Slice(ivs, func(i, j int) bool { return ivs[i].a < ivs[j].a })
	for i := 1; i < len(ivs); i++ {
		if ivs[i].a <= ivs[i-1].b {
			a, b := ivs[i-1].p, ivs[i].p
			if a.Line > b.Line {
				a, b = b, a
			}
			return l.lineErr(b.Line, "partition %d (sectors %d-%d) overlaps partition %d on line %d (sectors %d-%d)",
				b.Number, b.Start, b.Start+b.Size-1, a.Number, a.Line, a.Start, a.Start+a.Size-1)
		}
	}
	if l.Label == "dos" {
		if err := l.validateLogicals(); err != nil {
			return err
		}
	}
	return nil
}

func (l *Layout) validateLogicals() error {
	var ext *Part
	for i := range l.Parts {
		if l.Parts[i].Number <= 4 && IsExtended(l.Parts[i].Type) {
			if ext != nil {
				return l.lineErr(l.Parts[i].Line, "a second extended partition (dos allows one)")
			}
			ext = &l.Parts[i]
		}
	}
	if ext == nil || ext.Start == 0 || ext.Size == 0 {
		return nil
	}
	for _, p := range l.Parts {
		if p.Number > 4 && p.Start != 0 {
			end := p.Start + p.Size
			if p.Size == 0 {
				end = p.Start + 1
			}
			if p.Start <= ext.Start || end > ext.Start+ext.Size {
				return l.lineErr(p.Line, "logical partition %d lies outside the extended partition %d", p.Number, ext.Number)
			}
		}
	}
	return nil
}
