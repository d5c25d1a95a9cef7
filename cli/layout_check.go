package cli

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/clonecd/clonecd/partition"
)

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
