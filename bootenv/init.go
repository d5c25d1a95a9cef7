package bootenv

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/clonecd/clonecd/medium"
	"github.com/clonecd/clonecd/trust"
)

// Modes of clonecd.mode=.
const (
	ModeCD    = "cd"
	ModeNet   = "net"
	ModeProbe = "probe"
	ModeShell = "shell"
)

// Init is clonecd as PID 1 in its initramfs. It sets up the environment
// and, by clonecd.mode, clones (boot, i.e. clone.Boot, for cd and net),
// probes (drivers, media and its checksum, then power off) or opens the
// rescue shell. Errors beep, are printed and open the shell. It never
// returns while PID 1: leaving the shell opens a new one.
func Init(boot func(*Env) error) int {
	if os.Getpid() != 1 {
		fmt.Fprintln(os.Stderr, "clonecd init: not PID 1 (this is the initramfs's /init; use `clonecd clone` to clone from a shell)")
		return 2
	}
	os.Setenv("PATH", "/sbin:/bin:/usr/sbin:/usr/bin")
	os.Setenv("HOME", "/root")
	handleSignals()
	cl, _ := ReadCmdline()
	if cl == nil {
		Mount()
		cl, _ = ReadCmdline()
	}
	mode := ModeCD
	if cl != nil && cl["clonecd.mode"] != "" {
		mode = cl["clonecd.mode"]
	}
	o := Options{FindMedia: mode == ModeCD || mode == ModeProbe}
	env, err := Setup(o)
	if err == nil && mode == ModeShell && env.MediaDir == "" {
		// Mount the media for the admin when it is there already.
		o.MediaTimeout = 20 * time.Second
		env.FindMedia(o)
	}
	if err != nil {
		Beep()
		env.Logf("clonecd: ERROR: %v", err)
	}
	switch {
	case mode == ModeProbe:
		if perr := Probe(env, env.Log); perr != nil && err == nil {
			err = perr
		}
		if err == nil {
			env.Logf("clonecd: probe done, powering off")
			logErr(env, PowerOff())
		}
	case mode == ModeShell:
		err = nil
	case err == nil && (mode == ModeCD || mode == ModeNet):
		if boot == nil {
			err = fmt.Errorf("this clonecd has no cloner")
		} else {
			err = safely(func() error { return boot(env) })
		}
	case err == nil:
		err = fmt.Errorf("clonecd.mode=%s: want cd, net, probe or shell", mode)
	}
	if err != nil {
		Beep()
		env.Logf("clonecd: ERROR: %v", err)
	}
	reason := "rescue shell (clonecd.mode=shell)"
	if err != nil {
		reason = "ERROR: " + err.Error()
	}
	for {
		if serr := Shell(env, reason); serr != nil {
			env.Logf("clonecd: %v", serr)
			time.Sleep(5 * time.Second)
		}
		reason = "the shell was left; here is a new one (`poweroff -f` to stop)"
	}
}

// safely runs fn, turning a panic into an error: PID 1 must not die (the
// kernel would panic and the admin would lose the rescue shell).
func safely(fn func() error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("clonecd crashed: %v\n%s", r, debug.Stack())
		}
	}()
	return fn()
}

func logErr(env *Env, err error) {
	if err != nil {
		env.Logf("clonecd: %v", err)
	}
}

// handleSignals makes busybox's poweroff/halt/reboot (which signal PID 1:
// USR2, USR1, TERM) and Ctrl-Alt-Del (INT) work.
func handleSignals() {
	ch := make(chan os.Signal, 4)
	signal.Notify(ch, unix.SIGUSR1, unix.SIGUSR2, unix.SIGTERM, unix.SIGINT)
	go func() {
		for s := range ch {
			switch s {
			case unix.SIGUSR1, unix.SIGUSR2:
				PowerOff()
			default:
				Reboot()
			}
		}
	}()
}

// Probe reports what the boot environment found: the drivers loaded by
// coldplug, the media, and whether node.cpio.gz matches its sha256 file.
func Probe(env *Env, w io.Writer) error {
	mods := env.Modules
	if len(mods) == 0 {
		mods = []string{"(none)"}
	}
	fmt.Fprintf(w, "clonecd: drivers loaded: %s\n", strings.Join(mods, " "))
	fmt.Fprintf(w, "clonecd: devices bound: %s\n", strings.Join(BoundDrivers(), " "))
	if env.MediaDir == "" {
		return fmt.Errorf("no clone media found")
	}
	fmt.Fprintf(w, "clonecd: media %s (%s) version %s\n", env.MediaDev, env.MediaFS, env.Version)
	keys, err := trust.LoadTrustDir(probeTrustDir)
	if err != nil {
		fmt.Fprintf(w, "clonecd: the cloner's trusted keys: %v\n", err)
		return err
	}
	if len(keys.Keys()) > 0 {
		st, n, err := CheckSigned(env.MediaDir, keys)
		if err != nil {
			fmt.Fprintf(w, "clonecd: media BAD: %v\n", err)
			return err
		}
		name, _ := medium.FindImage(os.DirFS(env.MediaDir))
		fmt.Fprintf(w, "clonecd: media OK: %s sha256 matches; %s, %d files match %s\n", name, st, n, medium.ManifestFile)
		return nil
	}
	fmt.Fprintf(w, "clonecd: %s: this cloner trusts no key; checking the image against its sha256 file only\n", trust.Unsigned)
	if err := CheckImage(env.MediaDir); err != nil {
		fmt.Fprintf(w, "clonecd: media BAD: %v\n", err)
		return err
	}
	name, _ := medium.FindImage(os.DirFS(env.MediaDir))
	fmt.Fprintf(w, "clonecd: media OK: %s sha256 matches\n", name)
	return nil
}

// probeTrustDir holds the keys Probe trusts (tests point it elsewhere).
var probeTrustDir = trust.TrustDir

// CheckSigned checks the media in dir as a cloner that trusts keys does
// (package clone): MANIFEST's signature, then every file it lists, the
// image included, read whole. It returns how the media are signed and
// how many files matched; a refusal names the file.
func CheckSigned(dir string, keys *trust.Verifier) (trust.Status, int, error) {
	fsys := os.DirFS(dir)
	m, st, err := keys.ReadManifest(fsys)
	if err != nil {
		return st, 0, err
	}
	if m == nil { // no key: nothing to check against
		return st, 0, nil
	}
	for _, f := range m.Files {
		r, err := trust.Open(fsys, m, f.Name)
		if err != nil {
			return st, 0, err
		}
		_, err = io.Copy(io.Discard, r)
		r.Close()
		if err != nil {
			return st, 0, err // *medium.MismatchError and *fs.PathError name the file
		}
	}
	return st, len(m.Files), nil
}

// CheckImage checks dir's image against its sha256 file (medium.ReadSum:
// sha256sum format).
func CheckImage(dir string) error {
	fsys := os.DirFS(dir)
	name, err := medium.FindImage(fsys)
	if err != nil {
		return err
	}
	want, err := medium.ReadSum(fsys, name)
	if err != nil {
		return fmt.Errorf("checksum file: %w", err)
	}
	img, err := os.Open(filepath.Join(dir, name))
	if err != nil {
		return err
	}
	defer img.Close()
	h := sha256.New()
	if _, err := io.Copy(h, img); err != nil {
		return fmt.Errorf("reading %s: %w", img.Name(), err)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != want {
		return fmt.Errorf("%s sha256 %s, %s says %s", name, got, medium.SumName(name), want)
	}
	return nil
}

// BoundDrivers lists "device=driver" for the PCI, virtio and USB devices
// that have a driver bound.
func BoundDrivers() []string {
	var out []string
	for _, bus := range []string{"pci", "virtio", "usb"} {
		devs, _ := filepath.Glob(filepath.Join("/sys/bus", bus, "devices", "*"))
		for _, d := range devs {
			if drv, err := os.Readlink(filepath.Join(d, "driver")); err == nil {
				out = append(out, filepath.Base(d)+"="+filepath.Base(drv))
			}
		}
	}
	return out
}
