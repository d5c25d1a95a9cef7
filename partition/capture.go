package partition

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// FstabEntry is one line of /etc/fstab.
type FstabEntry struct {
	Spec, File, Type string
}

// ReadFstab parses an fstab file (comments and blank lines skipped; \040
// escapes decoded).
func ReadFstab(path string) ([]FstabEntry, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []FstabEntry
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		fs := strings.Fields(line)
		if len(fs) < 2 {
			continue
		}
		e := FstabEntry{Spec: unescape(fs[0]), File: unescape(fs[1])}
		if len(fs) > 2 {
			e.Type = fs[2]
		}
		out = append(out, e)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return out, nil
}

// ErrNotNamed is a capture whose fstab names no partition of the disk (the
// wrong disk, or the wrong root): the layout would have no mount points,
// and no clone can use it (the clone needs mount=/), so Capture refuses it
// rather than write it silently.
var ErrNotNamed = errors.New("names no partition of")

// Capture builds a layout file from a running golden node: the table of
// dev, each partition's filesystem probed from its superblock, and mount
// points from root's /etc/fstab (matched by UUID=, LABEL=, PARTUUID=,
// PARTLABEL= or device name). The partition mounted at /data is preserved.
// A missing fstab, or one that names no partition of dev (ErrNotNamed), is
// an error: the layout would have no mount points.
func Capture(dev, root string) (*Layout, error) {
	d, err := openDisk(dev, os.O_RDONLY)
	if err != nil {
		return nil, err
	}
	defer d.Close()
	l, err := d.dump()
	if err != nil {
		return nil, err
	}
	tab := filepath.Join(root, "etc", "fstab")
	fstab, err := ReadFstab(tab)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%s: no fstab, so the layout would have no mount points (is %s the root of the node whose disk is %s?)", tab, root, dev)
	}
	if err != nil {
		return nil, err
	}
	for i := range l.Parts {
		p := &l.Parts[i]
		if l.Label == "dos" && IsExtended(p.Type) {
			continue
		}
		fi, err := ProbeFSAt(d.f, int64(p.Start)*int64(d.ss))
		if err == nil && fi.Type != "jbd" {
			p.FS = fi.Type
			p.FSLabel = fi.Label
		} else {
			fi = &FSInfo{}
		}
		partuuid := strings.ToLower(p.UUID)
		if l.Label == "dos" {
			partuuid = fmt.Sprintf("%s-%02x", strings.TrimPrefix(l.LabelID, "0x"), p.Number)
		}
		for _, e := range fstab {
			if matchSpec(e.Spec, fi, partuuid, p, dev) {
				if e.File != "none" && strings.HasPrefix(e.File, "/") {
					p.Mount = e.File
				}
				if p.FS == "" && e.Type != "" && e.Type != "auto" {
					p.FS = e.Type
				}
				break
			}
		}
		if p.Mount == "/data" {
			p.Preserve = true
		}
	}
	l.portable(d.sectors())
	for _, p := range l.Parts {
		if p.Mount != "" {
			return l, nil
		}
	}
	return nil, fmt.Errorf("%s %w %s (%s): is %s the node's disk, and %s its root?", tab, ErrNotNamed, dev, fstabRoot(fstab), dev, root)
}

// fstabRoot says what an fstab mounts at "/".
func fstabRoot(fstab []FstabEntry) string {
	for _, e := range fstab {
		if e.File == "/" {
			return "it mounts " + e.Spec + " at /"
		}
	}
	return "it mounts nothing at /"
}

// portable drops what ties a dumped layout to the golden disk's size: the
// gpt last-lba, and the size of partitions that run to the end of the disk
// (or of the extended partition), so they take the rest on any disk.
func (l *Layout) portable(sectors uint64) {
	g, err := l.geometry(sectors, l.SectorBytes())
	if err != nil {
		return
	}
	l.LastLBA = 0
	endOf := func(p *Part) uint64 { return p.Start + p.Size - 1 }
	var ext *Part
	for i := range l.Parts {
		if l.Label == "dos" && l.Parts[i].Number <= 4 && IsExtended(l.Parts[i].Type) {
			ext = &l.Parts[i]
		}
	}
	if ext != nil {
		var last *Part
		for i := range l.Parts {
			if p := &l.Parts[i]; p.Number > 4 && (last == nil || endOf(p) > endOf(last)) {
				last = p
			}
		}
		if last != nil && endOf(last) == endOf(ext) {
			last.Size = 0
		}
	}
	var last *Part
	for i := range l.Parts {
		if p := &l.Parts[i]; (l.Label != "dos" || p.Number <= 4) && p.Size != 0 && (last == nil || endOf(p) > endOf(last)) {
			last = p
		}
	}
	if last == nil {
		if ext != nil && endOf(ext) >= g.last {
			ext.Size = 0
		}
		return
	}
	limit := g.last
	if l.Label == "gpt" {
		limit = g.last/g.grain*g.grain - 1
	}
	if endOf(last) >= limit {
		last.Size = 0
	}
}

func matchSpec(spec string, fi *FSInfo, partuuid string, p *Part, dev string) bool {
	k, v, ok := strings.Cut(spec, "=")
	if ok {
		v = strings.Trim(v, `"`)
		switch strings.ToUpper(k) {
		case "UUID":
			return fi.UUID != "" && strings.EqualFold(v, fi.UUID)
		case "LABEL":
			return fi.Label != "" && v == fi.Label
		case "PARTUUID":
			return strings.EqualFold(v, partuuid)
		case "PARTLABEL":
			return p.Name != "" && v == p.Name
		}
		return false
	}
	for _, pre := range []string{"/dev/disk/by-uuid/", "/dev/disk/by-label/", "/dev/disk/by-partuuid/"} {
		if strings.HasPrefix(spec, pre) {
			v := strings.TrimPrefix(spec, pre)
			switch pre {
			case "/dev/disk/by-uuid/":
				return fi.UUID != "" && strings.EqualFold(v, fi.UUID)
			case "/dev/disk/by-label/":
				return fi.Label != "" && v == fi.Label
			default:
				return strings.EqualFold(v, partuuid)
			}
		}
	}
	node := PartDevice(dev, p.Number)
	return spec == node || filepath.Base(spec) == filepath.Base(node)
}
