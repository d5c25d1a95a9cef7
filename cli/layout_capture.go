package cli

import (
	"context"

	"github.com/spf13/cobra"

	"github.com/clonecd/clonecd/partition"
)

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
	l, err := partition.Capture(args[0], f.root)
	if err != nil {
		return err
	}
	_, err = l.WriteTo(out.Stdout)
	return err
}
