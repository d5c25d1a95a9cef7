package cli

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/clonecd/clonecd/versions"
)

type promoteFlags struct {
	dir   string
	force bool
}

func promoteCmd(out Output) *cobra.Command {
	f := &promoteFlags{}
	c := &cobra.Command{
		Use:   "promote [flags] V",
		Short: "make version V of the image store current",
		Long: `Makes V current: clonecd serve and reclone-all use it from now on. A
version marked bad (by rollback) is refused unless --force, which clears
the mark.`,
		Example: `  clonecd promote 1.20
  clonecd promote --force 1.19`,
		Args: exactArgs(1, "one version"),
		RunE: func(c *cobra.Command, args []string) error { return runPromote(c.Context(), out, f, args) },
	}
	storeFlag(c.Flags(), &f.dir)
	c.Flags().BoolVar(&f.force, "force", false, "promote a version marked bad and clear the mark")
	return c
}

func runPromote(_ context.Context, out Output, f *promoteFlags, args []string) error {
	v, err := parseVersion(args[0])
	if err != nil {
		return UsageError("%v", err)
	}
	s, err := versions.Open(f.dir)
	if err != nil {
		return err
	}
	e, err := s.Promote(v.String(), f.force)
	if err != nil {
		return err
	}
	fmt.Fprintf(out.Stdout, "current version is now %s\n", e.Version)
	return nil
}
