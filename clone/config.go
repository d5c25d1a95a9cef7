package clone

import (
	"errors"
	"fmt"
	"io"
	"io/fs"

	"github.com/clonecd/clonecd/trust"
)

// What to do once the clone is done (clonecd.after=).
const (
	AfterWaitEject = "wait-eject" // power off once the CD is removed (default for a CD)
	AfterPowerOff  = "poweroff"
	AfterReboot    = "reboot" // default for a USB stick and the network
	AfterNone      = "none"   // return (the CLI)
)

// Reporter is told what a run is doing; the network cloner implements it to
// report progress to its server. Every method may be called from the
// goroutine that runs the steps only.
type Reporter interface {
	Step(name string)           // a step starts
	Progress(done, total int64) // bytes of node.cpio.gz read so far
	Done(err error)             // the run ended (nil: clone done)
}

// Config is one clone run.
type Config struct {
	// Media holds CLONE_CD_VERSION, node.cpio.gz(.sha256), node.sfdisk and
	// optionally nodes, ks.cfg, clonecd.conf, isolinux/{vmlinuz,initrd.img}.
	Media fs.FS
	// Target is the disk to clone onto: a block device (/dev/sda), a
	// /dev/disk/by-id path, a bare name (sda), a serial number, or an image
	// file (attached to a loop device for the run). Empty: the one
	// non-removable disk that is not the media, but only in the cloner
	// (PID 1 in the initramfs); anywhere else an empty Target is refused.
	Target string
	// Force writes the partition table even when the disk is in use
	// (a mounted partition, active swap, held by md/LVM/dm).
	Force bool
	// MediaDev is the block device the media came from; it is never a
	// target.
	MediaDev string
	// Hostname for the node; empty: the nodes table by MAC, then
	// DHCPHostname, then node-<mac>. DHCPHostname is the name the
	// network cloner's DHCP lease gave (Boot sets it in network mode).
	Hostname     string
	DHCPHostname string
	// MACs of this machine's network interfaces, for the nodes table.
	// Nil: read from /sys/class/net.
	MACs []string
	// Nodes is an identity table (lines MAC HOSTNAME [ADDR/PREFIX [GW]])
	// used instead of the media's /nodes when not nil.
	Nodes io.Reader
	// DataKeep (clonecd.data=keep): stop before writing the partition table
	// when it differs and the layout has a preserved partition.
	DataKeep bool
	// Version written to /etc/clonecd-version; empty: the media's
	// CLONE_CD_VERSION.
	Version string
	// Server is the image server URL for the node's ramclone entry; empty:
	// server= of the media's clonecd.conf.
	Server string
	// TLSPin is the server's certificate pin for the ramclone entry
	// (clonecd.tls-pin=); empty: tls-pin= of the media's clonecd.conf.
	TLSPin string
	// Self is the clonecd binary installed on the node as
	// /usr/local/sbin/clonecd; empty: the running executable.
	Self string
	// Log receives the step log (console and /tmp/clone.log in the
	// initramfs). Nil: discarded.
	Log io.Writer
	// Break names a step to stop before. OnBreak is called there (the
	// initramfs opens the rescue shell) and the run goes on when it returns
	// nil; with no OnBreak the run stops with ErrBreak.
	Break   string
	OnBreak func(step string) error
	// Work is where the new root is mounted; empty: a new temporary
	// directory.
	Work string
	// Reporter, if set, is told about steps and progress.
	Reporter Reporter
	// Eject is called in the finish step once everything is unmounted
	// (the initramfs ejects the CD). Optional.
	Eject func() error
	// NoTune skips the tune step's changes (it still logs what it sees).
	NoTune bool
	// Net is network mode (clonecd.mode=net, recloning a node from its
	// own disk): until the clone succeeds, the node's next boot is the
	// cloner (see safety.go).
	Net bool
	// Trust holds the keys the cloner trusts (trust.TrustDir in the
	// initramfs, clone --trust). With a key the setup step verifies the
	// media's MANIFEST signature and every file against it before the
	// step that uses it (trust.go); nil or no key: the media are used as
	// they are, and the log and the report say UNSIGNED.
	Trust *trust.Verifier
	// SysRoot is the root of sysfs lookups ("" = "/"); tests point it at a
	// fake tree.
	SysRoot string
}

// ErrBreak is returned when the run stops at Config.Break without an
// OnBreak handler.
var ErrBreak = errors.New("stopped at break point")

// StepError is a failed step.
type StepError struct {
	Step string
	Err  error
}

func (e *StepError) Error() string { return fmt.Sprintf("step %s: %v", e.Step, e.Err) }
func (e *StepError) Unwrap() error { return e.Err }

func validStep(s string) bool {
	for _, n := range Steps {
		if n == s {
			return true
		}
	}
	return false
}
