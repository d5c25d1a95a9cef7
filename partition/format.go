package partition

import (
	"fmt"
	"io"
	"strconv"
	"strings"
)

// WriteTo writes the layout file: exactly `sfdisk -d`'s format, followed
// by "# clonecd:" lines for partitions with metadata.
func (l *Layout) WriteTo(w io.Writer) (int64, error) {
	var b strings.Builder
	hdr := func(k, v string) { fmt.Fprintf(&b, "%s: %s\n", k, v) }
	if l.Label != "" {
		hdr("label", l.Label)
	}
	if l.LabelID != "" {
		hdr("label-id", l.LabelID)
	}
	if l.Device != "" {
		hdr("device", l.Device)
	}
	if l.Unit != "" {
		hdr("unit", l.Unit)
	}
	if l.FirstLBA != 0 {
		hdr("first-lba", strconv.FormatUint(l.FirstLBA, 10))
	}
	if l.LastLBA != 0 {
		hdr("last-lba", strconv.FormatUint(l.LastLBA, 10))
	}
	if l.TableLength != 0 && l.TableLength != 128 {
		hdr("table-length", strconv.Itoa(l.TableLength))
	}
	if l.Grain != 0 && l.Grain != 1<<20 {
		hdr("grain", strconv.FormatUint(l.Grain, 10))
	}
	if l.SectorSize != 0 {
		hdr("sector-size", strconv.Itoa(l.SectorSize))
	}
	if len(l.Parts) > 0 {
		b.WriteByte('\n')
	}
	for _, p := range l.Parts {
		node := p.Node
		if node == "" {
			node = PartDevice(l.Device, p.Number)
		}
		var f []string
		if p.Start != 0 {
			f = append(f, fmt.Sprintf("start=%12d", p.Start))
		}
		switch {
		case p.sizeUnit:
			f = append(f, "size="+formatBytes(p.sizeBytes))
		case p.Size != 0:
			f = append(f, fmt.Sprintf("size=%12d", p.Size))
		}
		if p.Type != "" {
			f = append(f, "type="+p.Type)
		}
		if p.UUID != "" {
			f = append(f, "uuid="+p.UUID)
		}
		if p.Name != "" {
			f = append(f, "name="+quoteName(p.Name))
		}
		if p.Attrs != "" && l.Label != "dos" {
			f = append(f, `attrs="`+p.Attrs+`"`)
		}
		if p.Bootable {
			f = append(f, "bootable")
		}
		fmt.Fprintf(&b, "%s :", node)
		if len(f) > 0 {
			b.WriteString(" " + strings.Join(f, ", "))
		}
		b.WriteByte('\n')
	}
	for _, p := range l.Parts {
		if !p.HasMetadata() {
			continue
		}
		fmt.Fprintf(&b, "# clonecd: part=%d", p.Number)
		if p.FS != "" {
			fmt.Fprintf(&b, " fs=%s", quoteMeta(p.FS))
		}
		if p.Mount != "" {
			fmt.Fprintf(&b, " mount=%s", quoteMeta(p.Mount))
		}
		if p.FSLabel != "" {
			fmt.Fprintf(&b, " label=%s", quoteMeta(p.FSLabel))
		}
		if p.Mkfs != "" {
			fmt.Fprintf(&b, " mkfs=%s", quoteMeta(p.Mkfs))
		}
		if p.Preserve != (p.Mount == "/data") {
			if p.Preserve {
				b.WriteString(" preserve=yes")
			} else {
				b.WriteString(" preserve=no")
			}
		}
		if p.Grow {
			b.WriteString(" grow=yes")
		}
		if p.MaxSize != 0 {
			fmt.Fprintf(&b, " maxsize=%d", p.MaxSize)
		}
		b.WriteByte('\n')
	}
	n, err := io.WriteString(w, b.String())
	return int64(n), err
}

// String returns the layout file text.
func (l *Layout) String() string {
	var b strings.Builder
	l.WriteTo(&b)
	return b.String()
}
