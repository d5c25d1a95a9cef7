package cli

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/clonecd/clonecd/partition"
)

type layoutApplyFlags struct {
	dryRun bool
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
partitions that would be written and writes nothing; a layout without
label-id gets a new random one each run, so the dry run's label-id is not
the one a later apply writes.`,
		Example: `  clonecd layout apply node.sfdisk /dev/sda
  clonecd layout apply --dry-run node.sfdisk /dev/sdb`,
		Args: exactArgs(2, "LAYOUT and DEVICE|IMAGEFILE"),
		RunE: func(c *cobra.Command, args []string) error { return runLayoutApply(c.Context(), out, f, args) },
	}
	c.Flags().BoolVarP(&f.dryRun, "dry-run", "n", false, "print what would be written, write nothing")
	return c
}

func runLayoutApply(_ context.Context, out Output, f *layoutApplyFlags, args []string) error {
	l, err := partition.ReadLayoutFile(args[0])
	if err != nil {
		return err
	}
	w, err := partition.Apply(l, args[1], partition.ApplyOptions{DryRun: f.dryRun})
	if err != nil {
		return err
	}
	if f.dryRun {
		fmt.Fprintf(out.Stdout, "# dry run: would write this table to %s (nothing written)\n", args[1])
		_, err = w.WriteTo(out.Stdout)
		return err
	}
	fmt.Fprintf(out.Stderr, "wrote %s table with %d partitions to %s\n", w.Label, len(w.Parts), args[1])
	return nil
}
