package cli

import (
	"context"

	"github.com/spf13/cobra"

	"github.com/clonecd/clonecd/partition"
)

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
	l, err := partition.Dump(args[0])
	if err != nil {
		return err
	}
	_, err = l.WriteTo(out.Stdout)
	return err
}
