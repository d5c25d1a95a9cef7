package kickstart

import (
	"strconv"
	"strings"

	"github.com/clonecd/clonecd/partition"
)

// Network is a network command.
type Network struct {
	File        string
	Line        int
	Device      string // eth0, a MAC, "link", "bootif" or "" (the first)
	BootProto   string // dhcp (default), static, bootp, ibft, query
	IP          string
	Netmask     string
	Gateway     string
	Nameservers []string
	Hostname    string
	OnBoot      string // "yes", "no" or "" (not said)
	Activate    bool
	NoIPv4      bool
	NoIPv6      bool
	IPv6        string
	MTU         string
	// Other holds the other options as written (--vlanid=10, ...).
	Other []string
}

// RootPW is the rootpw command.
type RootPW struct {
	File      string
	Line      int
	Password  string // the hash when IsCrypted, else the plain text
	IsCrypted bool
	Lock      bool
}

// Timezone is the timezone command.
type Timezone struct {
	File       string
	Line       int
	Name       string // Europe/Berlin
	UTC        bool   // the hardware clock is UTC (--utc, --isUtc)
	NoNTP      bool
	NTPServers []string
}

// Bootloader is the bootloader command.
type Bootloader struct {
	File      string
	Line      int
	Location  string // mbr (default), partition, boot, none
	Append    string // kernel arguments
	BootDrive string
	Timeout   string
}

// ClearPart is the clearpart command.
type ClearPart struct {
	File      string
	Line      int
	Mode      string // all, linux, none, list
	Drives    []string
	InitLabel bool
	DiskLabel string // msdos or gpt (--disklabel), "" unsaid
}

// IgnoreDisk is the ignoredisk command.
type IgnoreDisk struct {
	File    string
	Line    int
	OnlyUse []string
	Drives  []string // disks to ignore
}

// PartRequest is one part/partition command.
type PartRequest struct {
	File       string
	Line       int
	Mount      string // "/", "/boot", "swap", "biosboot", "/boot/efi", "None"
	Size       uint64 // MiB; with Grow the minimum
	Grow       bool
	MaxSize    uint64 // MiB, 0 = no cap
	FSType     string
	AsPrimary  bool
	Label      string
	OnDisk     string
	Recommend  bool // swap --recommended
	Hibernate  bool // swap --hibernation
	NoFormat   bool
	OnPart     string
	MkfsOpts   string // --mkfsoptions, --fsprofile (-T), --bytes-per-inode (-i)
	FSOptions  string // --fsoptions (mount options; not applied by clonecd)
	unsupport  string // why clonecd cannot make it (raid., pv., --encrypted...)
	explicitFS bool
}

// ReqPart is the reqpart command.
type ReqPart struct {
	File    string
	Line    int
	AddBoot bool
}

// AutoPart is the autopart command.
type AutoPart struct {
	File    string
	Line    int
	Type    string // plain, lvm (default), btrfs, thinp
	FSType  string
	NoHome  bool
	NoBoot  bool
	NoSwap  bool
	Encrypt bool
}

// opt kinds.
const (
	flagOpt  = iota // --grow
	valueOpt        // --size=N or --size N
)

type optSpec map[string]int

// options parses "--name=value", "--name value" and "--flag" words as
// pykickstart's option parser does. Unknown options are returned in
// unknown (with their "=value" if written so).
func options(c Command, spec optSpec) (vals map[string][]string, pos, unknown []string, err error) {
	vals = map[string][]string{}
	for i := 0; i < len(c.Args); i++ {
		a := c.Args[i]
		if !strings.HasPrefix(a, "-") || a == "-" {
			pos = append(pos, a)
			continue
		}
		name, val, hasVal := strings.Cut(strings.TrimLeft(a, "-"), "=")
		kind, ok := spec[name]
		if !ok {
			unknown = append(unknown, a)
			continue
		}
		if kind == valueOpt && !hasVal {
			if i+1 >= len(c.Args) {
				return nil, nil, nil, errAt(c.File, c.Line, "%s: option --%s needs a value", c.Name, name)
			}
			i++
			val = c.Args[i]
		}
		if kind == flagOpt && hasVal {
			b, ok := partition.ParseBool(val)
			if !ok {
				return nil, nil, nil, errAt(c.File, c.Line, "%s: option --%s=%s: want yes or no", c.Name, name, val)
			}
			if !b {
				delete(vals, name)
				continue
			}
			val = ""
		}
		vals[name] = append(vals[name], val)
	}
	return vals, pos, unknown, nil
}

func last(v map[string][]string, names ...string) string {
	out := ""
	for _, n := range names {
		if l := v[n]; len(l) > 0 {
			out = l[len(l)-1]
		}
	}
	return out
}

func has(v map[string][]string, names ...string) bool {
	for _, n := range names {
		if _, ok := v[n]; ok {
			return true
		}
	}
	return false
}

func list(v string) []string {
	var out []string
	for _, f := range strings.FieldsFunc(v, func(r rune) bool { return r == ',' || r == ' ' }) {
		out = append(out, strings.TrimPrefix(f, "/dev/"))
	}
	return out
}

// ignored are commands clonecd knows and deliberately does not use: they
// configured the golden node when it was kickstarted and the clones carry
// their effect in node.cpio.gz, or they drive the installer itself.
var ignored = map[string]bool{
	"auth": true, "authconfig": true, "authselect": true, "autostep": true, "cdrom": true, "cmdline": true,
	"device": true, "deviceprobe": true, "driverdisk": true, "eula": true, "firewall": true, "firstboot": true,
	"graphical": true, "group": true, "halt": true, "harddrive": true, "install": true, "interactive": true,
	"keyboard": true, "key": true, "lang": true, "langsupport": true, "liveimg": true, "logging": true,
	"mediacheck": true, "method": true, "module": true, "monitor": true, "mouse": true, "nfs": true,
	"ostreesetup": true, "poweroff": true, "realm": true, "reboot": true, "repo": true, "rescue": true,
	"selinux": true, "services": true, "shutdown": true, "skipx": true, "sshkey": true, "sshpw": true,
	"text": true, "timesource": true, "updates": true, "upgrade": true, "url": true, "user": true,
	"vnc": true, "xconfig": true, "zerombr": true, "snapshot": true, "ostreecontainer": true, "bootc": true,
	"syspurpose": true, "rhsm": true, "zipl": true, "network": true, "rootpw": true, "timezone": true,
}

// storageElsewhere are commands about disks other than the one clonecd
// lays out: warned about, the layout is still made.
var storageElsewhere = map[string]string{
	"iscsi": "iSCSI disks", "iscsiname": "iSCSI disks", "fcoe": "FCoE disks", "zfcp": "zFCP disks",
	"nvdimm": "NVDIMM namespaces", "dmraid": "BIOS RAID sets", "multipath": "multipath devices",
	"hmc": "HMC media",
}

// storageUnsupported are layouts clonecd cannot make: Layout fails on them.
var storageUnsupported = map[string]string{
	"logvol": "LVM logical volumes", "volgroup": "LVM volume groups", "raid": "software RAID",
	"btrfs": "btrfs volumes", "mount": "mounting existing devices (mount command)",
}

func (p *parser) command(c Command) error {
	ks := p.ks
	ks.Commands = append(ks.Commands, c)
	name := c.Name
	if name == "partition" {
		name = "part"
	}
	switch name {
	case "part":
		return p.part(c)
	case "clearpart":
		return p.clearpart(c)
	case "zerombr":
		ks.ZeroMBR = true
		return nil
	case "ignoredisk":
		return p.ignoredisk(c)
	case "reqpart":
		v, _, unk, err := options(c, optSpec{"add-boot": flagOpt})
		if err != nil {
			return err
		}
		p.unknownOpts(c, unk)
		ks.ReqPart = &ReqPart{File: c.File, Line: c.Line, AddBoot: has(v, "add-boot")}
		return nil
	case "autopart":
		return p.autopart(c)
	case "bootloader":
		return p.bootloader(c)
	case "network":
		return p.network(c)
	case "rootpw":
		return p.rootpw(c)
	case "timezone":
		return p.timezone(c)
	}
	if what, ok := storageUnsupported[name]; ok {
		ks.Unsupported = append(ks.Unsupported, c)
		p.warn(c.File, c.Line, "%s: clonecd cannot make %s; the layout fails on this line", c.Name, what)
		return nil
	}
	if what, ok := storageElsewhere[name]; ok {
		p.warn(c.File, c.Line, "%s: clonecd does not set up %s; only the local target disk is laid out", c.Name, what)
		return nil
	}
	if ignored[name] {
		return nil
	}
	p.warn(c.File, c.Line, "unknown command %q ignored", c.Name)
	return nil
}

func (p *parser) unknownOpts(c Command, unk []string) {
	if len(unk) > 0 {
		p.warn(c.File, c.Line, "%s: option %s not used by clonecd", c.Name, strings.Join(unk, " "))
	}
}

func mib(c Command, opt, v string) (uint64, error) {
	n, err := strconv.ParseUint(strings.TrimSpace(v), 10, 64)
	if err != nil || n > 1<<40 {
		return 0, errAt(c.File, c.Line, "%s: --%s=%s: want a whole number of MiB", c.Name, opt, v)
	}
	return n, nil
}

var partSpec = optSpec{
	"size": valueOpt, "grow": flagOpt, "maxsize": valueOpt, "fstype": valueOpt, "asprimary": flagOpt,
	"label": valueOpt, "ondisk": valueOpt, "ondrive": valueOpt, "recommended": flagOpt, "hibernation": flagOpt,
	"noformat": flagOpt, "onpart": valueOpt, "usepart": valueOpt, "fsoptions": valueOpt, "fsprofile": valueOpt,
	"mkfsoptions": valueOpt, "bytes-per-inode": valueOpt, "encrypted": flagOpt, "passphrase": valueOpt,
	"start": valueOpt, "end": valueOpt, "resize": flagOpt, "active": flagOpt, "type": valueOpt,
	"luks-version": valueOpt, "cipher": valueOpt, "pbkdf": valueOpt, "escrowcert": valueOpt,
	"backuppassphrase": flagOpt, "mkfsoption": valueOpt,
}

func (p *parser) part(c Command) error {
	v, pos, unk, err := options(c, partSpec)
	if err != nil {
		return err
	}
	p.unknownOpts(c, unk)
	if len(pos) != 1 {
		return errAt(c.File, c.Line, "%s: want one mount point (/, /boot, swap, biosboot, /boot/efi, ...), got %q", c.Name, pos)
	}
	r := PartRequest{File: c.File, Line: c.Line, Mount: pos[0]}
	if s := last(v, "size"); s != "" {
		if r.Size, err = mib(c, "size", s); err != nil {
			return err
		}
	}
	if s := last(v, "maxsize"); s != "" {
		if r.MaxSize, err = mib(c, "maxsize", s); err != nil {
			return err
		}
	}
	r.Grow = has(v, "grow")
	r.FSType = strings.ToLower(last(v, "fstype", "type"))
	r.explicitFS = r.FSType != ""
	r.AsPrimary = has(v, "asprimary")
	r.Label = last(v, "label")
	r.OnDisk = strings.TrimPrefix(last(v, "ondisk", "ondrive"), "/dev/")
	r.Recommend = has(v, "recommended")
	r.Hibernate = has(v, "hibernation")
	r.NoFormat = has(v, "noformat")
	r.OnPart = strings.TrimPrefix(last(v, "onpart", "usepart"), "/dev/")
	r.FSOptions = last(v, "fsoptions")
	var mk []string
	if s := last(v, "fsprofile"); s != "" {
		mk = append(mk, "-T", s)
	}
	if s := last(v, "bytes-per-inode"); s != "" {
		mk = append(mk, "-i", s)
	}
	if s := last(v, "mkfsoptions", "mkfsoption"); s != "" {
		mk = append(mk, s)
	}
	r.MkfsOpts = strings.Join(mk, " ")
	for what, v := range map[string]string{"mount point": r.Mount, "--label": r.Label, "--mkfsoptions": r.MkfsOpts, "--ondisk": r.OnDisk} {
		if strings.IndexFunc(v, func(c rune) bool { return c < 0x20 || c == 0x7f }) >= 0 {
			return errAt(c.File, c.Line, "%s: %s %q has control characters", c.Name, what, v)
		}
	}
	switch m := strings.ToLower(r.Mount); {
	case m == "swap":
		r.Mount, r.FSType = "swap", "swap"
	case m == "biosboot":
		r.Mount, r.FSType = "biosboot", "biosboot"
	case m == "prepboot":
		r.unsupport = "PReP boot partitions (POWER)"
	case strings.HasPrefix(m, "raid."):
		r.unsupport = "software RAID members"
	case strings.HasPrefix(m, "pv."):
		r.unsupport = "LVM physical volumes"
	case strings.HasPrefix(m, "btrfs."):
		r.unsupport = "btrfs members"
	case m == "none":
		r.Mount = ""
	case !strings.HasPrefix(r.Mount, "/"):
		return errAt(c.File, c.Line, "%s: %q is not a mount point (/, /boot, swap, biosboot, /boot/efi, ...)", c.Name, r.Mount)
	}
	if r.FSType == "" && r.Mount == "/boot/efi" {
		r.FSType = "efi"
	}
	switch r.FSType {
	case "", "ext2", "ext3", "ext4", "xfs", "swap", "biosboot", "vfat":
	case "efi":
	case "btrfs":
		r.unsupport = "btrfs"
	case "lvmpv", "mdmember":
		r.unsupport = r.FSType + " members"
	default:
		if r.unsupport == "" {
			r.unsupport = "file system " + r.FSType + " (clonecd makes ext2, ext3, ext4, xfs, vfat, swap)"
		}
	}
	if has(v, "encrypted") {
		r.unsupport = "encrypted partitions (--encrypted)"
	}
	if r.FSOptions != "" {
		p.warn(c.File, c.Line, "%s %s: --fsoptions=%q not applied (the mount options come from the golden node's /etc/fstab)", c.Name, r.Mount, r.FSOptions)
	}
	if has(v, "start", "end") {
		p.warn(c.File, c.Line, "%s %s: --start/--end cylinders ignored; partitions are placed in order, 1 MiB aligned", c.Name, r.Mount)
	}
	if has(v, "resize") {
		p.warn(c.File, c.Line, "%s %s: --resize ignored; clonecd writes a new table", c.Name, r.Mount)
	}
	if r.OnPart != "" {
		if r.Size == 0 {
			r.unsupport = "--onpart without --size (clonecd creates partitions from the layout, it does not reuse existing ones)"
		} else {
			p.warn(c.File, c.Line, "%s %s: --onpart=%s: clonecd creates the partition at --size=%d instead", c.Name, r.Mount, r.OnPart, r.Size)
		}
	}
	if r.NoFormat {
		p.warn(c.File, c.Line, "%s %s: --noformat becomes preserve=yes: the data is kept only when the disk's table matches the layout", c.Name, r.Mount)
	}
	if r.Size == 0 && !r.Grow && !r.Recommend && !r.Hibernate && r.FSType != "biosboot" && r.unsupport == "" {
		return errAt(c.File, c.Line, "%s %s: --size is required (unless --grow or swap --recommended)", c.Name, r.Mount)
	}
	p.ks.Parts = append(p.ks.Parts, r)
	return nil
}

func (p *parser) clearpart(c Command) error {
	v, _, unk, err := options(c, optSpec{"all": flagOpt, "linux": flagOpt, "none": flagOpt, "list": valueOpt,
		"drives": valueOpt, "initlabel": flagOpt, "disklabel": valueOpt, "cdl": flagOpt})
	if err != nil {
		return err
	}
	p.unknownOpts(c, unk)
	cp := &ClearPart{File: c.File, Line: c.Line, Mode: "none", InitLabel: has(v, "initlabel")}
	switch {
	case has(v, "all"):
		cp.Mode = "all"
	case has(v, "linux"):
		cp.Mode = "linux"
	case has(v, "list"):
		cp.Mode = "list"
	}
	cp.Drives = list(strings.Join(v["drives"], ","))
	switch dl := strings.ToLower(last(v, "disklabel")); dl {
	case "":
	case "msdos", "dos", "mbr":
		cp.DiskLabel = "msdos"
	case "gpt":
		cp.DiskLabel = "gpt"
	default:
		return errAt(c.File, c.Line, "clearpart --disklabel=%s: clonecd writes msdos or gpt", dl)
	}
	if cp.Mode != "all" {
		p.warn(c.File, c.Line, "clearpart --%s: clonecd rewrites the whole partition table (only partitions marked preserve keep their data, when the table matches)", cp.Mode)
	}
	p.ks.ClearPart = cp
	return nil
}

func (p *parser) ignoredisk(c Command) error {
	v, _, unk, err := options(c, optSpec{"only-use": valueOpt, "drives": valueOpt, "interactive": flagOpt})
	if err != nil {
		return err
	}
	p.unknownOpts(c, unk)
	p.ks.IgnoreDisk = &IgnoreDisk{File: c.File, Line: c.Line,
		OnlyUse: list(strings.Join(v["only-use"], ",")), Drives: list(strings.Join(v["drives"], ","))}
	return nil
}

func (p *parser) autopart(c Command) error {
	v, _, unk, err := options(c, optSpec{"type": valueOpt, "fstype": valueOpt, "nohome": flagOpt, "noboot": flagOpt,
		"noswap": flagOpt, "encrypted": flagOpt, "passphrase": valueOpt, "nolvm": flagOpt, "cipher": valueOpt,
		"luks-version": valueOpt, "pbkdf": valueOpt, "escrowcert": valueOpt, "backuppassphrase": flagOpt, "hibernation": flagOpt})
	if err != nil {
		return err
	}
	p.unknownOpts(c, unk)
	a := &AutoPart{File: c.File, Line: c.Line, Type: strings.ToLower(last(v, "type")), FSType: strings.ToLower(last(v, "fstype")),
		NoHome: has(v, "nohome"), NoBoot: has(v, "noboot"), NoSwap: has(v, "noswap"), Encrypt: has(v, "encrypted")}
	if has(v, "nolvm") {
		a.Type = "plain"
	}
	if a.Type == "" {
		a.Type = "lvm"
	}
	p.ks.AutoPart = a
	return nil
}

func (p *parser) bootloader(c Command) error {
	v, _, unk, err := options(c, optSpec{"location": valueOpt, "append": valueOpt, "boot-drive": valueOpt,
		"driveorder": valueOpt, "timeout": valueOpt, "password": valueOpt, "iscrypted": flagOpt, "md5pass": valueOpt,
		"upgrade": flagOpt, "useLilo": flagOpt, "lba32": flagOpt, "leavebootorder": flagOpt, "extlinux": flagOpt,
		"disabled": flagOpt, "nombr": flagOpt, "default": valueOpt, "linear": flagOpt, "nolinear": flagOpt,
		"encrypted": flagOpt})
	if err != nil {
		return err
	}
	p.unknownOpts(c, unk)
	b := &Bootloader{File: c.File, Line: c.Line, Location: strings.ToLower(last(v, "location")), Append: last(v, "append"),
		BootDrive: strings.TrimPrefix(last(v, "boot-drive"), "/dev/"), Timeout: last(v, "timeout")}
	if b.Location == "" {
		b.Location = "mbr"
	}
	if b.BootDrive == "" {
		if d := list(last(v, "driveorder")); len(d) > 0 {
			b.BootDrive = d[0]
		}
	}
	if has(v, "disabled") || b.Location == "none" {
		p.warn(c.File, c.Line, "bootloader %s: clonecd still installs the golden node's boot loader on the clone", strings.Join(c.Args, " "))
	}
	if has(v, "password", "md5pass") {
		p.warn(c.File, c.Line, "bootloader --password: not applied (the clone keeps the golden node's GRUB configuration)")
	}
	p.ks.Bootloader = b
	return nil
}

func (p *parser) network(c Command) error {
	v, _, unk, err := options(c, optSpec{"bootproto": valueOpt, "device": valueOpt, "ip": valueOpt, "netmask": valueOpt,
		"gateway": valueOpt, "nameserver": valueOpt, "hostname": valueOpt, "onboot": valueOpt, "activate": flagOpt,
		"no-activate": flagOpt, "noipv4": flagOpt, "noipv6": flagOpt, "ipv6": valueOpt, "mtu": valueOpt, "nodns": flagOpt})
	if err != nil {
		return err
	}
	n := Network{File: c.File, Line: c.Line, BootProto: strings.ToLower(last(v, "bootproto")), Device: last(v, "device"),
		IP: last(v, "ip"), Netmask: last(v, "netmask"), Gateway: last(v, "gateway"), Hostname: last(v, "hostname"),
		Activate: has(v, "activate"), NoIPv4: has(v, "noipv4"), NoIPv6: has(v, "noipv6"), IPv6: last(v, "ipv6"),
		MTU: last(v, "mtu"), Other: unk}
	for _, ns := range v["nameserver"] {
		n.Nameservers = append(n.Nameservers, strings.FieldsFunc(ns, func(r rune) bool { return r == ',' || r == ' ' })...)
	}
	if ob := last(v, "onboot"); ob != "" {
		b, ok := partition.ParseBool(ob)
		if !ok {
			return errAt(c.File, c.Line, "network --onboot=%s: want yes or no", ob)
		}
		n.OnBoot = map[bool]string{true: "yes", false: "no"}[b]
	}
	switch n.BootProto {
	case "":
		if n.IP != "" {
			n.BootProto = "static"
		} else {
			n.BootProto = "dhcp"
		}
	case "dhcp", "static", "bootp", "ibft", "query":
	default:
		return errAt(c.File, c.Line, "network --bootproto=%s: want dhcp, static, bootp or ibft", n.BootProto)
	}
	if n.BootProto == "static" && n.IP == "" && !n.NoIPv4 {
		return errAt(c.File, c.Line, "network --bootproto=static needs --ip")
	}
	p.ks.Network = append(p.ks.Network, n)
	return nil
}

func (p *parser) rootpw(c Command) error {
	v, pos, unk, err := options(c, optSpec{"iscrypted": flagOpt, "plaintext": flagOpt, "lock": flagOpt, "allow-ssh": flagOpt})
	if err != nil {
		return err
	}
	p.unknownOpts(c, unk)
	r := &RootPW{File: c.File, Line: c.Line, IsCrypted: has(v, "iscrypted"), Lock: has(v, "lock")}
	if has(v, "plaintext") && r.IsCrypted {
		return errAt(c.File, c.Line, "rootpw: --iscrypted and --plaintext together")
	}
	switch {
	case len(pos) == 1:
		r.Password = pos[0]
	case len(pos) == 0 && r.Lock:
	default:
		return errAt(c.File, c.Line, "rootpw: want one password (got %d words)", len(pos))
	}
	p.ks.RootPW = r
	return nil
}

func (p *parser) timezone(c Command) error {
	v, pos, unk, err := options(c, optSpec{"utc": flagOpt, "isUtc": flagOpt, "nontp": flagOpt, "ntpservers": valueOpt})
	if err != nil {
		return err
	}
	p.unknownOpts(c, unk)
	t := &Timezone{File: c.File, Line: c.Line, UTC: has(v, "utc", "isUtc"), NoNTP: has(v, "nontp"),
		NTPServers: list(strings.Join(v["ntpservers"], ","))}
	if len(pos) > 1 {
		return errAt(c.File, c.Line, "timezone: want one zone name, got %q", pos)
	}
	if len(pos) == 1 {
		t.Name = pos[0]
	}
	p.ks.Timezone = t
	return nil
}
