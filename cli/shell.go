package cli

import (
	"context"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/cobra/doc"
	"github.com/spf13/pflag"
)

// The commands of the shell group (commands): completion, man and help.

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

type manFlags struct {
	dir string
}

// manCmd writes the man pages, made from the same help texts (cobra/doc);
// hidden: packagers run it, admins read man clonecd.
func manCmd(out Output) *cobra.Command {
	f := &manFlags{}
	c := &cobra.Command{
		Use:     "man [flags] -o DIR",
		Short:   "write the man pages (clonecd.1, clonecd-pack.1, ...) into DIR",
		Example: "  clonecd man -o build/man && man -l build/man/clonecd.1",
		Hidden:  true,
		Args:    noArgs,
		RunE:    func(c *cobra.Command, args []string) error { return runMan(c.Context(), out, f, c.Root()) },
	}
	c.Flags().StringVarP(&f.dir, "output", "o", "", "`DIR` to write the pages into (created)")
	c.MarkFlagRequired("output")
	return c
}

func runMan(_ context.Context, out Output, f *manFlags, root *cobra.Command) error {
	if err := os.MkdirAll(f.dir, 0o755); err != nil {
		return err
	}
	// The help texts are plain text; cobra/doc reads them as markdown.
	var quote func(c *cobra.Command)
	quote = func(c *cobra.Command) {
		c.Long = manText(c.Long)
		plain := func(fl *pflag.Flag) {
			_, usage := pflag.UnquoteUsage(fl) // `FILE` marks the value's name for --help
			fl.Usage = escapeMarkdown(usage)
		}
		c.Flags().VisitAll(plain)
		c.PersistentFlags().VisitAll(plain)
		c.DisableAutoGenTag = true
		for _, sub := range c.Commands() {
			quote(sub)
		}
	}
	quote(root)
	hdr := &doc.GenManHeader{Section: "1", Source: "clonecd " + Version, Manual: "clonecd manual"}
	if err := doc.GenManTree(root, hdr, f.dir); err != nil {
		return err
	}
	fmt.Fprintf(out.Stderr, "clonecd man: wrote the pages into %s\n", f.dir)
	return nil
}

// manText turns a help text into markdown that reads the same: indented
// lines (lists, commands) stay as they are, in a block; the rest is
// escaped.
func manText(s string) string {
	var b strings.Builder
	inBlock := false
	for _, line := range strings.Split(s, "\n") {
		indented := strings.HasPrefix(line, " ")
		switch {
		case indented && !inBlock:
			b.WriteString("\n```\n")
		case !indented && inBlock:
			b.WriteString("```\n\n")
		}
		inBlock = indented
		if indented {
			b.WriteString(line + "\n")
		} else {
			b.WriteString(escapeMarkdown(line) + "\n")
		}
	}
	if inBlock {
		b.WriteString("```\n")
	}
	return b.String()
}

// escapeMarkdown backslash-escapes what markdown would read as markup.
func escapeMarkdown(s string) string {
	var b strings.Builder
	for _, r := range s {
		if strings.ContainsRune("\\`*_{}[]<>()#+-.!|~", r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

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
