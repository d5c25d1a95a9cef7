package partition

import (
	"sort"
)

// resolve normalizes types, assigns default partition numbers as sfdisk
// does, and checks the table is writable in principle.
func (l *Layout) resolve() error {
	used := map[int]int{}
	for i := range l.Parts {
		p := &l.Parts[i]
		typ, err := resolveType(l.Label, p.Type)
		if err != nil {
			return lineErr(p.Line, "%v", err)
		}
		p.Type = typ
		if l.Label == "gpt" && p.Bootable {
			return lineErr(p.Line, "bootable is a dos flag; gpt uses attrs=LegacyBIOSBootable")
		}
		if l.Label == "dos" && (p.UUID != "" || p.Name != "" || p.Attrs != "") {
			return lineErr(p.Line, "uuid=, name= and attrs= are gpt fields, this is a dos layout")
		}
		if p.Number != 0 {
			if prev, dup := used[p.Number]; dup {
				return lineErr(p.Line, "partition %d already defined on line %d", p.Number, prev)
			}
		} else {
			p.Number = l.defaultNumber(used, i)
			if p.Number == 0 {
				return lineErr(p.Line, "no free primary partition number: dos allows 4 primaries (use an extended partition)")
			}
		}
		used[p.Number] = p.Line
		if l.Label == "dos" {
			if p.Number > 4 && !l.hasExtended() {
				return lineErr(p.Line, "logical partition %d without an extended partition", p.Number)
			}
			if p.Number <= 4 && p.Number < 1 {
				return lineErr(p.Line, "bad partition number %d", p.Number)
			}
			if p.Number > 4 && IsExtended(p.Type) {
				return lineErr(p.Line, "an extended partition must be primary (1-4)")
			}
		} else {
			max := l.TableLength
			if max == 0 {
				max = 128
			}
			if p.Number > max {
				return lineErr(p.Line, "partition %d beyond the table length %d", p.Number, max)
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

func (l *Layout) defaultNumber(used map[int]int, upto int) int {
	if l.Label == "gpt" {
		for n := 1; ; n++ {
			if _, ok := used[n]; !ok {
				return n
			}
		}
	}
	ext := false
	for _, p := range l.Parts[:upto] {
		if p.Number <= 4 && IsExtended(p.Type) {
			ext = true
		}
	}
	if ext {
		for n := 5; ; n++ {
			if _, ok := used[n]; !ok {
				return n
			}
		}
	}
	for n := 1; n <= 4; n++ {
		if _, ok := used[n]; !ok {
			return n
		}
	}
	return 0
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
		if p.Start == 0 || p.Size == 0 {
			continue
		}
		if l.Label == "dos" && IsExtended(p.Type) {
			continue
		}
		if p.Start+p.Size < p.Start {
			return lineErr(p.Line, "partition %d: start+size overflows", p.Number)
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
			return lineErr(b.Line, "partition %d (sectors %d-%d) overlaps partition %d on line %d (sectors %d-%d)",
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
				return lineErr(l.Parts[i].Line, "a second extended partition (dos allows one)")
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
				return lineErr(p.Line, "logical partition %d lies outside the extended partition %d", p.Number, ext.Number)
			}
		}
	}
	return nil
}
