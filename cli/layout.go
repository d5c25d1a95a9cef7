package cli

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/clonecd/clonecd/partition"
)

// layoutCmd groups the commands on partition tables and layout files.
func layoutCmd(out Output) *cobra.Command {
	c := &cobra.Command{
		Use:   "layout COMMAND [flags]",
		Short: "partition tables: dump, capture, check and apply layout files (sfdisk dumps)",
		Long: `A layout file is an sfdisk dump (sfdisk -d) with "# clonecd:" lines that say
what sfdisk has no field for: file system, mount point, label, mkfs options
and the partition to preserve (/data). Real sfdisk takes the file unchanged.`,
		Example: `  clonecd layout capture /dev/sda > node.sfdisk
  clonecd layout check node.sfdisk /dev/sda
  clonecd layout apply --dry-run node.sfdisk /dev/sdb`,
		Args:        subcommandArgs,
		RunE:        needsSubcommand,
		Annotations: map[string]string{onlyGroups: "yes"},
	}
	c.AddCommand(layoutDumpCmd(out), layoutCaptureCmd(out), layoutCheckCmd(out), layoutApplyCmd(out))
	return c
}

func layoutDumpCmd(out Output) *cobra.Command {
	return &cobra.Command{
		Use:   "dump [flags] DEVICE|IMAGEFILE",
		Short: "print a disk's partition table exactly as sfdisk -d does",
		Long: `The output is byte-identical to util-linux 2.38's sfdisk -d and is a valid
layout file.`,
		Example: `  clonecd layout dump /dev/sda > node.sfdisk
  clonecd layout dump disk.img`,
		Args: exactArgs(1, "DEVICE|IMAGEFILE"),
		RunE: func(c *cobra.Command, args []string) error { return runLayoutDump(c.Context(), out, args) },
	}
}

func runLayoutDump(_ context.Context, out Output, args []string) error {
	return out.printLayout(partition.Dump(args[0]))
}

// printLayout writes the layout l to standard output, or returns err.
func (out Output) printLayout(l *partition.Layout, err error) error {
	if err != nil {
		return err
	}
	_, err = l.WriteTo(out.Stdout)
	return err
}

type layoutCaptureFlags struct {
	root string
}

func layoutCaptureCmd(out Output) *cobra.Command {
	f := &layoutCaptureFlags{}
	c := &cobra.Command{
		Use:   "capture [flags] DEVICE",
		Short: "write a layout file from a running golden node's disk",
		Long: `Dumps DEVICE's table, probes each partition's filesystem (type, label) from
its superblock and takes mount points from the node's /etc/fstab (entries by
UUID=, LABEL=, PARTUUID= or device name). The partition mounted at /data is
marked preserved.`,
		Example: `  clonecd layout capture /dev/sda > node.sfdisk
  clonecd layout capture --root /mnt/golden disk.img`,
		Args: exactArgs(1, "DEVICE"),
		RunE: func(c *cobra.Command, args []string) error { return runLayoutCapture(c.Context(), out, f, args) },
	}
	c.Flags().StringVar(&f.root, "root", "/", "root `DIR` of the node whose /etc/fstab gives the mount points")
	return c
}

func runLayoutCapture(_ context.Context, out Output, f *layoutCaptureFlags, args []string) error {
	return out.printLayout(partition.Capture(args[0], f.root))
}

type layoutCheckFlags struct {
	json bool
}

func layoutCheckCmd(out Output) *cobra.Command {
	f := &layoutCheckFlags{}
	c := &cobra.Command{
		Use:   "check [flags] LAYOUT DEVICE|IMAGEFILE",
		Short: "decide whether a disk's /data can be preserved (exit 0) or not (exit 1)",
		Long: `Compares the disk's table with the layout fitted to the disk (label,
partitions, types, starts, sizes), then checks every preserved partition
(by default the one mounted at /data): a superblock of the expected type and
a read-only fsck. Prints "preserve /data" or "repartition: REASON". Writes
nothing.

Exit status: 0 preserve, 1 repartition, 2 error (LAYOUT or the disk
unreadable): a script that repartitions on 1 never does so on an error.`,
		Example: `  clonecd layout check node.sfdisk /dev/sda && echo keeping /data
  clonecd layout check --json node.sfdisk disk.img | jq .preserve`,
		Args: exactArgs(2, "LAYOUT and DEVICE|IMAGEFILE"),
		RunE: func(c *cobra.Command, args []string) error { return runLayoutCheck(c.Context(), out, f, args) },
	}
	c.Flags().BoolVar(&f.json, "json", false, "print the decision as JSON")
	return c
}

// layoutDecision is layout check --json's output.
type layoutDecision struct {
	Layout   string   `json:"layout"`
	Disk     string   `json:"disk"`
	Preserve bool     `json:"preserve"`
	Reason   string   `json:"reason,omitempty"`
	Keep     []int    `json:"keep"`
	Mounts   []string `json:"mounts"`
}

func runLayoutCheck(_ context.Context, out Output, f *layoutCheckFlags, args []string) error {
	l, err := partition.ReadLayoutFile(args[0])
	if err != nil {
		return err
	}
	dec, err := partition.Check(l, args[1])
	if err != nil {
		return err
	}
	if f.json {
		err = writeJSON(out, layoutDecision{Layout: args[0], Disk: args[1], Preserve: dec.Preserve,
			Reason: dec.Reason, Keep: nonNil(dec.Keep), Mounts: nonNil(dec.Mounts)})
	} else {
		_, err = fmt.Fprintln(out.Stdout, dec.String())
	}
	if err != nil {
		return err
	}
	if !dec.Preserve {
		return &ExitError{Code: exitNo}
	}
	return nil
}

// nonNil makes a nil slice encode as [] in JSON.
func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

type layoutApplyFlags struct {
	dryRun, force, allowEmpty bool
}

func layoutApplyCmd(out Output) *cobra.Command {
	f := &layoutApplyFlags{}
	c := &cobra.Command{
		Use:   "apply [flags] LAYOUT DEVICE|IMAGEFILE",
		Short: "write the partition table of a layout file to a disk",
		Long: `The layout is fitted to the disk first (a partition without size takes the
rest; grow=yes partitions share free space); a layout that does not fit is
refused, saying by how many MiB, before anything is written. For a block
device the kernel is made to re-read the table. --dry-run prints the
partitions that would be written and writes nothing; ids the layout does
not give (label-id, partition uuids) are chosen at write time and left out
of the dry run.

A disk that is in use (a partition mounted, active swap, held by md, LVM
or device-mapper, or an image file attached to a loop device that is) is
refused before anything is written, as sfdisk does; --force writes anyway.
A layout with a label but no partitions would delete every partition: it
is refused unless --allow-empty.`,
		Example: `  clonecd layout apply node.sfdisk /dev/sda
  clonecd layout apply --dry-run node.sfdisk /dev/sdb
  clonecd layout apply --force node.sfdisk /dev/sdc   # even though /dev/sdc2 is mounted`,
		Args: exactArgs(2, "LAYOUT and DEVICE|IMAGEFILE"),
		RunE: func(c *cobra.Command, args []string) error { return runLayoutApply(c.Context(), out, f, args) },
	}
	c.Flags().BoolVarP(&f.dryRun, "dry-run", "n", false, "print what would be written, write nothing")
	c.Flags().BoolVar(&f.force, "force", false, "write even when the disk is in use (mounted, swap, held)")
	c.Flags().BoolVar(&f.allowEmpty, "allow-empty", false, "let a layout without partitions delete every partition")
	return c
}

func runLayoutApply(_ context.Context, out Output, f *layoutApplyFlags, args []string) error {
	l, err := partition.ReadLayoutFile(args[0])
	if err != nil {
		return err
	}
	w, err := partition.Apply(l, args[1], partition.ApplyOptions{
		DryRun: f.dryRun, Force: f.force, AllowEmpty: f.allowEmpty,
		Warn: func(err error) { fmt.Fprintf(out.Stderr, "warning: %v\n", err) },
	})
	if err != nil {
		return err
	}
	if f.dryRun {
		fmt.Fprintf(out.Stdout, "# dry run: would write this table to %s (nothing written; ids not in the layout are chosen at write time)\n", args[1])
		return out.printLayout(w, nil)
	}
	fmt.Fprintf(out.Stderr, "wrote %s table with %d partitions to %s\n", w.Label, len(w.Parts), args[1])
	return nil
}
