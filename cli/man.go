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
