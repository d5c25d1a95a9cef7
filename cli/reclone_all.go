package cli

import (
	"context"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/clonecd/clonecd/fleet"
)

type recloneAllFlags struct {
	recloneFlags
	pattern string
}

func recloneAllCmd(out Output) *cobra.Command {
	f := &recloneAllFlags{}
	c := &cobra.Command{
		Use:   "reclone-all [flags] FIRST LAST",
		Short: "reclone nodes FIRST..LAST over the network (Medusa's reclone_all.bash)",
		Long: recloneHelp + `

FIRST and LAST are numbers put through --pattern (s%03d: 1 64 means
s001..s064).`,
		Example: `  clonecd reclone-all --server https://master:8443 1 64
  clonecd reclone-all --pattern node%02d --parallel 4 --delay 10s 1 16
  clonecd reclone-all --skip-current 1 64
  clonecd reclone-all --json 1 64 > results.json`,
		Args: exactArgs(2, "FIRST LAST"),
		RunE: func(c *cobra.Command, args []string) error { return runRecloneAll(c.Context(), out, f, args) },
	}
	f.define(c.Flags())
	c.Flags().StringVar(&f.pattern, "pattern", "s%03d", "node name `PATTERN` with one %d")
	return c
}

func runRecloneAll(ctx context.Context, out Output, f *recloneAllFlags, args []string) error {
	nodes, err := patternNodes(f.pattern, args)
	if err != nil {
		return err
	}
	return reclone(ctx, out, &f.recloneFlags, nodes)
}

// patternNodes are the nodes FIRST..LAST (args) put through pattern
// (reclone-all, sync-all), each name checked.
func patternNodes(pattern string, args []string) ([]string, error) {
	first, err1 := strconv.Atoi(args[0])
	last, err2 := strconv.Atoi(args[1])
	if err1 != nil || err2 != nil {
		return nil, UsageError("FIRST and LAST must be numbers, got %q %q", args[0], args[1])
	}
	nodes, err := fleet.PatternNodes(pattern, first, last)
	if err != nil {
		return nil, UsageError("%v", err)
	}
	for _, n := range nodes {
		if err := checkNodeName(n); err != nil {
			return nil, UsageError("--pattern: %v", err)
		}
	}
	return nodes, nil
}
