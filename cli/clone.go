package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"

	"github.com/spf13/cobra"

	"github.com/clonecd/clonecd/bootenv"
	"github.com/clonecd/clonecd/clone"
	"github.com/clonecd/clonecd/netclone"
	"github.com/clonecd/clonecd/trust"
)

type cloneFlags struct {
	media, target, nodes, mac string
	net, server               urlFlag
	hostname                  nodeFlag
	version                   versionFlag
	brk                       string
	dataKeep, noTune, quiet   bool
	trust                     []string
	access                    accessFlags
}

func cloneCmd(out Output) *cobra.Command {
	f := &cloneFlags{}
	c := &cobra.Command{
		Use:   "clone --media DIR|--net URL --target DISK|IMAGE [flags]",
		Short: "clone a node from clone media onto a disk or disk image (what the CD does)",
		Long: `Runs the clone steps (` + strings.Join(clone.Steps, " ") + `) outside the
initramfs: DIR is clone media (a mounted clonecd.iso or a directory holding
CLONE_CD_VERSION, node.cpio.gz, node.cpio.gz.sha256, node.sfdisk), DISK a block
device (/dev/sdb, a /dev/disk/by-id path, a serial) or a disk image file, which
is attached to a loop device for the run. A partition marked preserve (/data)
is kept when the disk's table matches the layout and its filesystem is intact.
--net URL takes the media from a clonecd serve instead, as the network
cloner does: the server's current version (or the node's canary pin),
streamed, resumable and sha256 checked, with the steps, progress, result
and log reported to the server as the node --hostname (clonecd status).
It presents the node's credential (--credential FILE, --token or
$CLONECD_TOKEN: clonecd token NODE) and checks the server's certificate
against --tls-pin or $CLONECD_TLS_PIN (or --tls-ca). With --media,
--server URL and --tls-pin PIN are the server and pin the node's ramclone
boot entry names (default: the media's clonecd.conf). Needs root.

--trust FILE.pub|DIR (default: the keys in ` + trust.TrustDir + `, which the
cloner's initramfs and a node's ramclone entry carry) clones only a
version the master signed: MANIFEST's signature is checked first, then
every file against it before the step that uses it (layout, ks.cfg,
nodes, clonecd.conf, kernel and initrd in setup, before anything is
written; the image as it is read, against the signed sha256). A file that
is missing, unsigned or changed stops the clone with its name. Without a
key the clone says UNSIGNED in its log and its report.

--target is required, except in the clone CD's rescue shell: there,
without --media and --target, the mounted media and the one disk that is
not the media are used.

Exit status: 0 cloned, 2 failed (the step is named), 3 stopped before the
--break step.`,
		Example: `  truncate -s 4G node.img
  clonecd clone --media /mnt/cdrom --target node.img --hostname node07
  clonecd clone --media build/media --target /dev/sdb --data-keep
  clonecd clone --media build/media --target node.img --break unpack   # stop before unpack
  clonecd clone --net https://10.0.0.1:8443 --credential node07.cred --tls-pin sha256//q0P0vTLXDCxC9dHdZ8ocEfkhd9tu2yvWjDCbzBnmC2Q= --target node.img --hostname node07
  clonecd clone --media /mnt/cdrom --trust /root/.clonecd/clonecd.key.pub --target node.img
  clonecd clone --hostname node07    # in the clone CD's rescue shell: retry the clone`,
		Args: noArgs,
		RunE: func(c *cobra.Command, args []string) error { return runClone(c.Context(), out, f, args) },
	}
	fl := c.Flags()
	fl.StringVar(&f.media, "media", "", "clone media `DIR` (required unless --net)")
	fl.Var(&f.net, "net", "image server `URL` (clonecd serve) to take the media from instead of --media; reports to it as --hostname")
	fl.StringVar(&f.target, "target", "", "`DISK`: device, by-id path, serial or image file (required outside the clone CD)")
	fl.Var(&f.hostname, "hostname", "the node's host `NAME` (default: the nodes table by --mac, else node-MAC)")
	oneOfVar(fl, &f.brk, "break", "", clone.Steps, "stop before this `STEP` (exit status 3): "+strings.Join(clone.Steps, ", "))
	fl.BoolVar(&f.dataKeep, "data-keep", false, "stop before writing when the table differs and the layout preserves a partition (clonecd.data=keep)")
	fl.Var(&f.version, "version", "version, MAJOR.MINOR, for /etc/clonecd-version (default: the media's CLONE_CD_VERSION)")
	fl.StringVar(&f.nodes, "nodes", "", "identity table `FILE` (MAC HOSTNAME [ADDR/PREFIX [GW]]) instead of the media's /nodes")
	fl.StringVar(&f.mac, "mac", "", "MAC `ADDRESSES`, comma-separated, to look up in the nodes table (default: none)")
	fl.Var(&f.server, "server", "image server `URL` for the node's ramclone boot entry (default: the media's clonecd.conf)")
	fl.BoolVar(&f.noTune, "no-tune", false, "do not change the disk's queue settings")
	fl.BoolVarP(&f.quiet, "quiet", "q", false, "print only errors")
	fl.StringArrayVar(&f.trust, "trust", nil, "clone only what the key `FILE.pub` (or a *.pub of a DIR) signed (repeatable; default: the keys of "+trust.TrustDir+")")
	f.access.define(fl)
	return c
}

func runClone(ctx context.Context, out Output, f *cloneFlags, _ []string) error {
	media, mediaDev := f.media, ""
	switch {
	case f.net != "" && media != "":
		return UsageError("--media and --net exclude each other")
	case f.net != "" && (f.target == "" || f.hostname == ""):
		return UsageError("--net needs --target and --hostname (the node's name on the server)")
	case f.net != "":
	case media == "" && f.target == "" && inInitramfs():
		// in the clone CD's rescue shell: the mounted media
		media, mediaDev = mountedMedia()
		if media == "" {
			return UsageError("--media is required (no mounted clone media found)")
		}
		fmt.Fprintf(out.Stderr, "clonecd clone: media %s (%s)\n", media, mediaDev)
	case media == "":
		return UsageError("--media DIR (or --net URL) is required")
	case f.target == "":
		return UsageError("--target is required outside the clone CD: name the disk or image file to overwrite")
	}
	if f.net == "" {
		if st, err := os.Stat(media); err != nil {
			return UsageError("--media: %v", err)
		} else if !st.IsDir() {
			return UsageError("--media %s: not a directory", media)
		}
	}
	cfg := clone.Config{
		Target: f.target, Hostname: string(f.hostname), Break: f.brk, DataKeep: f.dataKeep,
		Version: string(f.version), Server: string(f.server), NoTune: f.noTune, MACs: []string{},
		MediaDev: mediaDev,
	}
	if f.net == "" { // --server and --tls-pin name the ramclone entry's server
		cfg.TLSPin = string(f.access.pin)
	}
	if mediaDev != "" { // on the node itself: its NICs name it
		cfg.MACs = nil
	}
	if f.mac != "" {
		cfg.MACs = strings.Split(f.mac, ",")
	}
	if f.nodes != "" {
		nf, err := os.Open(f.nodes)
		if err != nil {
			return err
		}
		defer nf.Close()
		cfg.Nodes = nf
	}
	keys, err := cloneTrust(f.trust)
	if err != nil {
		return err
	}
	cfg.Trust = keys
	if !f.quiet {
		cfg.Log = out.Stderr
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt)
	defer stop()
	if f.net != "" {
		acc, err := f.access.access(string(f.net), "", "")
		if err != nil {
			return err
		}
		done, err := netMedia(ctx, &cfg, string(f.net), acc)
		if err != nil {
			return err
		}
		defer done()
	} else {
		cfg.Media = os.DirFS(media)
	}
	err = clone.Run(ctx, cfg)
	if errors.Is(err, clone.ErrBreak) {
		fmt.Fprintf(out.Stderr, "clonecd clone: %v\n", err)
		return &ExitError{Code: exitBreak}
	}
	return err
}

// netMedia points cfg at the server's media (netclone.Media) with a
// netclone.Reporter for node cfg.Hostname, as the network cloner does; the
// run's log is kept in a temporary file that the reporter uploads. done
// removes it.
func netMedia(ctx context.Context, cfg *clone.Config, server string, acc netclone.Access) (done func(), err error) {
	logf := func(format string, a ...any) {
		if cfg.Log != nil {
			fmt.Fprintf(cfg.Log, format+"\n", a...)
		}
	}
	m, err := netclone.NewMedia(ctx, server, netclone.MediaOptions{Access: acc, Node: cfg.Hostname, Logf: logf})
	if err != nil {
		return nil, fmt.Errorf("--net %s: %w", server, err)
	}
	f, err := os.CreateTemp("", "clonecd-clone-*.log")
	if err != nil {
		return nil, err
	}
	if cfg.Log != nil {
		cfg.Log = io.MultiWriter(cfg.Log, f)
	} else {
		cfg.Log = f
	}
	rep := netclone.NewReporter(server, cfg.Hostname)
	rep.Version, rep.LogFile, rep.Logf, rep.Access = m.Version, f.Name(), logf, acc
	logf("clonecd: server %s serves version %s; reporting as node %s", server, m.Version, cfg.Hostname)
	if err := rep.Begin(); err != nil {
		logf("clonecd: report to %s: %v", server, err)
	}
	cfg.Media, cfg.Reporter = m, rep
	return func() { f.Close(); os.Remove(f.Name()) }, nil
}

// mountedMedia finds mounted clone media (the CD in the rescue shell).
func mountedMedia() (dir, dev string) {
	for _, m := range mounts() {
		if m.dir != "/" && strings.HasPrefix(m.dev, "/dev/") && bootenv.IsMedia(m.dir) {
			return m.dir, m.dev
		}
	}
	return "", ""
}

// inInitramfs reports whether / is the initramfs (rootfs, ramfs or
// tmpfs), where the clone CD's rescue shell runs, rather than a disk.
func inInitramfs() bool {
	found := false
	for _, m := range mounts() {
		if m.dir == "/" {
			if m.fstype != "rootfs" && m.fstype != "ramfs" && m.fstype != "tmpfs" {
				return false
			}
			found = true
		}
	}
	return found
}

type mount struct{ dev, dir, fstype string }

func mounts() []mount {
	b, err := os.ReadFile("/proc/mounts")
	if err != nil {
		return nil
	}
	var ms []mount
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) >= 3 {
			ms = append(ms, mount{f[0], f[1], f[2]})
		}
	}
	return ms
}
