package cli

import (
	"context"
	"strings"

	"github.com/spf13/cobra"
)

// helpCmd replaces cobra's help command, which prints "Unknown help
// topic" with exit status 0: here an unknown topic is a usage error.
func helpCmd(out Output) *cobra.Command {
	return &cobra.Command{
		Use:   "help [command]",
		Short: "show a command's help (as clonecd COMMAND --help)",
		Long: `Shows the help of a command or sub-command: what it does, its usage, its
examples and its flags. Without a command, clonecd's own.`,
		Example: `  clonecd help
  clonecd help layout apply`,
		ValidArgsFunction: func(c *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
			cmd, _, _ := c.Root().Find(args)
			var names []cobra.Completion
			for _, sub := range cmd.Commands() {
				if sub.IsAvailableCommand() && strings.HasPrefix(sub.Name(), toComplete) {
					names = append(names, cobra.CompletionWithDesc(sub.Name(), sub.Short))
				}
			}
			return names, cobra.ShellCompDirectiveNoFileComp
		},
		RunE: func(c *cobra.Command, args []string) error { return runHelp(c.Context(), out, c.Root(), args) },
	}
}

func runHelp(_ context.Context, out Output, root *cobra.Command, args []string) error {
	cmd, rest, err := root.Find(args)
	if err != nil || len(rest) > 0 {
		return UsageError("unknown help topic %q", strings.Join(args, " "))
	}
	cmd.SetOut(out.Stdout)
	return cmd.Help()
}
