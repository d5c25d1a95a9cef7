package cli

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/clonecd/clonecd/progress"
	"github.com/clonecd/clonecd/versions"
)

type pruneFlags struct {
	dir          string
	keep         int
	dryRun, json bool
}

func pruneCmd(out Output) *cobra.Command {
	f := &pruneFlags{}
	c := &cobra.Command{
		Use:   "prune [flags] --keep N",
		Short: "delete the oldest versions of the image store, keeping N",
		Long: `The only command that deletes images. Keeps the current version (it
counts towards N), versions pinned for a node's next clone (canaries) and
the newest others up to N in total.`,
		Example: `  clonecd prune --keep 3
  clonecd prune --keep 3 --dry-run
  clonecd prune --keep 3 -n --json | jq -r '.[].version'`,
		Args: noArgs,
		RunE: func(c *cobra.Command, args []string) error { return runPrune(c.Context(), out, f, args) },
	}
	fl := c.Flags()
	storeFlag(fl, &f.dir)
	intVarP(fl, &f.keep, "keep", "", 0, 1, 1<<20, "number of versions to keep, at least 1 (required)")
	fl.BoolVarP(&f.dryRun, "dry-run", "n", false, "only say what would be deleted")
	fl.BoolVar(&f.json, "json", false, "print the versions deleted (or that would be) as JSON")
	c.MarkFlagRequired("keep")
	return c
}

func runPrune(_ context.Context, out Output, f *pruneFlags, _ []string) error {
	s, err := versions.Open(f.dir)
	if err != nil {
		return err
	}
	var plan *versions.PrunePlan
	verb := "deleted"
	if f.dryRun {
		verb = "would delete"
		plan, err = s.PlanPrune(f.keep)
	} else {
		plan, err = s.Prune(f.keep)
	}
	var list []versions.Entry
	if plan != nil {
		list = plan.Delete
	}
	if f.json && (err == nil || len(list) > 0) {
		if jerr := writeJSON(out, storeEntries(list)); err == nil {
			err = jerr
		}
		return err
	}
	for _, e := range list {
		fmt.Fprintf(out.Stdout, "%s %s (%s)\n", verb, e.Version, progress.Bytes(e.Size))
	}
	if plan != nil {
		for _, h := range plan.Held {
			fmt.Fprintf(out.Stdout, "kept %s: %s\n", h.Version, h.Why)
		}
	}
	if err == nil && len(list) == 0 {
		fmt.Fprintln(out.Stdout, "nothing to delete")
	}
	return err
}
