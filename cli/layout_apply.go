package cli

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/clonecd/clonecd/partition"
)

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
		_, err = w.WriteTo(out.Stdout)
		return err
	}
	fmt.Fprintf(out.Stderr, "wrote %s table with %d partitions to %s\n", w.Label, len(w.Parts), args[1])
	return nil
}
