package clone

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/clonecd/clonecd/bootenv"
	"github.com/clonecd/clonecd/trust"
)

// BootOptions are what Boot needs beyond the boot environment. The zero
// value is a cloner without network mode, logging to /tmp/clone.log.
type BootOptions struct {
	// NetMedia opens the network media for clonecd.mode=net (package
	// netclone/netboot's Open: network up, the server's media, a reporter
	// and the name DHCP gave). Nil: this binary has no network cloner.
	NetMedia func(ctx context.Context, env *bootenv.Env, server string) (*NetSource, error)
	// LogFile is the cloner's log; "": bootenv.LogPath.
	LogFile string
	// EjectInterval is how often wait-eject looks at the CD drive; 0: 30s.
	EjectInterval time.Duration
	// TrustDir holds the public keys the cloner trusts (ID.pub files);
	// "": trust.TrustDir, where build --trust and initramfs --trust put
	// them. No directory: no key, the clone says UNSIGNED.
	TrustDir string
	// NetAttempts is how many times the network cloner runs the clone on
	// its own before it gives up and opens the rescue shell (a stream that
	// breaks for good, an image whose sha256 does not match); 0: 3.
	NetAttempts int
}

// NetSource is what BootOptions.NetMedia opens.
type NetSource struct {
	Media        fs.FS    // the server's files of one version
	Reporter     Reporter // optional
	DHCPHostname string   // the host name of the DHCP lease, if any
}

func (o *BootOptions) defaults() {
	if o.LogFile == "" {
		o.LogFile = bootenv.LogPath
	}
	if o.EjectInterval <= 0 {
		o.EjectInterval = 30 * time.Second
	}
	if o.NetAttempts <= 0 {
		o.NetAttempts = 3
	}
	if o.TrustDir == "" {
		o.TrustDir = trust.TrustDir
	}
}

// Boot is what /init runs in cd and net mode once bootenv.Setup has mounted
// the media: the clone steps from the kernel command line's clonecd.* keys,
// then clonecd.after. On failure it beeps, prints the step and the log's
// tail, and opens the rescue shell; leaving the shell runs the clone again.
func Boot(env *bootenv.Env, o BootOptions) error {
	o.defaults()
	ctx := context.Background()
	if env.Log == nil {
		env.Log = os.Stdout
	}
	log := &swapWriter{lockedWriter: lockedWriter{w: env.Log}, logFile: o.LogFile}
	cl := env.Cmdline
	mode := cl["clonecd.mode"]
	if mode == "" {
		mode = "cd"
	}
	cfg := Config{
		Target:   cl["clonecd.disk"],
		MediaDev: env.MediaDev,
		Hostname: cl["clonecd.hostname"],
		DataKeep: cl["clonecd.data"] == "keep",
		Break:    cl["clonecd.break"],
		Server:   cl["clonecd.server"],
		TLSPin:   cl["clonecd.tls-pin"],
		Log:      log,
		Work:     "/target",
		OnBreak: func(step string) error {
			fmt.Fprintf(log, "clonecd: break before step %s: rescue shell; type `exit` to go on with %s\n", step, step)
			err := bootenv.Shell(env, "clonecd break="+step+" (exit: continue)")
			log.reopen(env)
			return err
		},
	}
	keys, err := trust.LoadTrustDir(o.TrustDir)
	if err != nil {
		// a damaged key must not turn into "no key, UNSIGNED"
		return fmt.Errorf("the cloner's trusted keys: %w", err)
	}
	cfg.Trust = keys
	if cfg.Break == "setup" {
		cfg.Break = "" // bootenv.Setup already honoured it
	}
	after := cl["clonecd.after"]
	switch mode {
	case "net":
		if o.NetMedia == nil {
			return fmt.Errorf("clonecd.mode=net: this clonecd has no network cloner")
		}
		nm, err := o.NetMedia(ctx, env, cfg.Server)
		if err != nil {
			return fmt.Errorf("network media from %s: %w", orNone(cfg.Server), err)
		}
		cfg.Media, cfg.Reporter, cfg.DHCPHostname, cfg.Net = nm.Media, nm.Reporter, nm.DHCPHostname, true
		if after == "" {
			after = AfterReboot
		}
	default:
		if env.MediaDir == "" {
			return fmt.Errorf("no clone media found")
		}
		media, err := MediaDir(env.MediaDir)
		if err != nil {
			return err
		}
		cfg.Media = media
		isCD := strings.HasPrefix(strings.TrimPrefix(env.MediaDev, "/dev/"), "sr")
		if isCD {
			cfg.Eject = func() error { return bootenv.Eject(env.MediaDev) }
		}
		if after == "" {
			after = AfterReboot
			if isCD {
				after = AfterWaitEject
			}
		}
	}
	for attempt := 1; ; attempt++ {
		err := Run(ctx, cfg)
		if err == nil {
			fmt.Fprintf(log, "clonecd: clone done\n")
			return afterClone(env, log, after, o.EjectInterval)
		}
		if mode == "net" && attempt < o.NetAttempts && retriable(err) {
			fmt.Fprintf(log, "clonecd: attempt %d of %d failed: %v; fetching the image again\n", attempt, o.NetAttempts, err)
			time.Sleep(time.Duration(attempt) * 5 * time.Second)
			continue
		}
		failed(env, log, err, o.LogFile)
		log.reopen(env)
	}
}

// retriable reports whether a failed run is worth running again unattended:
// failures of the image stream (step unpack), not of the disk or layout.
func retriable(err error) bool {
	var se *StepError
	return errors.As(err, &se) && se.Step == "unpack"
}

// swapWriter is the run's log. After a rescue shell it is reopened: the
// shell's session hangs up the console tty when it ends, and writes through
// descriptors opened before fail from then on.
type swapWriter struct {
	lockedWriter
	logFile string // the log file, opened again with the consoles
}

// reopen points the log (and env.Log) at freshly opened consoles and the
// log file.
func (s *swapWriter) reopen(env *bootenv.Env) {
	var ws []io.Writer
	if f, err := os.OpenFile(s.logFile, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644); err == nil {
		ws = append(ws, f)
	}
	consoles := env.Consoles
	if len(consoles) == 0 {
		consoles = []string{"/dev/console"}
	}
	for _, c := range consoles {
		if f, err := os.OpenFile(c, os.O_WRONLY|syscall.O_NOCTTY, 0); err == nil {
			ws = append(ws, f)
		}
	}
	if len(ws) == 0 {
		return
	}
	w := &bestEffort{ws: ws}
	s.mu.Lock()
	s.w = w
	s.mu.Unlock()
	env.Log = w
}

// bestEffort writes to every writer, ignoring the ones that fail.
type bestEffort struct{ ws []io.Writer }

func (b *bestEffort) Write(p []byte) (int, error) {
	for _, w := range b.ws {
		w.Write(p)
	}
	return len(p), nil
}

// failed beeps, shows the failed step and the log tail, and opens the
// rescue shell.
func failed(env *bootenv.Env, log io.Writer, err error, logFile string) {
	bootenv.Beep()
	step := "?"
	var se *StepError
	if errors.As(err, &se) {
		step = se.Step
		err = se.Err
	}
	tail := LogTail(logFile, 20)
	fmt.Fprintf(log, "clonecd: FAILED at step %s: %v\n", step, err)
	fmt.Fprintf(log, "clonecd: last lines of %s:\n", logFile)
	for _, l := range tail {
		fmt.Fprintf(log, "  | %s\n", l)
	}
	fmt.Fprintf(log, "clonecd: rescue shell: the whole log is %s; fix the problem, then type `exit` to retry the clone (or `poweroff -f`)\n", logFile)
	if err := bootenv.Shell(env, "clonecd FAILED at "+step+" (exit: retry)"); err != nil {
		fmt.Fprintf(log, "clonecd: shell: %v\n", err)
		time.Sleep(5 * time.Second)
	}
}

// afterClone does clonecd.after: wait for the CD to be taken out, power
// off or reboot.
func afterClone(env *bootenv.Env, log io.Writer, after string, ejectInterval time.Duration) error {
	switch after {
	case AfterPowerOff:
		fmt.Fprintf(log, "clonecd: powering off\n")
		return bootenv.PowerOff()
	case AfterReboot:
		fmt.Fprintf(log, "clonecd: rebooting\n")
		return bootenv.Reboot()
	case AfterNone:
		return nil
	case AfterWaitEject:
		fmt.Fprintf(log, "clonecd: take the CD out: checking every %s, power off once it is removed\n", ejectInterval)
		for bootenv.MediaPresent(env.MediaDev) {
			time.Sleep(ejectInterval)
		}
		fmt.Fprintf(log, "clonecd: CD removed, powering off\n")
		return bootenv.PowerOff()
	}
	return fmt.Errorf("clonecd.after=%s: want wait-eject, poweroff or reboot", after)
}
