package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"

	"github.com/clonecd/clonecd/bootenv"
	"github.com/clonecd/clonecd/clone"
	"github.com/clonecd/clonecd/netclone"
)

func init() {
	Register(&Command{
		Name:    "clone",
		Args:    "--media DIR|--net URL --target DISK|IMAGE [flags]",
		Summary: "clone a node from clone media onto a disk or disk image (what the CD does)",
		Help: `Runs the clone steps (` + strings.Join(clone.Steps, " ") + `) outside the
initramfs: DIR is clone media (a mounted clonecd.iso or a directory holding
CLONE_CD_VERSION, node.cpio.gz, node.cpio.gz.sha256, node.sfdisk), DISK a block
device (/dev/sdb, a /dev/disk/by-id path, a serial) or a disk image file, which
is attached to a loop device for the run. A partition marked preserve (/data)
is kept when the disk's table matches the layout and its filesystem is intact.
--net URL takes the media from a clonecd serve instead, as the network
cloner does: the server's current version (or the node's canary pin),
streamed, resumable and sha256 checked, with the steps, progress, result
and log reported to the server as the node --hostname (clonecd status).
Needs root.

examples:
  truncate -s 4G node.img
  clonecd clone --media /mnt/cdrom --target node.img --hostname node07
  clonecd clone --media build/media --target /dev/sdb --data-keep
  clonecd clone --media build/media --target node.img --break unpack   # stop before unpack
  clonecd clone --net http://master:8080 --target node.img --hostname node07
  clonecd clone --hostname node07    # in the clone CD's rescue shell: retry the clone`,
		Setup: func(fs *flag.FlagSet) Runner {
			media := fs.String("media", "", "clone media directory (required unless --net)")
			netURL := fs.String("net", "", "image server `URL` (clonecd serve) to take the media from instead of --media; reports to it as --hostname")
			target := fs.String("target", "", "disk, by-id path, serial or image file (required with --media; without both, in the clone CD's rescue shell, the mounted media and the one disk that is not the media)")
			host := fs.String("hostname", "", "the node's hostname (default: the nodes table by --mac, else node-MAC)")
			brk := fs.String("break", "", "stop before this step ("+strings.Join(clone.Steps, ", ")+")")
			keep := fs.Bool("data-keep", false, "stop before writing when the table differs and the layout preserves a partition (clonecd.data=keep)")
			version := fs.String("version", "", "version for /etc/clonecd-version (default: the media's CLONE_CD_VERSION)")
			nodes := fs.String("nodes", "", "identity table (MAC HOSTNAME [ADDR/PREFIX [GW]]) instead of the media's /nodes")
			mac := fs.String("mac", "", "MAC address(es), comma-separated, to look up in the nodes table (default: none)")
			server := fs.String("server", "", "image server URL for the node's ramclone boot entry (default: the media's clonecd.conf)")
			noTune := fs.Bool("no-tune", false, "do not change the disk's queue settings")
			quiet := fs.Bool("q", false, "print only errors")
			return func(args []string) error {
				if len(args) > 0 {
					return UsageError("unexpected arguments %q", args)
				}
				mediaDev := ""
				if *netURL != "" {
					if *media != "" {
						return UsageError("--media and --net exclude each other")
					}
					if *target == "" || *host == "" {
						return UsageError("--net needs --target and --hostname (the node's name on the server)")
					}
				} else if *media == "" {
					// in the clone CD's rescue shell: the mounted media
					*media, mediaDev = mountedMedia()
					if *media == "" {
						return UsageError("--media is required (no mounted clone media found)")
					}
					fmt.Fprintf(Stderr, "clonecd clone: media %s (%s)\n", *media, mediaDev)
				} else if *target == "" {
					return UsageError("--target is required with --media")
				}
				if *netURL == "" {
					if st, err := os.Stat(*media); err != nil || !st.IsDir() {
						return UsageError("--media %s: not a directory", *media)
					}
				}
				cfg := clone.Config{
					Target: *target, Hostname: *host, Break: *brk,
					DataKeep: *keep, Version: *version, Server: *server, NoTune: *noTune, MACs: []string{},
					MediaDev: mediaDev,
				}
				if mediaDev != "" { // on the node itself: its NICs name it
					cfg.MACs = nil
				}
				if *mac != "" {
					cfg.MACs = strings.Split(*mac, ",")
				}
				if *nodes != "" {
					f, err := os.Open(*nodes)
					if err != nil {
						return err
					}
					defer f.Close()
					cfg.Nodes = f
				}
				if !*quiet {
					cfg.Log = Stderr
				}
				ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
				defer stop()
				if *netURL != "" {
					done, err := netMedia(ctx, &cfg, strings.TrimRight(*netURL, "/"))
					if err != nil {
						return err
					}
					defer done()
				} else {
					cfg.Media = os.DirFS(*media)
				}
				err := clone.Run(ctx, cfg)
				if errors.Is(err, clone.ErrBreak) {
					fmt.Fprintf(Stderr, "clonecd clone: %v\n", err)
					return &ExitError{Code: 3}
				}
				return err
			}
		},
	})
}

// netMedia points cfg at the server's media (netclone.Media) with a
// netclone.Reporter for node cfg.Hostname, as the network cloner does; the
// run's log is kept in a temporary file that the reporter uploads. done
// removes it.
func netMedia(ctx context.Context, cfg *clone.Config, server string) (done func(), err error) {
	logf := func(format string, a ...any) {
		if cfg.Log != nil {
			fmt.Fprintf(cfg.Log, format+"\n", a...)
		}
	}
	m, err := netclone.NewMedia(ctx, server, netclone.MediaOptions{Node: cfg.Hostname, Logf: logf})
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
	rep.Version, rep.LogFile, rep.Logf = m.Version, f.Name(), logf
	logf("clonecd: server %s serves version %s; reporting as node %s", server, m.Version, cfg.Hostname)
	if err := rep.Begin(); err != nil {
		logf("clonecd: report to %s: %v", server, err)
	}
	cfg.Media, cfg.Reporter = m, rep
	return func() { f.Close(); os.Remove(f.Name()) }, nil
}

// mountedMedia finds mounted clone media (the CD in the rescue shell).
func mountedMedia() (dir, dev string) {
	b, err := os.ReadFile("/proc/mounts")
	if err != nil {
		return "", ""
	}
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) < 3 || f[1] == "/" || !strings.HasPrefix(f[0], "/dev/") {
			continue
		}
		if bootenv.IsMedia(f[1]) {
			return f[1], f[0]
		}
	}
	return "", ""
}
