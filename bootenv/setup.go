package bootenv

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/clonecd/clonecd/kmod"
	"github.com/clonecd/clonecd/medium"
)

// Options tune Setup. The zero value is what /init uses.
type Options struct {
	// NoMounts skips mounting proc, sysfs, devtmpfs, devpts and the tmpfs
	// on /tmp and /run (they are already there).
	NoMounts bool
	// Modules is the module tree (default /lib/modules/$(uname -r)).
	Modules string
	// NoColdplug skips loading drivers by modalias.
	NoColdplug bool
	// Quiet is how long coldplug waits for no new device (default 2s).
	Quiet time.Duration
	// FindMedia looks for the clone media and mounts it on MediaDir.
	FindMedia bool
	// MediaTimeout bounds the media search (default 3 minutes: slow CD
	// drives and USB sticks).
	MediaTimeout time.Duration
	// MediaDir is where the media is mounted (default /cdrom).
	MediaDir string
	// LogFile is the log (default /tmp/clone.log).
	LogFile string
	// Cmdline replaces /proc/cmdline (tests).
	Cmdline map[string]string
}

// LogPath is the clone log in the initramfs.
const LogPath = "/tmp/clone.log"

type mnt struct {
	src, dir, fstype string
	flags            uintptr
	data             string
	mode             os.FileMode
}

var baseMounts = []mnt{
	{"proc", "/proc", "proc", unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC, "", 0o555},
	{"sysfs", "/sys", "sysfs", unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC, "", 0o555},
	{"devtmpfs", "/dev", "devtmpfs", unix.MS_NOSUID, "mode=0755", 0o755},
	{"devpts", "/dev/pts", "devpts", unix.MS_NOSUID | unix.MS_NOEXEC, "gid=5,mode=620,ptmxmode=666", 0o755},
	{"tmpfs", "/tmp", "tmpfs", unix.MS_NOSUID | unix.MS_NODEV, "mode=1777", 0o1777},
	{"tmpfs", "/run", "tmpfs", unix.MS_NOSUID | unix.MS_NODEV, "mode=0755", 0o755},
}

// Mount mounts the base filesystems of the boot environment. Ones that
// are already mounted are left alone.
func Mount() error {
	var errs []error
	for _, m := range baseMounts {
		os.MkdirAll(m.dir, m.mode)
		err := unix.Mount(m.src, m.dir, m.fstype, m.flags, m.data)
		if err != nil && !errors.Is(err, unix.EBUSY) {
			errs = append(errs, fmt.Errorf("mount %s on %s: %w", m.fstype, m.dir, err))
		}
	}
	return errors.Join(errs...)
}

// Setup prepares the boot environment: base mounts, the kernel's module
// helper, console and file logging, driver coldplug and (with FindMedia)
// the clone media. The Env is returned even with an error, so that the
// caller can open the rescue shell with it. clonecd.break=setup opens the
// shell at the end of Setup.
func Setup(o Options) (*Env, error) {
	env := &Env{}
	var errs []error
	if !o.NoMounts {
		if err := Mount(); err != nil {
			errs = append(errs, err)
		}
	}
	env.Cmdline = o.Cmdline
	if env.Cmdline == nil {
		cl, err := ReadCmdline()
		if err != nil {
			errs = append(errs, err)
			cl = map[string]string{}
		}
		env.Cmdline = cl
	}
	env.Consoles = ConsoleDevices(env.Cmdline["console"])
	var outs teeWriter
	for _, c := range env.Consoles {
		if f, err := os.OpenFile(c, os.O_WRONLY|unix.O_NOCTTY, 0); err == nil {
			outs = append(outs, f)
		}
	}
	if len(outs) == 0 {
		outs = append(outs, os.Stdout)
	}
	logPath := o.LogFile
	if logPath == "" {
		logPath = LogPath
	}
	if f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644); err == nil {
		env.LogFile = f
		env.FileLog = f
		outs = append(outs, f)
	} else {
		env.FileLog = io.Discard
		errs = append(errs, fmt.Errorf("log %s: %w", logPath, err))
	}
	env.Log = outs
	env.Logf("clonecd: boot environment up (log %s)", logPath)

	// The kernel runs /sbin/modprobe for fs-*, crypto-* and other
	// requests; make sure that is clonecd.
	helper := "/sbin/modprobe"
	if _, err := os.Stat(helper); err != nil {
		if exe, err := os.Executable(); err == nil {
			helper = exe
		}
	}
	os.WriteFile("/proc/sys/kernel/modprobe", []byte(helper+"\n"), 0o644)
	if _, err := os.Stat("/bin/sh"); err != nil {
		if _, err := os.Stat("/bin/busybox"); err == nil {
			exec.Command("/bin/busybox", "--install", "-s").Run()
		}
	}

	dir := o.Modules
	if dir == "" {
		dir = kmod.DefaultDir()
	}
	if l, err := kmod.NewLoader(dir); err == nil {
		env.Loader = l
		l.Log = func(format string, a ...any) { fmt.Fprintf(env.FileLog, format+"\n", a...) }
		if !o.NoColdplug {
			quiet := o.Quiet
			if quiet == 0 {
				quiet = 2 * time.Second
			}
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			env.Modules = l.Coldplug(ctx, quiet)
			cancel()
			env.Logf("clonecd: coldplug loaded %d modules", len(env.Modules))
		}
	} else {
		env.Logf("clonecd: no kernel modules (%v): built-in drivers only", err)
	}

	if o.FindMedia {
		if err := env.FindMedia(o); err != nil {
			errs = append(errs, err)
		}
	}
	err := errors.Join(errs...)
	if err != nil {
		env.Logf("clonecd: setup: %v", err)
	}
	if _, ok := env.Cmdline["clonecd.break"]; ok && env.Cmdline["clonecd.break"] == "setup" {
		Shell(env, "clonecd break=setup (exit: continue)")
	}
	return env, err
}

// blockDevices lists /sys/class/block names: CD drives first, then whole
// disks, then partitions; loop, ram, zram, dm and floppy devices are left
// out.
func blockDevices() []string {
	ents, _ := os.ReadDir("/sys/class/block")
	var cds, disks, parts []string
	for _, e := range ents {
		n := e.Name()
		switch {
		case strings.HasPrefix(n, "loop"), strings.HasPrefix(n, "ram"), strings.HasPrefix(n, "zram"), strings.HasPrefix(n, "dm-"),
			strings.HasPrefix(n, "fd"):
		case strings.HasPrefix(n, "sr"):
			cds = append(cds, n)
		default:
			if _, err := os.Stat(filepath.Join("/sys/class/block", n, "partition")); err == nil {
				parts = append(parts, n)
			} else {
				disks = append(disks, n)
			}
		}
	}
	return append(append(cds, disks...), parts...)
}

// devNode returns /dev/NAME, creating the node from sysfs if devtmpfs has
// not (yet).
func devNode(name string) string {
	p := "/dev/" + name
	if _, err := os.Stat(p); err == nil {
		return p
	}
	b, err := os.ReadFile(filepath.Join("/sys/class/block", name, "dev"))
	if err != nil {
		return p
	}
	var maj, min uint32
	if _, err := fmt.Sscanf(strings.TrimSpace(string(b)), "%d:%d", &maj, &min); err == nil {
		unix.Mknod(p, unix.S_IFBLK|0o600, int(unix.Mkdev(maj, min)))
	}
	return p
}

// MountFS mounts dev on dir read-only as one of the types, loading the
// filesystem's module (fs-TYPE) when the kernel does not know it yet. It
// returns the type that worked.
func (e *Env) MountFS(dev, dir string, flags uintptr, types ...string) (string, error) {
	os.MkdirAll(dir, 0o755)
	var errs []error
	for _, t := range types {
		err := unix.Mount(dev, dir, t, flags, "")
		if errors.Is(err, unix.ENODEV) && e.Loader != nil {
			if _, lerr := e.Loader.Load("fs-"+t, ""); lerr == nil {
				err = unix.Mount(dev, dir, t, flags, "")
			}
		}
		if err == nil {
			return t, nil
		}
		errs = append(errs, fmt.Errorf("%s: %w", t, err))
	}
	return "", fmt.Errorf("mounting %s on %s: %w", dev, dir, errors.Join(errs...))
}

// IsMedia reports whether dir holds clone media: CLONE_CD_VERSION and an
// image (medium.Version, medium.FindImage).
func IsMedia(dir string) bool {
	if _, err := os.Stat(filepath.Join(dir, medium.Version)); err != nil {
		return false
	}
	_, err := medium.FindImage(os.DirFS(dir))
	return err == nil
}

// FindMedia polls the block devices (new ones appear as USB and SCSI
// buses settle; coldplug runs between polls) for a CD, disk or partition
// holding clone media (iso9660, else vfat), mounts it read-only and sets
// MediaDev, MediaDir, MediaFS and Version. A device named by
// clonecd.media=DEV on the kernel command line is tried first.
func (e *Env) FindMedia(o Options) error {
	dir := o.MediaDir
	if dir == "" {
		dir = "/cdrom"
	}
	timeout := o.MediaTimeout
	if timeout == 0 {
		timeout = 3 * time.Minute
	}
	rejected := map[string]bool{}
	deadline := time.Now().Add(timeout)
	lastNote := time.Now()
	for {
		devs := blockDevices()
		if want := strings.TrimPrefix(e.Cmdline["clonecd.media"], "/dev/"); want != "" {
			devs = append([]string{want}, devs...)
		}
		for _, name := range devs {
			if rejected[name] {
				continue
			}
			dev := devNode(name)
			fstype, err := e.MountFS(dev, dir, unix.MS_RDONLY, "iso9660", "vfat")
			if err != nil {
				fmt.Fprintf(e.FileLog, "clonecd: media: %s: %v\n", dev, err)
				continue
			}
			if !IsMedia(dir) {
				fmt.Fprintf(e.FileLog, "clonecd: media: %s (%s) has no CLONE_CD_VERSION and node.cpio.gz\n", dev, fstype)
				unix.Unmount(dir, 0)
				rejected[name] = true
				continue
			}
			e.MediaDev, e.MediaDir, e.MediaFS = dev, dir, fstype
			if b, err := os.ReadFile(filepath.Join(dir, medium.Version)); err == nil {
				e.Version = strings.TrimSpace(string(b))
			}
			e.Logf("clonecd: media %s (%s) mounted on %s, version %s", dev, fstype, dir, e.Version)
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no clone media (CLONE_CD_VERSION and node.cpio.gz on an iso9660 or vfat CD, disk or partition) found within %s; devices: %s",
				timeout, strings.Join(blockDevices(), " "))
		}
		if time.Since(lastNote) > 15*time.Second {
			e.Logf("clonecd: still looking for the clone media (devices: %s)", strings.Join(devs, " "))
			lastNote = time.Now()
		}
		if e.Loader != nil {
			added, _ := e.Loader.ColdplugPass()
			e.Modules = append(e.Modules, added...)
		}
		time.Sleep(500 * time.Millisecond)
	}
}
