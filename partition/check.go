package partition

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
)

// Decision says whether a disk's preserved partitions (/data) can be kept.
type Decision struct {
	Preserve bool
	Reason   string // why not (or what is kept)
	Keep     []int  // partition numbers kept when Preserve
	Mounts   []string
}

// String is the line `clonecd layout check` prints.
func (d *Decision) String() string {
	if d.Preserve {
		return "preserve " + strings.Join(d.Mounts, " ")
	}
	return "repartition: " + d.Reason
}

func partWhat(p *Part) string {
	if p.Mount != "" {
		return fmt.Sprintf("partition %d (%s)", p.Number, p.Mount)
	}
	return fmt.Sprintf("partition %d", p.Number)
}

// Check compares the disk's table with the layout fitted to the disk
// (label, partitions, types, starts, sizes) and checks each preserved
// partition's filesystem: a superblock of the expected type and a read-only
// fsck (e2fsck -n -f, xfs_repair -n, fsck.vfat -n) that passes. It writes
// nothing. An error means the check itself could not run.
func Check(l *Layout, dev string) (*Decision, error) {
	d, err := openDisk(dev, os.O_RDONLY)
	if err != nil {
		return nil, err
	}
	defer d.Close()
	no := func(format string, a ...any) (*Decision, error) {
		return &Decision{Reason: fmt.Sprintf(format, a...)}, nil
	}
	want, err := d.fit(l)
	if err != nil {
		return nil, err
	}
	var keep []*Part
	for i := range want.Parts {
		if want.Parts[i].Preserve {
			keep = append(keep, &want.Parts[i])
		}
	}
	if len(keep) == 0 {
		return no("the layout preserves no partition")
	}
	if _, reason, err := d.compare(l, dev); err != nil || reason != "" {
		if err != nil {
			return nil, err
		}
		return no("%s", reason)
	}
	dec := &Decision{Preserve: true}
	for _, p := range keep {
		if p.FS != "" && p.FS != "swap" {
			fi, err := ProbeFSAt(d.f, int64(p.Start)*int64(d.ss))
			if err != nil {
				return no("%s: no %s filesystem (%v)", partWhat(p), p.FS, err)
			}
			if fi.Type != p.FS {
				return no("%s holds %s, the layout wants %s", partWhat(p), fi.Type, p.FS)
			}
			if msg, err := fsck(d, p); err != nil {
				return nil, err
			} else if msg != "" {
				return no("%s: %s", partWhat(p), msg)
			}
		}
		dec.Keep = append(dec.Keep, p.Number)
		m := p.Mount
		if m == "" {
			m = PartDevice(dev, p.Number)
		}
		dec.Mounts = append(dec.Mounts, m)
	}
	dec.Reason = "table matches and " + strings.Join(dec.Mounts, ", ") + " passed fsck"
	return dec, nil
}

// fsck runs a read-only filesystem check on partition p. It returns a
// message when the filesystem has errors, an error when it cannot check.
func fsck(d *disk, p *Part) (string, error) {
	off := int64(p.Start) * int64(d.ss)
	size := int64(p.Size) * int64(d.ss)
	dev := ""
	if d.block {
		dev = PartDevice(d.path, p.Number)
		if _, err := os.Stat(dev); err != nil {
			dev = ""
		}
	}
	cleanup := func() {}
	if dev == "" {
		if strings.HasPrefix(p.FS, "ext") {
			dev = fmt.Sprintf("%s?offset=%d", d.path, off)
		} else {
			out, err := exec.Command("losetup", "--find", "--show", "--read-only", "--offset", strconv.FormatInt(off, 10),
				"--sizelimit", strconv.FormatInt(size, 10), d.path).CombinedOutput()
			if err != nil {
				return "", fmt.Errorf("losetup for fsck of %s partition %d: %v: %s", d.path, p.Number, err, out)
			}
			dev = strings.TrimSpace(string(out))
			cleanup = func() { exec.Command("losetup", "-d", dev).Run() }
		}
	}
	defer cleanup()
	var cmd *exec.Cmd
	switch p.FS {
	case "ext2", "ext3", "ext4":
		cmd = exec.Command("e2fsck", "-n", "-f", dev)
	case "xfs":
		cmd = exec.Command("xfs_repair", "-n", dev)
	case "vfat":
		cmd = exec.Command("fsck.vfat", "-n", dev)
	default:
		return "", nil
	}
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	out, err := cmd.CombinedOutput()
	if err == nil {
		return "", nil
	}
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		return "", fmt.Errorf("%s: %w", cmd.Path, err)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	tail := lines
	if len(tail) > 3 {
		tail = tail[len(tail)-3:]
	}
	return fmt.Sprintf("%s found errors (exit %d): %s", strings.Join(cmd.Args[:len(cmd.Args)-1], " "), ee.ExitCode(),
		strings.Join(tail, "; ")), nil
}

// CheckTable is the first half of Check: whether the disk's table is the
// layout fitted to the disk (label, partitions, types, starts, sizes),
// without looking at any filesystem, so it can run on a disk in use
// (clonecd sync: a node whose table differs needs a reclone). Preserve
// says it is; Reason says why not.
func CheckTable(l *Layout, dev string) (*Decision, error) {
	d, err := openDisk(dev, os.O_RDONLY)
	if err != nil {
		return nil, err
	}
	defer d.Close()
	_, reason, err := d.compare(l, dev)
	if err != nil {
		return nil, err
	}
	if reason != "" {
		return &Decision{Reason: reason}, nil
	}
	return &Decision{Preserve: true, Reason: "table matches"}, nil
}

// compare fits l to the disk and compares the disk's table with it: the
// fitted layout, and why the table differs ("" when it matches).
func (d *disk) compare(l *Layout, dev string) (*Layout, string, error) {
	want, err := d.fit(l)
	if err != nil {
		return nil, "", err
	}
	have, err := d.dump()
	if errors.Is(err, ErrNoTable) {
		return want, fmt.Sprintf("no partition table on %s", dev), nil
	}
	if err != nil {
		return nil, "", err
	}
	if have.Label != want.Label {
		return want, fmt.Sprintf("the disk has a %s partition table, the layout is %s", have.Label, want.Label), nil
	}
	for i := range want.Parts {
		w := &want.Parts[i]
		h := have.Part(w.Number)
		switch {
		case h == nil:
			return want, fmt.Sprintf("%s is missing on the disk", partWhat(w)), nil
		case !strings.EqualFold(h.Type, w.Type):
			return want, fmt.Sprintf("%s has type %s, the layout wants %s", partWhat(w), h.Type, w.Type), nil
		case h.Start != w.Start:
			return want, fmt.Sprintf("%s starts at sector %d, the layout wants %d", partWhat(w), h.Start, w.Start), nil
		case h.Size != w.Size:
			return want, fmt.Sprintf("%s has %d sectors, the layout wants %d", partWhat(w), h.Size, w.Size), nil
		}
	}
	for _, h := range have.Parts {
		if want.Part(h.Number) == nil {
			return want, fmt.Sprintf("partition %d on the disk is not in the layout", h.Number), nil
		}
	}
	return want, "", nil
}
