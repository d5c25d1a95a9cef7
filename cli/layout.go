package cli

import (
	"flag"
	"fmt"

	"github.com/clonecd/clonecd/partition"
)

func init() {
	Register(&Command{
		Name:    "layout dump",
		Args:    "DEVICE|IMAGEFILE",
		Summary: "print a disk's partition table exactly as `sfdisk -d` does",
		Help: `The output is byte-identical to util-linux 2.38's sfdisk -d and is a valid
layout file.

examples:
  clonecd layout dump /dev/sda > node.sfdisk
  clonecd layout dump disk.img`,
		Setup: func(fs *flag.FlagSet) Runner {
			return func(args []string) error {
				if len(args) != 1 {
					return UsageError("needs DEVICE|IMAGEFILE")
				}
				l, err := partition.Dump(args[0])
				if err != nil {
					return err
				}
				_, err = l.WriteTo(Stdout)
				return err
			}
		},
	})
	Register(&Command{
		Name:    "layout apply",
		Args:    "[--dry-run] LAYOUT DEVICE|IMAGEFILE",
		Summary: "write the partition table of a layout file to a disk",
		Help: `The layout is fitted to the disk first (a partition without size takes the
rest; grow=yes partitions share free space); a layout that does not fit is
refused, saying by how many MiB, before anything is written. For a block
device the kernel is made to re-read the table. --dry-run prints the table
that would be written and writes nothing.

examples:
  clonecd layout apply node.sfdisk /dev/sda
  clonecd layout apply --dry-run node.sfdisk /dev/sdb`,
		Setup: func(fs *flag.FlagSet) Runner {
			dry := fs.Bool("dry-run", false, "print what would be written, write nothing")
			return func(args []string) error {
				if len(args) != 2 {
					return UsageError("needs LAYOUT and DEVICE|IMAGEFILE")
				}
				l, err := partition.ReadLayoutFile(args[0])
				if err != nil {
					return err
				}
				w, err := partition.Apply(l, args[1], partition.ApplyOptions{DryRun: *dry})
				if err != nil {
					return err
				}
				if *dry {
					fmt.Fprintf(Stdout, "# dry run: would write this table to %s (nothing written)\n", args[1])
					_, err = w.WriteTo(Stdout)
					return err
				}
				fmt.Fprintf(Stderr, "wrote %s table with %d partitions to %s\n", w.Label, len(w.Parts), args[1])
				return nil
			}
		},
	})
	Register(&Command{
		Name:    "layout check",
		Args:    "LAYOUT DEVICE|IMAGEFILE",
		Summary: "decide whether a disk's /data can be preserved (exit 0) or not (exit 1)",
		Help: `Compares the disk's table with the layout fitted to the disk (label,
partitions, types, starts, sizes), then checks every preserved partition
(by default the one mounted at /data): a superblock of the expected type and
a read-only fsck. Prints "preserve /data" or "repartition: REASON". Writes
nothing.

examples:
  clonecd layout check node.sfdisk /dev/sda && echo keeping /data`,
		Setup: func(fs *flag.FlagSet) Runner {
			return func(args []string) error {
				if len(args) != 2 {
					return UsageError("needs LAYOUT and DEVICE|IMAGEFILE")
				}
				l, err := partition.ReadLayoutFile(args[0])
				if err != nil {
					return err
				}
				dec, err := partition.Check(l, args[1])
				if err != nil {
					return err
				}
				fmt.Fprintln(Stdout, dec.String())
				if !dec.Preserve {
					return &ExitError{Code: 1}
				}
				return nil
			}
		},
	})
	Register(&Command{
		Name:    "layout capture",
		Args:    "[--root DIR] DEVICE",
		Summary: "write a layout file from a running golden node's disk",
		Help: `Dumps DEVICE's table, probes each partition's filesystem (type, label) from
its superblock and takes mount points from the node's /etc/fstab (entries by
UUID=, LABEL=, PARTUUID= or device name). The partition mounted at /data is
marked preserved.

examples:
  clonecd layout capture /dev/sda > node.sfdisk
  clonecd layout capture --root /mnt/golden disk.img`,
		Setup: func(fs *flag.FlagSet) Runner {
			root := fs.String("root", "/", "root of the node whose /etc/fstab gives the mount points")
			return func(args []string) error {
				if len(args) != 1 {
					return UsageError("needs DEVICE")
				}
				l, err := partition.Capture(args[0], *root)
				if err != nil {
					return err
				}
				_, err = l.WriteTo(Stdout)
				return err
			}
		},
	})
}
