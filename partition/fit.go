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

// defaultSize is sfdisk's size for a partition without one: the rest of
// the free space, its end aligned down to the grain on gpt.
func (l *Layout) defaultSize(g geometry, start, gapEnd uint64) uint64 {
	if l.Label == "gpt" {
		// libfdisk aligns the last sector down, then steps back one.
		if e := gapEnd / g.grain * g.grain; e > start {
			return e - start
		}
	}
	return gapEnd - start + 1
}

// alignedSize is libfdisk's end alignment for a size given with a unit:
// the last sector + 1 goes to the nearest grain boundary within the free
// space (sizes up to one grain are left alone).
func alignedSize(g geometry, start, size, gapEnd uint64) uint64 {
	if size <= g.grain {
		return size
	}
	last := start + size - 1
	if last > gapEnd {
		return size // does not fit: reported by the caller
	}
	lo := alignUp(start, g.grain)
	hi := (gapEnd + 1) / g.grain * g.grain
	if hi < lo {
		return size
	}
	n := (last + g.grain/2) / g.grain * g.grain
	if n < lo {
		n = lo
	}
	if n > hi {
		n = hi
	}
	if n <= start {
		return size
	}
	return n - start
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
		end := hi
		for _, u := range used {
			if u.a > c && u.a-1 < end {
				end = u.a - 1
			}
		}
		return c, end, true
	}
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
// sfdisk's rules (a missing start is the first free aligned sector, a
// missing size the rest of that free space) and clonecd's grow/maxsize.
// The error says by how many MiB the layout does not fit.
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
				return nil, lineErr(p.Line, "partition %d: %v", p.Number, err)
			}
		}
		if p.sizeBytes != 0 {
			p.Size = p.sizeBytes / uint64(sectorSize)
			if p.Size == 0 {
				return nil, lineErr(p.Line, "partition %d: size smaller than a sector", p.Number)
			}
		}
	}
	base.SectorSize = sectorSize
	out, err := base.place(g)
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
			base.Parts[i].sizeBytes = 0
			base.Parts[i].Start = 0
			if l.Parts[i].Start != 0 {
				base.Parts[i].Start = out.Parts[i].Start
			}
		}
		// Re-place: partitions after a grown one move unless their start was fixed.
		if out, err = base.place(g); err != nil {
			return nil, err
		}
	}
	if l.Label == "gpt" {
		out.FirstLBA, out.LastLBA = g.first, g.last
	}
	for i := range out.Parts {
		out.Parts[i].sizeBytes = 0
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

// place assigns starts and sizes in file order (sectors already in disk units).
func (l *Layout) place(g geometry) (*Layout, error) { return l.placeOpt(g, true) }

// placeOpt places; explain=false gives plain errors (used by tooBig).
func (l *Layout) placeOpt(g geometry, explain bool) (*Layout, error) {
	out := l.clone()
	var used []span // primaries / gpt
	var ext *Part
	var logical []span
	align := func(v uint64) uint64 { return alignUp(v, g.grain) }
	for i := range out.Parts {
		p := &out.Parts[i]
		isLogical := out.Label == "dos" && p.Number > 4
		lo, hi := g.first, g.last
		set := used
		if isLogical {
			if ext == nil {
				return nil, lineErr(p.Line, "logical partition %d before the extended partition", p.Number)
			}
			lo, hi, set = ext.Start+1, ext.Start+ext.Size-1, logical
		}
		if p.Start == 0 {
			from := lo
			if isLogical {
				// one sector for the EBR before the partition
				from = ext.Start
				for _, s := range set {
					if s.b+1 > from {
						from = s.b + 1
					}
				}
				from++
			}
			s, end, ok := firstFree(set, lo, hi, from, align)
			if !ok {
				return nil, l.tooBig(g, p, "no free space left for it", explain)
			}
			p.Start = s
			if p.Size == 0 {
				p.Size = out.defaultSize(g, s, end)
				if p.MaxSize != 0 && p.Size > p.MaxSize {
					p.Size = p.MaxSize
				}
			} else if p.sizeBytes != 0 {
				p.Size = alignedSize(g, s, p.Size, end)
			}
		} else if p.Size == 0 {
			if p.Start < lo || p.Start > hi || overlaps(set, span{p.Start, p.Start}) {
				return nil, lineErr(p.Line, "partition %d: start %d is not free (usable %d-%d)", p.Number, p.Start, lo, hi)
			}
			p.Size = out.defaultSize(g, p.Start, gapEndAt(set, hi, p.Start))
			if p.MaxSize != 0 && p.Size > p.MaxSize {
				p.Size = p.MaxSize
			}
		} else if p.sizeBytes != 0 {
			p.Size = alignedSize(g, p.Start, p.Size, gapEndAt(set, hi, p.Start))
		}
		s := span{p.Start, p.Start + p.Size - 1}
		if p.Start < lo {
			return nil, lineErr(p.Line, "partition %d: start %d before the first usable sector %d", p.Number, p.Start, lo)
		}
		if s.b > hi {
			return nil, l.tooBig(g, p, fmt.Sprintf("ends at sector %d, last usable is %d", s.b, hi), explain)
		}
		if overlaps(set, s) {
			return nil, lineErr(p.Line, "partition %d (sectors %d-%d) overlaps another partition", p.Number, s.a, s.b)
		}
		if isLogical {
			logical = append(logical, span{s.a - 1, s.b}) // EBR sector belongs to it
		} else {
			used = append(used, s)
			if out.Label == "dos" && IsExtended(p.Type) {
				ext = p
			}
		}
	}
	return out, nil
}

// tooBig builds the "does not fit" error: how many MiB the whole layout
// needs beyond this disk.
func (l *Layout) tooBig(g geometry, p *Part, what string, explain bool) error {
	if !explain {
		return lineErr(p.Line, "partition %d %s", p.Number, what)
	}
	// Place on an unbounded disk, "rest" partitions taking one grain.
	big := l.clone()
	for i := range big.Parts {
		if big.Parts[i].Size == 0 {
			big.Parts[i].Size = g.grain
		}
	}
	gg := g
	gg.last = 1 << 62
	need := uint64(0)
	if o, err := big.placeOpt(gg, false); err == nil {
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
	return lineErr(p.Line, "layout does not fit: partition %d %s; the disk (%d MiB) is %d MiB too small",
		p.Number, what, g.sectors*uint64(g.ss)/mib, shortMiB)
}
