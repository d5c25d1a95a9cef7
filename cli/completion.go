package cli

import (
	"context"

	"github.com/spf13/cobra"
)

func completionCmd(out Output) *cobra.Command {
	return &cobra.Command{
		Use:   "completion [flags] bash|zsh|fish",
		Short: "print the shell completion script for bash, zsh or fish",
		Long: `Prints a script that completes clonecd's commands, flags and the values of
flags with a fixed set (--format, --break, --firmware, ...) in the shell.
Load it once in the current shell, or install it where the shell loads
completions from.`,
		Example: `  source <(clonecd completion bash)
  clonecd completion bash > /etc/bash_completion.d/clonecd
  clonecd completion zsh > "${fpath[1]}/_clonecd"
  clonecd completion fish > ~/.config/fish/completions/clonecd.fish`,
		ValidArgs: []string{"bash", "zsh", "fish"},
		Args: func(c *cobra.Command, args []string) error {
			if err := exactArgs(1, "one shell: bash, zsh or fish")(c, args); err != nil {
				return err
			}
			if err := cobra.OnlyValidArgs(c, args); err != nil {
				return UsageError("%v", err)
			}
			return nil
		},
		RunE: func(c *cobra.Command, args []string) error { return runCompletion(c.Context(), out, c.Root(), args) },
	}
}

func runCompletion(_ context.Context, out Output, root *cobra.Command, args []string) error {
	switch args[0] {
	case "bash":
		return root.GenBashCompletionV2(out.Stdout, true)
	case "zsh":
		return root.GenZshCompletion(out.Stdout)
	default:
		return root.GenFishCompletion(out.Stdout, true)
	}
}
