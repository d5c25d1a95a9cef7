package cli

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/clonecd/clonecd/versions"
)

type rollbackFlags struct {
	dir, reason string
}

func rollbackCmd(out Output) *cobra.Command {
	f := &rollbackFlags{}
	c := &cobra.Command{
		Use:   "rollback [flags]",
		Short: "mark the current version bad and go back to the previous good one",
		Long: `The "last known good" image: marks the current version bad and makes
current the most recent version that was current before it and is not
bad (else the highest good version below it). Nothing changes when there
is none. Recloned nodes then get the good version.`,
		Example: `  clonecd rollback --reason "nfs mounts hang on 1.21"
  clonecd reclone-all 1 64`,
		Args: noArgs,
		RunE: func(c *cobra.Command, args []string) error { return runRollback(c.Context(), out, f, args) },
	}
	storeFlag(c.Flags(), &f.dir)
	c.Flags().StringVar(&f.reason, "reason", "", "why the current version is bad (shown by clonecd images)")
	return c
}

func runRollback(_ context.Context, out Output, f *rollbackFlags, _ []string) error {
	s, err := versions.Open(f.dir)
	if err != nil {
		return err
	}
	old, err := s.Current()
	if err != nil {
		return err
	}
	e, err := s.Rollback(f.reason)
	if err != nil {
		return err
	}
	fmt.Fprintf(out.Stdout, "marked %s bad; current version is now %s\n", old.Version, e.Version)
	return nil
}
