package partition

import (
	"fmt"
	"sort"
)

const mib = 1 << 20

// geometry is where partitions may go on a disk.
type geometry struct {
	sectors      uint64 // disk size
	ss           int
	grain        uint64 // sectors
	first, last  uint64 // usable range
	entries      int    // gpt entries
	entrySectors uint64
}

func (l *Layout) geometry(sectors uint64, ss int) (geometry, error) {
	g := geometry{sectors: sectors, ss: ss}
	grainBytes := l.Grain
	if grainBytes == 0 {
		grainBytes = mib
	}
	if grainBytes < uint64(ss) {
		grainBytes = uint64(ss)
	}
	g.grain = grainBytes / uint64(ss)
	if l.Label == "gpt" {
		g.entries = l.TableLength
		if g.entries == 0 {
			g.entries = 128
		}
		g.entrySectors = (uint64(g.entries)*128 + uint64(ss) - 1) / uint64(ss)
		min := 2 + g.entrySectors
		if sectors < 2*min+g.grain {
			return g, fmt.Errorf("disk of %d sectors too small for gpt", sectors)
		}
		g.last = sectors - 2 - g.entrySectors
		g.first = g.grain
		if l.FirstLBA != 0 {
			if f, err := l.scale(l.FirstLBA, ss); err == nil && f >= min && f <= g.last {
				g.first = f
			}
		}
		if g.first < min {
			g.first = min
		}
	} else {
		g.first = 1
		g.last = sectors - 1
		if sectors > 1<<32 {
			g.last = 1<<32 - 1 // dos cannot address more
		}
	}
	return g, nil
}

// scale converts a number of layout sectors to disk sectors.
func (l *Layout) scale(v uint64, ss int) (uint64, error) {
	ls := uint64(l.SectorBytes())
	ds := uint64(ss)
	switch {
	case ls == ds:
		return v, nil
	case ls > ds:
		return v * (ls / ds), nil
	default:
		f := ds / ls
		if v%f != 0 {
			return 0, fmt.Errorf("%d sectors of %d bytes is not a whole number of %d-byte sectors", v, ls, ds)
		}
		return v / f, nil
	}
}

func alignUp(v, g uint64) uint64 { return (v + g - 1) / g * g }

// alignInRange is libfdisk's fdisk_align_lba_in_range: lba to the nearest
// grain boundary (a tie goes up), kept within [start aligned up, stop
// aligned down].
func alignInRange(grain, lba, start, stop uint64) uint64 {
	start = alignUp(start, grain)
	stop = stop / grain * grain
	if start > stop {
		return lba // no boundary in the range (sfdisk 2.38 leaves lba)
	}
	lba = (lba + grain/2) / grain * grain
	switch {
	case lba < start:
		return start
	case lba > stop:
		return stop
	}
	return lba
}

// restSize and unitSize are the sizes libfdisk 2.38 gives a partition
// starting at start in a free gap that ends at gapEnd (found by running
// sfdisk; sfdisk_diff_test.go compares every case). ok is false when it
// does not fit the gap: sfdisk would shrink it (gpt) or write a broken
// entry (dos); clonecd refuses.

// restSize is the size of a partition without one: the whole gap, but on
// gpt a gap that ends at the last usable sector ends at a grain boundary.
func restSize(g geometry, dos bool, start, gapEnd uint64) (uint64, bool) {
	if dos || gapEnd != g.last {
		return gapEnd - start + 1, true
	}
	last := alignInRange(g.grain, gapEnd, start, gapEnd)
	if last > start {
		last--
	}
	if last < start || last > gapEnd {
		return 0, false
	}
	return last - start + 1, true
}

// unitSize is the size of a partition whose size was given with a unit
// (size sectors, maybe 0): its end goes to a grain boundary.
//   - dos: libfdisk ends it at start+size (one sector more), aligned when
//     the size is a grain or more and it does not reach the gap's end; so
//     sizes under a grain get a sector more, and 0 is one sector;
//   - gpt: the last sector start+size-1 is aligned when the size is more
//     than a grain and a sector, within the rest of the gap; for 0 that
//     sector wraps around to the end of the gap, so 0 is one sector at an
//     aligned start, up to the next boundary elsewhere, and refused in a
//     gap without boundary.
func unitSize(g geometry, dos bool, start, size, gapEnd uint64) (uint64, bool) {
	if size > 0 && start+size-1 > gapEnd {
		return size, false
	}
	if dos {
		stop := min(start+size, gapEnd)
		if stop < gapEnd && size >= g.grain {
			stop = alignInRange(g.grain, stop, start, gapEnd)
			if stop > start {
				stop--
			}
			stop = min(stop, gapEnd)
		}
		return stop - start + 1, true
	}
	last := start + size - 1 // wraps around for 0, as in libfdisk
	rest, ok := restSize(g, false, start, gapEnd)
	if dflt := start + rest - 1; ok && last != dflt && last-start > g.grain {
		last = alignInRange(g.grain, last, start, dflt)
		if last > start {
			last--
		}
	}
	if last < start {
		return 0, false // sfdisk: "Could not create partition"
	}
	return last - start + 1, true
}

type span struct{ a, b uint64 } // inclusive

// firstFree returns the lowest free sector >= from in [lo,hi] not in used,
// and the end of the free gap it lies in.
func firstFree(used []span, lo, hi, from uint64, align func(uint64) uint64) (start, gapEnd uint64, ok bool) {
	sort.Slice(used, func(i, j int) bool { return used[i].a < used[j].a })
	cur := from
	if cur < lo {
		cur = lo
	}
	for {
		c := align(cur)
		if c > hi {
			return 0, 0, false
		}
		moved := false
		for _, u := range used {
			if c >= u.a && c <= u.b {
				cur = u.b + 1
				moved = true
				break
			}
		}
		if moved {
			continue
		}
		return c, gapEndAt(used, hi, c), true
	}
}

// largestFree is where libfdisk puts a gpt partition without start: the
// first sector of the largest free segment in [lo,hi] (the first of equal
// ones), aligned within it, and the segment's end. Segments under a grain
// are refused ("No enough free sectors available").
func largestFree(used []span, lo, hi, grain uint64) (start, gapEnd uint64, ok bool) {
	sort.Slice(used, func(i, j int) bool { return used[i].a < used[j].a })
	var best span
	found := false
	cur := lo
	for _, u := range append(used, span{hi + 1, hi + 1}) {
		if u.a > cur {
			seg := span{cur, min(u.a-1, hi)}
			if !found || seg.b-seg.a > best.b-best.a {
				best, found = seg, true
			}
		}
		cur = max(cur, u.b+1)
	}
	if !found || best.b-best.a+1 < grain {
		return 0, 0, false
	}
	return alignInRange(grain, best.a, best.a, best.b), best.b, true
}

func gapEndAt(used []span, hi, at uint64) uint64 {
	end := hi
	for _, u := range used {
		if u.a > at && u.a-1 < end {
			end = u.a - 1
		}
	}
	return end
}

func overlaps(used []span, s span) bool {
	for _, u := range used {
		if s.a <= u.b && u.a <= s.b {
			return true
		}
	}
	return false
}

// Fit returns a copy of the layout with concrete starts and sizes for a
// disk of the given number of sectors of sectorSize bytes, following
// sfdisk 2.38's rules (a missing start is the first free aligned sector, a
// missing size the rest of that free space, sizes with a unit get their
// end aligned) and clonecd's grow/maxsize. A layout that does not fit is
// an error at its line wrapping a *FitError that says by how many MiB.
func (l *Layout) Fit(sectors uint64, sectorSize int) (*Layout, error) {
	if sectorSize != 512 && sectorSize != 1024 && sectorSize != 2048 && sectorSize != 4096 {
		return nil, fmt.Errorf("unsupported sector size %d", sectorSize)
	}
	g, err := l.geometry(sectors, sectorSize)
	if err != nil {
		return nil, err
	}
	base := l.clone()
	for i := range base.Parts {
		p := &base.Parts[i]
		for _, v := range []*uint64{&p.Start, &p.Size, &p.MaxSize} {
			if *v, err = l.scale(*v, sectorSize); err != nil {
				return nil, l.fitErr(p, "%v", err)
			}
		}
		if p.sizeUnit {
			p.Size = p.sizeBytes / uint64(sectorSize) // may be 0: see unitSize
		}
	}
	base.SectorSize = sectorSize
	out, err := base.place(g, true)
	if err != nil {
		return nil, err
	}
	// grow=yes partitions share the free space left at the end of the disk.
	for round := 0; round < 8; round++ {
		free := g.last + 1 - out.endOfPrimaries()
		free = free / g.grain * g.grain
		var growers []int
		for i, p := range out.Parts {
			if p.Grow && !(l.Label == "dos" && p.Number > 4) && (p.MaxSize == 0 || p.Size < p.MaxSize) {
				growers = append(growers, i)
			}
		}
		if free < g.grain || len(growers) == 0 {
			break
		}
		share := free / uint64(len(growers)) / g.grain * g.grain
		if share == 0 {
			break
		}
		for _, i := range growers {
			add := share
			if m := out.Parts[i].MaxSize; m != 0 && out.Parts[i].Size+add > m {
				add = m - out.Parts[i].Size
			}
			base.Parts[i].Size = out.Parts[i].Size + add
			base.Parts[i].sizeUnit, base.Parts[i].sizeBytes = false, 0
			base.Parts[i].Start = 0
			if l.Parts[i].Start != 0 {
				base.Parts[i].Start = out.Parts[i].Start
			}
		}
		// Re-place: partitions after a grown one move unless their start was fixed.
		if out, err = base.place(g, true); err != nil {
			return nil, err
		}
	}
	if l.Label == "gpt" {
		out.FirstLBA, out.LastLBA = g.first, g.last
	}
	for i := range out.Parts {
		out.Parts[i].sizeUnit, out.Parts[i].sizeBytes = false, 0
	}
	return out, nil
}

func (l *Layout) endOfPrimaries() uint64 {
	var end uint64
	for _, p := range l.Parts {
		if l.Label == "dos" && p.Number > 4 {
			continue
		}
		if e := p.Start + p.Size; e > end {
			end = e
		}
	}
	return end
}

func (l *Layout) clone() *Layout {
	c := *l
	c.Parts = append([]Part(nil), l.Parts...)
	return &c
}

// place assigns starts and sizes in file order, as sfdisk creates the
// partitions (numbers in disk sectors already). explain=false gives plain
// errors (tooBig's trial placement).
func (l *Layout) place(g geometry, explain bool) (*Layout, error) {
	out := l.clone()
	var used []span // primaries / gpt
	var ext *Part
	var logical []span  // the logical partitions and their EBR sectors
	var ebrAreas []span // each with libfdisk's first_lba before and after it
	align := func(v uint64) uint64 { return alignUp(v, g.grain) }
	dos := out.Label == "dos"
	firstLBA := align(g.first) // libfdisk's first_lba: 1 once a script starts before it
	for i := range out.Parts {
		p := &out.Parts[i]
		isLogical := dos && p.Number > 4
		if dos && p.autoNumber {
			logical, ok := libfdiskKind(g, out.Parts[:i], p, ext)
			if !ok {
				return nil, l.fitPartErr(p, explain, "has no room: sfdisk finds no free primary slot or no free grain between the primary partitions (\"All space for primary partitions is in use\")")
			}
			if logical != isLogical {
				return nil, l.numberErr(p, logical)
			}
		}
		lo, hi := g.first, g.last
		set := used
		if isLogical {
			if ext == nil {
				return nil, l.lineErr(p.Line, "logical partition %d before the extended partition", p.Number)
			}
			lo, hi, set = ext.Start+1, ext.Start+ext.Size-1, logical
		}
		var gapEnd uint64
		if p.Start == 0 {
			var s uint64
			ok := false
			switch {
			case !dos:
				s, gapEnd, ok = largestFree(set, lo, hi, g.grain)
			case isLogical:
				// after the EBR areas of the logical partitions placed so far
				s, gapEnd, ok = firstFreeFor(ebrAreas, lo, hi, ext.Start+firstLBA, p.Size, align)
				gapEnd = min(gapEnd, gapEndAt(set, hi, s))
			default:
				// the first aligned free sector where the size fits, else
				// (a full disk) the first free one; where none fits, the
				// first one for the "does not fit" error
				for _, size := range []uint64{p.Size, 0} {
					if s, gapEnd, ok = firstFreeFor(set, lo, hi, firstLBA, size, align); !ok {
						s, gapEnd, ok = firstFreeFor(set, lo, hi, firstLBA, size, func(v uint64) uint64 { return v })
					}
					if ok {
						break
					}
				}
			}
			if !ok {
				return nil, l.tooBig(g, p, "has no free space left", explain)
			}
			p.Start = s
		} else {
			if p.Start < lo {
				return nil, l.fitPartErr(p, explain, "starts at sector %d, before the first usable sector %d", p.Start, lo)
			}
			if p.Start > hi {
				return nil, l.tooBig(g, p, fmt.Sprintf("starts at sector %d, last usable is %d", p.Start, hi), explain)
			}
			if overlaps(set, span{p.Start, p.Start}) {
				return nil, l.fitPartErr(p, explain, "starts at sector %d, which is not free (usable %d-%d)", p.Start, lo, hi)
			}
			if dos && (isLogical && p.Start < ext.Start+firstLBA || !isLogical && p.Start < firstLBA) {
				firstLBA = 1
			}
			gapEnd = gapEndAt(set, hi, p.Start)
		}
		ok := true
		switch {
		case p.sizeUnit:
			p.Size, ok = unitSize(g, dos, p.Start, p.Size, gapEnd)
		case p.Size == 0:
			p.Size, ok = restSize(g, dos, p.Start, gapEnd)
			if p.MaxSize != 0 && p.Size > p.MaxSize {
				p.Size = p.MaxSize
			}
		}
		if !ok && p.Size <= 1 {
			return nil, l.fitPartErr(p, explain, "at sector %d has no room before sector %d", p.Start, gapEnd+1)
		}
		s := span{p.Start, p.Start + p.Size - 1}
		if s.b > hi {
			return nil, l.tooBig(g, p, fmt.Sprintf("ends at sector %d, last usable is %d", s.b, hi), explain)
		}
		if overlaps(set, s) {
			return nil, l.fitPartErr(p, explain, "(sectors %d-%d) overlaps another partition", s.a, s.b)
		}
		if isLogical {
			// libfdisk: the first logical partition's EBR starts the
			// extended partition, the others' lie first_lba before them
			p.ebr = ext.Start
			if p.Number > 5 {
				if p.ebr = p.Start - min(firstLBA, p.Start); p.ebr == ext.Start {
					p.ebr++
				}
			}
			if overlaps(logical, span{p.ebr, p.ebr}) || p.ebr >= p.Start {
				return nil, l.fitPartErr(p, explain, "at sector %d leaves no room for its EBR", p.Start)
			}
			logical = append(logical, span{p.ebr, p.ebr}, s)
			ebrAreas = append(ebrAreas, span{s.a - min(firstLBA, s.a), s.b + firstLBA})
		} else {
			used = append(used, s)
			if dos && IsExtended(p.Type) {
				ext = p
			}
		}
	}
	return out, nil
}

// firstFreeFor is firstFree for a partition of size sectors (0: the rest):
// libfdisk's dos search moves on past free gaps too small for the size.
func firstFreeFor(used []span, lo, hi, from, size uint64, align func(uint64) uint64) (start, gapEnd uint64, ok bool) {
	for {
		start, gapEnd, ok = firstFree(used, lo, hi, from, align)
		if !ok || size == 0 || gapEnd-start+1 >= size {
			return start, gapEnd, ok
		}
		from = gapEnd + 1
	}
}

// libfdiskKind is libfdisk 2.38's choice (dos_add_partition) for a dos
// partition without number: with an extended partition ext, a start
// inside it makes it logical and a start outside primary. Otherwise it is
// primary when a primary slot is free and libfdisk sees a grain of free
// space (before a used slot's start, walking the slots in number order,
// or after the last one); if not, logical when ext exists, and refused
// (ok false) when it does not.
func libfdiskKind(g geometry, placed []Part, p, ext *Part) (logical, ok bool) {
	if p.Start != 0 && ext != nil {
		return p.Start >= ext.Start && p.Start <= ext.Start+ext.Size-1, true
	}
	var slots [5]*Part
	for i := range placed {
		if n := placed[i].Number; n >= 1 && n <= 4 {
			slots[n] = &placed[i]
		}
	}
	freeSlot, freeSpace := false, false
	first := alignUp(g.first, g.grain) // libfdisk's first_lba
	for n := 1; n <= 4; n++ {
		q := slots[n]
		if q == nil {
			freeSlot = true
			continue
		}
		if first+g.grain <= q.Start {
			freeSpace = true
		}
		first = q.Start + q.Size
	}
	if first+g.grain <= g.sectors {
		freeSpace = true
	}
	if freeSlot && freeSpace {
		return false, true
	}
	return true, ext != nil
}

// numberErr: the layout numbered a partition differently from sfdisk on
// this disk (a line without a number after the extended partition).
func (l *Layout) numberErr(p *Part, logical bool) error {
	what := "a primary partition (1-4)"
	if logical {
		what = "a logical partition (5 or more)"
	}
	return l.lineErr(p.Line, "sfdisk makes this line %s on this disk, not partition %d: give the number (for example \"%d: ...\" or \"5: ...\")", what, p.Number, p.Number)
}

// fitPartErr is a FitError (or, for tooBig's trial, a plain line error).
func (l *Layout) fitPartErr(p *Part, explain bool, format string, a ...any) error {
	if !explain {
		return l.lineErr(p.Line, "partition %d "+format, append([]any{p.Number}, a...)...)
	}
	return l.fitErr(p, format, a...)
}

// tooBig is the "does not fit" error: how many MiB the whole layout needs
// beyond this disk.
func (l *Layout) tooBig(g geometry, p *Part, what string, explain bool) error {
	if !explain {
		return l.fitPartErr(p, false, "%s", what)
	}
	// Place on an unbounded disk, "rest" partitions taking one grain.
	big := l.clone()
	for i := range big.Parts {
		if big.Parts[i].Size == 0 && !big.Parts[i].sizeUnit {
			big.Parts[i].Size = g.grain
		}
	}
	gg := g
	gg.last = 1 << 62
	gg.sectors = 1 << 62
	need := uint64(0)
	if o, err := big.place(gg, false); err == nil {
		for _, q := range o.Parts {
			if e := q.Start + q.Size - 1; e > need {
				need = e
			}
		}
	}
	short := uint64(0)
	if need > g.last {
		short = (need - g.last) * uint64(g.ss)
	}
	shortMiB := (short + mib - 1) / mib
	if shortMiB == 0 {
		shortMiB = 1
	}
	return &LineError{File: l.Source, Line: p.Line, Err: &FitError{Part: p.Number, Problem: what,
		DiskMiB: g.sectors * uint64(g.ss) / mib, ShortMiB: shortMiB}}
}
