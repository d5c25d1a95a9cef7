package partition

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// A disk is in use when writing its table would pull something from under
// the kernel: sfdisk's "This disk is currently in use". Apply refuses such
// a disk before the first write unless told to go on (ApplyOptions.Force).
// What counts, read from the kernel:
//   - a filesystem mounted from the disk or one of its partitions
//     (/proc/self/mountinfo, by major:minor, and by source device for
//     filesystems such as btrfs that report an anonymous one);
//   - active swap on it (/proc/swaps);
//   - a holder: device-mapper (LVM, dm-crypt, multipath, dmsetup), md RAID
//     or bcache stacked on it (/sys/block/DISK/holders and each
//     partition's holders);
//   - anything else that holds it exclusively (an O_EXCL open fails with
//     EBUSY), which the kernel does for all of the above too.
//
// For an image file the same is asked of every loop device backed by it.

// Use is one thing that uses a disk or one of its partitions.
type Use struct {
	Device string // the disk or partition in use: /dev/loop0p3
	What   string // "mounted at /mnt", "active swap", "held by dm-0 (vg-root)"
}

func (u Use) String() string { return u.Device + " is " + u.What }

// InUseError is a disk that is in use (see InUse).
type InUseError struct {
	Disk string
	Uses []Use
}

func (e *InUseError) Error() string {
	s := make([]string, len(e.Uses))
	for i, u := range e.Uses {
		s[i] = u.String()
	}
	return fmt.Sprintf("%s is in use: %s", e.Disk, strings.Join(s, "; "))
}

// InUse reports what uses the disk dev (a block device, or an image file
// through the loop devices backed by it); nil when nothing does. It
// changes nothing.
func InUse(dev string) ([]Use, error) {
	st, err := os.Stat(dev)
	if err != nil {
		return nil, err
	}
	switch {
	case st.Mode()&os.ModeDevice != 0 && st.Mode()&os.ModeCharDevice == 0:
		return blockInUse(dev)
	case st.Mode().IsRegular():
		loops, err := loopsOf(dev)
		if err != nil {
			return nil, err
		}
		var uses []Use
		for _, l := range loops {
			u, err := blockInUse(l)
			if err != nil {
				return nil, err
			}
			for i := range u {
				u[i].What += " (" + dev + " is attached to " + l + ")"
			}
			uses = append(uses, u...)
		}
		return uses, nil
	}
	return nil, nil
}

// blockDev is a disk or partition: its node, sysfs directory and number.
type blockDev struct {
	node, sysfs string
	devno       string // "7:0"
}

// blockInUse checks a block device and its partitions.
func blockInUse(dev string) ([]Use, error) {
	var st unix.Stat_t
	if err := unix.Stat(dev, &st); err != nil {
		return nil, fmt.Errorf("%s: %w", dev, err)
	}
	devno := fmt.Sprintf("%d:%d", unix.Major(uint64(st.Rdev)), unix.Minor(uint64(st.Rdev)))
	sys, err := filepath.EvalSymlinks("/sys/dev/block/" + devno)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", dev, err)
	}
	devs := []blockDev{{dev, sys, devno}}
	ents, _ := os.ReadDir(sys)
	for _, e := range ents {
		p := filepath.Join(sys, e.Name())
		if _, err := os.Stat(filepath.Join(p, "partition")); err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join(p, "dev"))
		if err != nil {
			continue
		}
		devs = append(devs, blockDev{"/dev/" + e.Name(), p, strings.TrimSpace(string(b))})
	}
	byNo := map[string]string{}
	for _, d := range devs {
		byNo[d.devno] = d.node
	}
	uses, err := mounted(byNo)
	if err != nil {
		return nil, err
	}
	swaps, err := swapping(byNo)
	if err != nil {
		return nil, err
	}
	uses = append(uses, swaps...)
	for _, d := range devs {
		uses = append(uses, holders(d)...)
	}
	if len(uses) == 0 {
		// Whatever else claims it: the kernel refuses an exclusive open.
		fd, err := unix.Open(dev, unix.O_RDONLY|unix.O_EXCL|unix.O_CLOEXEC, 0)
		if errors.Is(err, unix.EBUSY) {
			uses = append(uses, Use{dev, "held open exclusively (the kernel refuses an exclusive open: EBUSY)"})
		} else if err == nil {
			unix.Close(fd)
		}
	}
	return uses, nil
}

// devnoOf is the major:minor of a block device node, or "".
func devnoOf(path string) string {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFBLK {
		return ""
	}
	return fmt.Sprintf("%d:%d", unix.Major(uint64(st.Rdev)), unix.Minor(uint64(st.Rdev)))
}

// mounted reads /proc/self/mountinfo: "ID PARENT MAJ:MIN ROOT MOUNTPOINT
// OPTIONS ... - FSTYPE SOURCE SUPEROPTIONS".
func mounted(byNo map[string]string) ([]Use, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var uses []Use
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		if len(fs) < 5 {
			continue
		}
		node, ok := byNo[fs[2]]
		if !ok {
			for i, f := range fs {
				if f == "-" && i+2 < len(fs) && strings.HasPrefix(fs[i+2], "/dev/") {
					node, ok = byNo[devnoOf(unescape(fs[i+2]))]
				}
			}
		}
		if ok {
			uses = append(uses, Use{node, "mounted at " + unescape(fs[4])})
		}
	}
	return uses, sc.Err()
}

// swapping reads /proc/swaps: "Filename Type Size Used Priority".
func swapping(byNo map[string]string) ([]Use, error) {
	f, err := os.Open("/proc/swaps")
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil // a kernel without swap
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var uses []Use
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		if len(fs) < 2 || fs[1] != "partition" {
			continue // the header, or a swap file (its filesystem is mounted)
		}
		if node, ok := byNo[devnoOf(unescape(fs[0]))]; ok {
			uses = append(uses, Use{node, "active swap"})
		}
	}
	return uses, sc.Err()
}

// holders lists what the kernel stacked on a device: dm (LVM, crypt,
// dmsetup), md RAID, bcache.
func holders(d blockDev) []Use {
	ents, _ := os.ReadDir(filepath.Join(d.sysfs, "holders"))
	var uses []Use
	for _, e := range ents {
		what := "held by " + e.Name()
		if b, err := os.ReadFile(filepath.Join(d.sysfs, "holders", e.Name(), "dm", "name")); err == nil {
			what += " (device-mapper " + strings.TrimSpace(string(b)) + ")"
		} else if strings.HasPrefix(e.Name(), "md") {
			what += " (md RAID)"
		}
		uses = append(uses, Use{d.node, what})
	}
	return uses
}

// loopsOf lists the loop devices backed by the file path.
func loopsOf(path string) ([]string, error) {
	var want unix.Stat_t
	if err := unix.Stat(path, &want); err != nil {
		return nil, err
	}
	ents, err := os.ReadDir("/sys/block")
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range ents {
		if _, err := os.Stat(filepath.Join("/sys/block", e.Name(), "loop")); err != nil {
			continue // not a loop device, or not attached
		}
		// the backing file by device and inode, as losetup -a shows it
		node := "/dev/" + e.Name()
		fd, err := unix.Open(node, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			continue
		}
		info, err := unix.IoctlLoopGetStatus64(fd)
		unix.Close(fd)
		if err == nil && info.Device == uint64(want.Dev) && info.Inode == want.Ino {
			out = append(out, node)
		}
	}
	return out, nil
}

// unescape decodes the octal escapes (\040 for a space) of mountinfo and
// /proc/swaps.
func unescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
