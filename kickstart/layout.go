package kickstart

import (
	"errors"
	"fmt"
	"strings"

	"github.com/clonecd/clonecd/partition"
)

// Sizes used when the kickstart asks for a partition without saying how
// big (reqpart, autopart), in MiB, as anaconda makes them.
const (
	BIOSBootMiB = 1
	ESPMiB      = 600
	BootMiB     = 1024
	RootMinMiB  = 1024
	RootMaxMiB  = 51200 // autopart's / stops growing at 50 GiB when /home takes the rest
	HomeMinMiB  = 500
)

const (
	sectorsPerMiB = 2048 // layouts are written in 512-byte sectors
	twoTiB        = 2 << 40
	gptBasicData  = "EBD0A0A2-B9E5-4433-87C0-68B6B72699C7"
)

// RecommendedSwap is anaconda's swap size rule (RHEL 7 to 9, Fedora) for
// ram MiB of memory: 2×RAM below 2 GiB, RAM up to 8 GiB, RAM/2 up to
// 64 GiB, else 4 GiB; hibernation adds RAM (up to 64 GiB of RAM).
func RecommendedSwap(ram uint64, hibernation bool) uint64 {
	const gib = 1024
	var swap uint64
	switch {
	case ram < 2*gib:
		swap = 2 * ram
	case ram < 8*gib:
		swap = ram
	case ram < 64*gib:
		swap = ram / 2
	default:
		swap = 4 * gib
	}
	if hibernation && ram <= 64*gib {
		swap += ram
	}
	return swap
}

// Layout translates the storage commands into a clonecd layout (sizes in
// 512-byte sectors, starts left to partition.Fit) for a disk of unknown
// size. See LayoutFor.
func (ks *Kickstart) Layout() (*partition.Layout, error) { return ks.LayoutFor(0) }

// LayoutFor translates the storage commands for a disk of diskBytes (0:
// unknown; it only matters for the label).
//
// The rules:
//   - One disk is laid out: the one named by ignoredisk --only-use,
//     clearpart --drives, bootloader --boot-drive or part --ondisk (in that
//     order), else sda. A part on another disk is an error.
//   - The label is Options.Label, else clearpart --disklabel, else gpt when
//     the kickstart asks for biosboot or /boot/efi, the firmware is UEFI or
//     the disk is over 2 TiB, else dos (msdos, as RHEL 5 to 8 make on BIOS).
//   - Partitions are made in the kickstart's order, after those reqpart
//     adds (biosboot, /boot/efi, /boot). part --size is MiB; --grow shares
//     the free space (partition.Fit) up to --maxsize; swap --recommended
//     uses RecommendedSwap(Options.RAM). On dos, more than four partitions
//     become three primaries (growing ones, then --asprimary ones, then in
//     order), an extended partition and logical ones (see logicals);
//     /boot (else /) gets the boot flag.
//   - autopart --type=plain makes the RHEL-like plain layout: platform
//     partitions, /boot 1 GiB, swap (recommended), / 1 GiB growing to
//     50 GiB and /home 500 MiB growing (--nohome: / grows without cap).
//   - logvol, volgroup, raid, btrfs, autopart of another type, --encrypted
//     and raid./pv./btrfs. members are errors naming their lines.
func (ks *Kickstart) LayoutFor(diskBytes uint64) (*partition.Layout, error) {
	var errs []string
	for _, c := range ks.Unsupported {
		errs = append(errs, fmt.Sprintf("%s: %s: clonecd cannot make %s", c.where(), c.Name, storageUnsupported[strings.ToLower(c.Name)]))
	}
	for _, r := range ks.Parts {
		if r.unsupport != "" {
			errs = append(errs, fmt.Sprintf("%s: part %s: clonecd cannot make %s", where(r.File, r.Line), r.Mount, r.unsupport))
		}
	}
	a := ks.AutoPart
	if a != nil {
		switch {
		case a.Type != "plain":
			errs = append(errs, fmt.Sprintf("%s: autopart --type=%s: clonecd makes only plain partitions (use --type=plain or part commands)", where(a.File, a.Line), a.Type))
		case a.Encrypt:
			errs = append(errs, fmt.Sprintf("%s: autopart --encrypted: clonecd cannot make encrypted partitions", where(a.File, a.Line)))
		case len(ks.Parts) > 0:
			errs = append(errs, fmt.Sprintf("%s: autopart together with part commands (line %d)", where(a.File, a.Line), ks.Parts[0].Line))
		}
	}
	if len(errs) > 0 {
		return nil, errors.New(strings.Join(errs, "\n"))
	}
	o := ks.opts
	ram := o.RAM
	if ram == 0 {
		ram = DefaultRAM
	}
	defFS := o.DefaultFS
	if defFS == "" {
		defFS = "ext4"
	}
	uefi := strings.EqualFold(o.Firmware, "uefi")

	disk, err := ks.disk()
	if err != nil {
		return nil, err
	}

	reqs := append([]PartRequest(nil), ks.Parts...)
	if a != nil {
		fs := a.FSType
		if fs == "" {
			fs = defFS
		}
		auto := []PartRequest{}
		if !a.NoBoot {
			auto = append(auto, PartRequest{Mount: "/boot", Size: BootMiB, FSType: fs})
		}
		if !a.NoSwap {
			auto = append(auto, PartRequest{Mount: "swap", FSType: "swap", Recommend: true})
		}
		root := PartRequest{Mount: "/", Size: RootMinMiB, Grow: true, FSType: fs}
		if !a.NoHome {
			root.MaxSize = RootMaxMiB
		}
		auto = append(auto, root)
		if !a.NoHome {
			auto = append(auto, PartRequest{Mount: "/home", Size: HomeMinMiB, Grow: true, FSType: fs})
		}
		for i := range auto {
			auto[i].File, auto[i].Line = a.File, a.Line
		}
		reqs = auto
	}
	hasMount := func(m string) bool {
		for _, r := range reqs {
			if r.Mount == m {
				return true
			}
		}
		return false
	}

	label := ""
	switch {
	case o.Label != "":
		label = o.Label
	case ks.ClearPart != nil && ks.ClearPart.DiskLabel != "":
		label = ks.ClearPart.DiskLabel
	case hasMount("biosboot") || hasMount("/boot/efi") || uefi || diskBytes > twoTiB:
		label = "gpt"
	default:
		label = "dos"
	}
	if label == "msdos" {
		label = "dos"
	}
	if label != "dos" && label != "gpt" {
		return nil, fmt.Errorf("label %q: want dos or gpt", label)
	}

	// Platform partitions (reqpart, autopart) go first.
	var platform []PartRequest
	if ks.ReqPart != nil || a != nil {
		f, l := "", 0
		if ks.ReqPart != nil {
			f, l = ks.ReqPart.File, ks.ReqPart.Line
		} else {
			f, l = a.File, a.Line
		}
		if uefi && !hasMount("/boot/efi") {
			platform = append(platform, PartRequest{File: f, Line: l, Mount: "/boot/efi", Size: ESPMiB, FSType: "efi"})
		}
		if !uefi && label == "gpt" && !hasMount("biosboot") {
			platform = append(platform, PartRequest{File: f, Line: l, Mount: "biosboot", Size: BIOSBootMiB, FSType: "biosboot"})
		}
		if ks.ReqPart != nil && ks.ReqPart.AddBoot && !hasMount("/boot") {
			platform = append(platform, PartRequest{File: f, Line: l, Mount: "/boot", Size: BootMiB, FSType: defFS})
		}
	}
	reqs = append(platform, reqs...)

	seen := map[string]int{}
	var parts []partition.Part
	var primary []bool
	var kept []PartRequest
	for _, r := range reqs {
		if r.OnDisk != "" && r.OnDisk != disk {
			return nil, fmt.Errorf("%s: part %s --ondisk=%s: clonecd lays out one disk (%s)", where(r.File, r.Line), r.Mount, r.OnDisk, disk)
		}
		if r.Mount != "" && r.Mount != "swap" {
			if prev, dup := seen[r.Mount]; dup {
				return nil, fmt.Errorf("%s: part %s: mount point already used on line %d", where(r.File, r.Line), r.Mount, prev)
			}
			seen[r.Mount] = r.Line
		}
		if r.FSType == "biosboot" && label == "dos" {
			ks.Warnings = append(ks.Warnings, Warning{r.File, r.Line, "biosboot is for gpt disks; not made on this dos layout"})
			continue
		}
		p := partition.Part{Mount: r.Mount, FSLabel: r.Label, Mkfs: r.MkfsOpts, Preserve: r.NoFormat || r.Mount == "/data"}
		size := r.Size
		switch r.FSType {
		case "swap":
			p.Mount = ""
			p.FS = "swap"
			p.Type = pick(label, "82", partition.GPTSwap)
			if r.Recommend || r.Hibernate {
				size = RecommendedSwap(ram, r.Hibernate)
			}
		case "biosboot":
			p.Mount = ""
			p.Type = partition.GPTBIOSBoot
			if size == 0 {
				size = BIOSBootMiB
			}
		case "efi":
			p.FS = "vfat"
			p.Type = pick(label, "ef", partition.GPTESP)
		case "vfat":
			p.FS = "vfat"
			p.Type = pick(label, "c", gptBasicData)
			if r.Mount == "/boot/efi" {
				p.Type = pick(label, "ef", partition.GPTESP)
			}
		case "":
			p.FS = defFS
			p.Type = pick(label, "83", partition.GPTLinux)
		default:
			p.FS = r.FSType
			p.Type = pick(label, "83", partition.GPTLinux)
		}
		if r.Grow {
			p.Grow = true
			if size == 0 {
				size = 1
			}
			p.MaxSize = r.MaxSize * sectorsPerMiB
		} else if r.MaxSize != 0 {
			ks.Warnings = append(ks.Warnings, Warning{r.File, r.Line, fmt.Sprintf("part %s: --maxsize without --grow has no effect", r.Mount)})
		}
		p.Size = size * sectorsPerMiB
		parts = append(parts, p)
		primary = append(primary, r.AsPrimary)
		kept = append(kept, r)
	}
	if len(parts) == 0 {
		return nil, fmt.Errorf("%s: no partitions: the kickstart has no part, reqpart or autopart --type=plain", where(ks.Name, 0))
	}
	l := &partition.Layout{Label: label, Device: "/dev/" + disk, Unit: "sectors"}
	if label == "dos" {
		boot := -1
		for i, p := range parts {
			if p.Mount == "/boot" || (p.Mount == "/" && boot < 0) {
				boot = i
			}
		}
		if boot >= 0 {
			parts[boot].Bootable = true
		}
		if len(parts) > 4 {
			var err error
			if parts, err = logicals(parts, primary, kept); err != nil {
				return nil, err
			}
		}
	}
	for i := range parts {
		if parts[i].Number == 0 {
			parts[i].Number = i + 1
		}
	}
	l.Parts = parts
	if label == "gpt" && !uefi && !hasMount("biosboot") && ks.ReqPart == nil && a == nil {
		ks.Warnings = append(ks.Warnings, Warning{ks.Name, 0, "gpt disk on BIOS without a biosboot partition: GRUB for BIOS cannot be installed (add part biosboot --fstype=biosboot --size=1, or reqpart)"})
	}
	if uefi && !hasMount("/boot/efi") && ks.ReqPart == nil && a == nil {
		ks.Warnings = append(ks.Warnings, Warning{ks.Name, 0, "UEFI without a /boot/efi partition: GRUB for UEFI cannot be installed (add reqpart or part /boot/efi)"})
	}
	return l, nil
}

func pick(label, dos, gpt string) string {
	if label == "gpt" {
		return gpt
	}
	return dos
}

// logicals turns a dos layout of more than four partitions into three
// primaries, an extended partition and logical partitions. partition.Fit
// grows primaries only, so the growing partitions are made primary first,
// then the --asprimary ones, then the others in order; the extended
// partition is sized for its logical partitions (each after a 1 MiB gap
// for its EBR) and placed after the primaries.
func logicals(parts []partition.Part, asPrimary []bool, reqs []PartRequest) ([]partition.Part, error) {
	isPrim := make([]bool, len(parts))
	n := 0
	var growers, asked []string
	for i, p := range parts {
		if p.Grow {
			isPrim[i] = true
			n++
			growers = append(growers, where(reqs[i].File, reqs[i].Line))
		}
	}
	if n > 3 {
		return nil, fmt.Errorf("dos label with logical partitions: %d partitions grow (%s) but only 3 primary partitions can grow; use clearpart --disklabel=gpt or fewer --grow", n, strings.Join(growers, ", "))
	}
	for i := range parts {
		if asPrimary[i] && !isPrim[i] {
			asked = append(asked, where(reqs[i].File, reqs[i].Line))
			if n < 3 {
				isPrim[i] = true
				n++
			}
		}
	}
	if len(asked)+len(growers) > 3 {
		return nil, fmt.Errorf("dos label with logical partitions: %d growing and %d --asprimary partitions (%s) do not fit in 3 primary slots; use clearpart --disklabel=gpt",
			len(growers), len(asked), strings.Join(append(growers, asked...), ", "))
	}
	for i := range parts {
		if n >= 3 {
			break
		}
		if !isPrim[i] {
			isPrim[i] = true
			n++
		}
	}
	var out []partition.Part
	num := 1
	for i, p := range parts {
		if isPrim[i] {
			p.Number = num
			num++
			out = append(out, p)
		}
	}
	ext := partition.Part{Number: 4, Type: "5"}
	var logical []partition.Part
	num = 5
	for i, p := range parts {
		if !isPrim[i] {
			p.Number = num
			num++
			ext.Size += p.Size + sectorsPerMiB
			logical = append(logical, p)
		}
	}
	return append(append(out, ext), logical...), nil
}

// disk returns the name of the disk the kickstart lays out.
func (ks *Kickstart) disk() (string, error) {
	type cand struct {
		name, file string
		line       int
	}
	var cands []cand
	if d := ks.IgnoreDisk; d != nil {
		for _, n := range d.OnlyUse {
			cands = append(cands, cand{n, d.File, d.Line})
		}
	}
	if c := ks.ClearPart; c != nil {
		for _, n := range c.Drives {
			cands = append(cands, cand{n, c.File, c.Line})
		}
	}
	if b := ks.Bootloader; b != nil && b.BootDrive != "" {
		cands = append(cands, cand{b.BootDrive, b.File, b.Line})
	}
	for _, r := range ks.Parts {
		if r.OnDisk != "" {
			cands = append(cands, cand{r.OnDisk, r.File, r.Line})
		}
	}
	disk := cand{"sda", ks.Name, 0}
	if len(cands) > 0 {
		disk = cands[0]
	}
	if !validDisk(disk.name) {
		return "", fmt.Errorf("%s: disk name %q: want a name like sda, vda, nvme0n1 or disk/by-id/NAME", where(disk.file, disk.line), disk.name)
	}
	if d := ks.IgnoreDisk; d != nil {
		for _, x := range d.Drives {
			if x == disk.name {
				return "", fmt.Errorf("%s: ignoredisk --drives=%s ignores the disk the layout is for", where(d.File, d.Line), x)
			}
		}
	}
	return disk.name, nil
}

// validDisk accepts kernel disk names and /dev/disk/by-* paths.
func validDisk(d string) bool {
	if d == "" || strings.HasPrefix(d, "/") || strings.Contains(d, "..") {
		return false
	}
	for _, c := range d {
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune("._:+-/", c)
		if !ok {
			return false
		}
	}
	return true
}
