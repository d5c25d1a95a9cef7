package clone

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/clonecd/clonecd/progress"
)

// chooseDisk picks the target disk and learns its size.
func (r *run) chooseDisk() error {
	t := r.cfg.Target
	if st, err := os.Stat(t); t != "" && err == nil && st.Mode().IsRegular() {
		// an image file: a loop device for the run
		out, err := exec.Command("losetup", "--find", "--show", "--partscan", t).CombinedOutput()
		if err != nil {
			return fmt.Errorf("losetup %s: %v: %s", t, err, bytes.TrimSpace(out))
		}
		r.loop = strings.TrimSpace(string(out))
		r.disk = r.loop
		r.logf("image file %s attached to %s", t, r.loop)
	} else {
		d, err := FindDisk(r.cfg.SysRoot, t, r.cfg.MediaDev)
		if err != nil {
			return err
		}
		r.disk = d
	}
	n, ss, err := diskSize(r.disk)
	if err != nil {
		return err
	}
	r.sectors, r.sectorSize = n, ss
	r.logf("target disk %s: %s, %d-byte sectors%s", r.disk, progress.Bytes(int64(n)*int64(ss)), ss, describe(r.cfg.SysRoot, filepath.Base(r.disk)))
	return nil
}

func diskSize(dev string) (sectors uint64, sectorSize int, err error) {
	f, err := os.Open(dev)
	if err != nil {
		return 0, 0, fmt.Errorf("disk %s: %w", dev, err)
	}
	defer f.Close()
	var size uint64
	if _, _, e := unix.Syscall(unix.SYS_IOCTL, f.Fd(), unix.BLKGETSIZE64, uintptr(unsafe.Pointer(&size))); e != 0 {
		err = e
		return 0, 0, fmt.Errorf("disk %s: size: %w", dev, err)
	}
	ss, err := unix.IoctlGetInt(int(f.Fd()), unix.BLKSSZGET)
	if err != nil || ss == 0 {
		ss = 512
	}
	return size / uint64(ss), ss, nil
}

func sysPath(sysRoot string, elem ...string) string {
	if sysRoot == "" {
		sysRoot = "/"
	}
	return filepath.Join(append([]string{sysRoot, "sys"}, elem...)...)
}

func readSys(sysRoot string, elem ...string) string {
	b, err := os.ReadFile(sysPath(sysRoot, elem...))
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// serials returns the identifiers a disk answers to: serial (virtio's
// /sys/block/X/serial, SCSI/ATA device/serial), vpd_pg80's text and wwid.
func serials(sysRoot, name string) []string {
	var out []string
	for _, p := range [][]string{{"block", name, "serial"}, {"block", name, "device", "serial"}, {"block", name, "device", "wwid"}, {"block", name, "wwid"}} {
		if s := readSys(sysRoot, p...); s != "" {
			out = append(out, s)
		}
	}
	if b, err := os.ReadFile(sysPath(sysRoot, "block", name, "device", "vpd_pg80")); err == nil && len(b) > 4 {
		if s := strings.TrimSpace(strings.Trim(string(b[4:]), "\x00")); s != "" {
			out = append(out, s)
		}
	}
	return out
}

func describe(sysRoot, name string) string {
	var parts []string
	if m := readSys(sysRoot, "block", name, "device", "model"); m != "" {
		parts = append(parts, m)
	}
	if s := serials(sysRoot, name); len(s) > 0 {
		parts = append(parts, "serial "+s[0])
	}
	if len(parts) == 0 {
		return ""
	}
	return " (" + strings.Join(parts, ", ") + ")"
}

// skipped reports whether a block device name is never a clone target.
func skipped(name string) bool {
	for _, p := range []string{"loop", "ram", "sr", "zram", "fd", "nbd", "dm-", "md", "mtdblock"} {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	return false
}

// wholeDisk returns the disk a block device (partition or disk) is on, by
// name: sdb1 → sdb, nvme0n1p2 → nvme0n1.
func wholeDisk(sysRoot, dev string) string {
	name := filepath.Base(dev)
	if name == "" || name == "." {
		return ""
	}
	if _, err := os.Stat(sysPath(sysRoot, "class", "block", name, "partition")); err == nil {
		if p, err := filepath.EvalSymlinks(sysPath(sysRoot, "class", "block", name)); err == nil {
			return filepath.Base(filepath.Dir(p))
		}
	}
	return name
}

// FindDisk resolves spec (a device path, /dev/disk/by-id path, bare name
// or serial) to /dev/NAME, or with an empty spec picks the one
// non-removable disk that is not the media's. sysRoot "" is the real
// system.
func FindDisk(sysRoot, spec, mediaDev string) (string, error) {
	blocks, err := os.ReadDir(sysPath(sysRoot, "block"))
	if err != nil {
		return "", fmt.Errorf("listing disks: %w", err)
	}
	var names []string
	for _, b := range blocks {
		names = append(names, b.Name())
	}
	sort.Strings(names)
	if spec != "" {
		s := spec
		if strings.HasPrefix(s, "/dev/disk/") {
			p, err := filepath.EvalSymlinks(filepath.Join(sysRootOr(sysRoot), s))
			if err != nil {
				return "", fmt.Errorf("disk %s: %w", spec, err)
			}
			s = filepath.Base(p)
		}
		s = strings.TrimPrefix(s, "/dev/")
		for _, n := range names {
			if n == s {
				return "/dev/" + n, nil
			}
		}
		for _, n := range names {
			for _, id := range serials(sysRoot, n) {
				if id == spec {
					return "/dev/" + n, nil
				}
			}
		}
		return "", fmt.Errorf("disk %q: no such disk or serial (disks: %s)", spec, strings.Join(names, " "))
	}
	media := wholeDisk(sysRoot, mediaDev)
	var cands []string
	for _, n := range names {
		if skipped(n) || n == media {
			continue
		}
		if readSys(sysRoot, "block", n, "removable") == "1" {
			continue
		}
		if sz, _ := strconv.ParseUint(readSys(sysRoot, "block", n, "size"), 10, 64); sz == 0 {
			continue
		}
		cands = append(cands, n)
	}
	switch len(cands) {
	case 0:
		return "", fmt.Errorf("no target disk found (disks: %s; media %s): attach a disk or name one with clonecd.disk=", strings.Join(names, " "), orNone(media))
	case 1:
		return "/dev/" + cands[0], nil
	}
	var desc []string
	for _, c := range cands {
		sz, _ := strconv.ParseInt(readSys(sysRoot, "block", c, "size"), 10, 64)
		desc = append(desc, fmt.Sprintf("%s %s%s", c, progress.Bytes(sz*512), describe(sysRoot, c)))
	}
	return "", fmt.Errorf("%d candidate disks, refusing to guess: %s; choose one with clonecd.disk=NAME|SERIAL (or --target)", len(cands), strings.Join(desc, "; "))
}

func sysRootOr(s string) string {
	if s == "" {
		return "/"
	}
	return s
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}
