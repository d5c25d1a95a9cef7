package cli

import (
	"flag"
	"fmt"

	"github.com/clonecd/clonecd/image"
	"github.com/clonecd/clonecd/progress"
)

func init() {
	Register(&Command{
		Name:    "verify",
		Args:    "[flags] IMAGE DIR",
		Summary: "compare a node's tree with node.cpio.gz (\"slave testing\")",
		Help: `Compares DIR with IMAGE: type, mode, owner, size, content (sha256
of the archive's data and of the file), symlink target, device numbers,
hardlink groups and xattrs, and files in DIR that the image does not hold
(not descending into other filesystems; the runtime trees pack leaves out
are not reported). Every difference is listed; the exit status is 0 only
when there is none. Differences in files that a clone personalises
(hostname, machine-id, ssh host keys, fstab, hosts, network setup, GRUB)
are listed apart and are not failures.

Examples:
  clonecd verify node.cpio.gz /
  clonecd verify --no-extra /media/cdrom/node.cpio.gz /mnt/node
  clonecd verify --ignore '/var/log/***' --ignore '/var/lib/systemd/***' node.cpio.gz /`,
		Setup: func(fs *flag.FlagSet) Runner {
			quiet := fs.Bool("q", false, "quiet: print only differences")
			noExtra := fs.Bool("no-extra", false, "do not look for files the image does not hold")
			noX := fs.Bool("no-xattrs", false, "do not compare extended attributes")
			var skip listFlag
			fs.Var(&skip, "ignore", "do not compare paths matching `PATTERN` (repeatable; e.g. '/var/log/***' on a live node)")
			return func(args []string) error {
				if len(args) != 2 {
					return UsageError("verify needs IMAGE and DIR (try clonecd verify --help)")
				}
				img, dir := args[0], args[1]
				in, total, err := openImage(img)
				if err != nil {
					return err
				}
				defer in.Close()
				// The meter counts compressed bytes read, for a true ETA.
				meter := progress.New(Stderr, "verify", total, *quiet)
				rep, err := image.Verify(meter.Reader(in), dir, image.VerifyOptions{NoExtra: *noExtra, NoXattrs: *noX, Skip: skip,
					Progress: image.ItemsOnly(meter)})
				meter.Done()
				if err != nil {
					return err
				}
				image.FormatReport(Stdout, rep)
				if !rep.OK() {
					n, word := len(rep.Differences), "differences"
					if n == 1 {
						word = "difference"
					}
					return &ExitError{Code: 1, Err: fmt.Errorf("%s differs from %s: %d %s", dir, img, n, word)}
				}
				if !*quiet {
					fmt.Fprintf(Stdout, "%s matches %s: %d entries, %d files, %s of data checked; %d identity differences\n",
						dir, img, rep.Stats.Entries, rep.Stats.Files, progress.Bytes(rep.Stats.Bytes), len(rep.Identity))
				}
				return nil
			}
		},
	})
}
