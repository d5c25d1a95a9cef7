package partition

import (
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// ApplyOptions are Apply's settings; the zero value writes the table, and
// refuses a disk in use and a layout without partitions.
type ApplyOptions struct {
	DryRun bool // write nothing; return the table that would be written
	Force  bool // write even when the disk is in use (mounted, swap, held)

	// AllowEmpty writes a layout without partitions: an empty table, so
	// every partition of the disk goes (sfdisk does that for "label: dos"
	// alone). Without it such a layout is refused.
	AllowEmpty bool

	// Warn is told what Apply goes on despite: the *InUseError of a disk
	// in use in a dry run or with Force. nil: no warnings.
	Warn func(error)
}

// Apply fits l to the disk dev (block device or image file), fills in a
// random label-id and partition uuids where the layout has none, and
// writes the table; for a block device it then has the kernel re-read it
// (BLKRRPART, or BLKPG like partx when that is refused). It returns the
// table as written.
//
// Before the first write it refuses a layout that does not fit, a layout
// without partitions (unless AllowEmpty) and a disk in use (see InUse;
// unless Force), with an *InUseError naming what uses it. A block device
// is opened exclusively for the write, so nothing mounts it meanwhile.
//
// With DryRun it writes nothing and returns the table it would write; a
// label-id or gpt partition uuid the layout does not give is left empty
// there: it is chosen at random when the table is written.
func Apply(l *Layout, dev string, o ApplyOptions) (*Layout, error) {
	if len(l.Parts) == 0 && !o.AllowEmpty {
		what := l.Source
		if what == "" {
			what = "the layout"
		}
		return nil, fmt.Errorf("%s: %w: writing it would delete every partition of %s; nothing was written (give --allow-empty to write an empty table)", what, ErrNoPartitions, dev)
	}
	inUse := &InUseError{Disk: dev}
	var err error
	if inUse.Uses, err = InUse(dev); err != nil {
		return nil, err
	}
	flag := os.O_RDWR
	switch {
	case len(inUse.Uses) > 0 && !o.DryRun && !o.Force:
		return nil, refuseInUse(inUse)
	case len(inUse.Uses) > 0 && o.Warn != nil:
		o.Warn(inUse)
	case len(inUse.Uses) == 0 && !o.DryRun:
		flag |= unix.O_EXCL // keep it so until the table is written
	}
	if o.DryRun {
		flag = os.O_RDONLY
	}
	d, err := openExclusive(dev, flag)
	if err != nil {
		return nil, err
	}
	defer d.Close()
	fl, err := d.fit(l)
	if err != nil {
		return nil, err
	}
	fl.Device = dev
	fl.Unit = "sectors"
	for i := range fl.Parts {
		fl.Parts[i].Node = PartDevice(dev, fl.Parts[i].Number)
	}
	sort.SliceStable(fl.Parts, func(i, j int) bool { return fl.Parts[i].Number < fl.Parts[j].Number })
	random := fl.randomIDs()
	var sectors map[uint64][]byte
	if fl.Label == "gpt" {
		sectors, err = d.gptSectors(fl)
	} else {
		sectors, err = d.dosSectors(fl)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", dev, err)
	}
	if o.DryRun {
		random.clear(fl)
		return fl, nil
	}
	lbas := make([]uint64, 0, len(sectors))
	for lba := range sectors {
		lbas = append(lbas, lba)
	}
	sort.Slice(lbas, func(i, j int) bool { return lbas[i] > lbas[j] }) // backup first, MBR last
	for _, lba := range lbas {
		if err := d.writeAt(sectors[lba], lba); err != nil {
			return nil, err
		}
	}
	if err := d.f.Sync(); err != nil {
		return nil, fmt.Errorf("%s: sync: %w", dev, err)
	}
	if err := d.reread(fl); err != nil {
		return fl, fmt.Errorf("the new table is written to %s, but the kernel still uses the old one: %w (reboot, or run partx -u %s once nothing uses the disk)", dev, err, dev)
	}
	return fl, nil
}

func refuseInUse(e *InUseError) error {
	return fmt.Errorf("%w; nothing was written (unmount its filesystems, swapoff its swap and stop what holds it, or give --force)", e)
}

// openExclusive opens the disk; an exclusive open that the kernel refuses
// (EBUSY: something claimed the disk since InUse looked, or udev is
// scanning it for a moment) is retried for a second, then refused as in
// use.
func openExclusive(dev string, flag int) (*disk, error) {
	for try := 0; ; try++ {
		d, err := openDisk(dev, flag)
		if !errors.Is(err, unix.EBUSY) || flag&unix.O_EXCL == 0 {
			return d, err
		}
		if try == 10 {
			uses, _ := InUse(dev)
			if len(uses) == 0 {
				uses = []Use{{dev, "held open exclusively (the kernel refuses an exclusive open: EBUSY)"}}
			}
			return nil, refuseInUse(&InUseError{Disk: dev, Uses: uses})
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// FitDisk fits l to the disk dev (block device or image file) as Apply
// would, writing nothing; errors name the disk (FitError.Disk).
func (l *Layout) FitDisk(dev string) (*Layout, error) {
	d, err := openDisk(dev, os.O_RDONLY)
	if err != nil {
		return nil, err
	}
	defer d.Close()
	return d.fit(l)
}

// fit fits l to the disk with the disk's grain when the layout gives none.
func (d *disk) fit(l *Layout) (*Layout, error) {
	if l.Grain == 0 && d.grain != mib {
		l = l.clone()
		l.Grain = d.grain
	}
	fl, err := l.Fit(d.sectors(), d.ss)
	if err != nil {
		return nil, onDisk(err, d.path)
	}
	return fl, nil
}

// randomIDs are the ids Apply chose at random (what the layout left out).
type randomIDs struct {
	labelID bool
	uuids   []int // partition indexes
}

// randomIDs fills in a random label-id and gpt partition uuids where the
// layout gives none, as sfdisk does.
func (l *Layout) randomIDs() randomIDs {
	var r randomIDs
	if l.LabelID == "" {
		r.labelID = true
		if l.Label == "gpt" {
			l.LabelID = newGUID()
		} else {
			l.LabelID = "0x" + strings.ToLower(newGUID()[:8])
		}
	}
	if l.Label == "gpt" {
		for i := range l.Parts {
			if l.Parts[i].UUID == "" {
				l.Parts[i].UUID = newGUID()
				r.uuids = append(r.uuids, i)
			}
		}
	}
	return r
}

// clear takes the random ids out again (a dry run shows none: they are
// chosen when the table is written).
func (r randomIDs) clear(l *Layout) {
	if r.labelID {
		l.LabelID = ""
	}
	for _, i := range r.uuids {
		l.Parts[i].UUID = ""
	}
}
