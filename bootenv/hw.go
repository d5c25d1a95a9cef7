package bootenv

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// ioctl numbers from linux/kd.h and linux/cdrom.h.
const (
	kdMkTone         = 0x4B30
	kiocSound        = 0x4B2F
	cdromEject       = 0x5309
	cdromLockDoor    = 0x5329
	cdromDriveStatus = 0x5326
	cdslCurrent      = 0x7fffffff
	cdsDiscOK        = 4
)

// Beep rings the console bell and, where the console supports it, sounds
// the PC speaker (KDMKTONE) so that a headless node is heard.
func Beep() {
	for _, c := range []string{"/dev/tty0", "/dev/console"} {
		f, err := os.OpenFile(c, os.O_WRONLY|unix.O_NOCTTY, 0)
		if err != nil {
			continue
		}
		f.Write([]byte("\a"))
		// 880 Hz for 300 ms: the low 16 bits are the timer period,
		// the high ones the duration in ms.
		if err := unix.IoctlSetInt(int(f.Fd()), kdMkTone, 300<<16|1193180/880); err != nil {
			if unix.IoctlSetInt(int(f.Fd()), kiocSound, 1193180/880) == nil {
				// KIOCSOUND sounds until told to stop.
				go func(f *os.File) {
					time.Sleep(300 * time.Millisecond)
					unix.IoctlSetInt(int(f.Fd()), kiocSound, 0)
					f.Close()
				}(f)
				continue
			}
		}
		f.Close()
	}
}

// unmountDev lazily unmounts every mount of dev (from /proc/mounts).
func unmountDev(dev string) {
	f, err := os.Open("/proc/mounts")
	if err != nil {
		return
	}
	var dirs []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		if len(fs) >= 2 && fs[0] == dev {
			dirs = append(dirs, fs[1])
		}
	}
	f.Close()
	for i := len(dirs) - 1; i >= 0; i-- {
		unix.Unmount(dirs[i], unix.MNT_DETACH)
	}
}

// Eject unmounts the CD in dev and opens its tray (CDROMEJECT).
func Eject(dev string) error {
	unmountDev(dev)
	f, err := os.OpenFile(dev, os.O_RDONLY|unix.O_NONBLOCK, 0)
	if err != nil {
		return fmt.Errorf("eject %s: %w", dev, err)
	}
	defer f.Close()
	unix.IoctlSetInt(int(f.Fd()), cdromLockDoor, 0)
	if err := unix.IoctlSetInt(int(f.Fd()), cdromEject, 0); err != nil {
		return fmt.Errorf("eject %s: CDROMEJECT: %w", dev, err)
	}
	return nil
}

// MediaPresent reports whether the CD drive dev holds a disc
// (CDROM_DRIVE_STATUS is CDS_DISC_OK). A device that is not a CD drive
// counts as present if it can be opened.
func MediaPresent(dev string) bool {
	f, err := os.OpenFile(dev, os.O_RDONLY|unix.O_NONBLOCK, 0)
	if err != nil {
		return false
	}
	defer f.Close()
	st, _, errno := unix.Syscall(unix.SYS_IOCTL, f.Fd(), cdromDriveStatus, cdslCurrent)
	if errno != 0 {
		return errno != unix.ENOMEDIUM
	}
	return st == cdsDiscOK
}

// errNotInit keeps tests and admins from powering off the build host.
var errNotInit = errors.New("not PID 1 in the clone environment: refusing to power off or reboot this machine")

// PowerOff syncs and powers the machine off. It only returns on error.
func PowerOff() error { return reboot(unix.LINUX_REBOOT_CMD_POWER_OFF) }

// Reboot syncs and restarts the machine. It only returns on error.
func Reboot() error { return reboot(unix.LINUX_REBOOT_CMD_RESTART) }

func reboot(cmd int) error {
	if os.Getpid() != 1 {
		return errNotInit
	}
	unix.Sync()
	if err := unix.Reboot(cmd); err != nil {
		return fmt.Errorf("reboot(%#x): %w", cmd, err)
	}
	select {}
}
