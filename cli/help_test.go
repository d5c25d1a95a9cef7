package cli

import (
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"mvdan.cc/sh/v3/syntax"
)

// allCommands is every command of the tree below root, root first.
func allCommands(root *cobra.Command) []*cobra.Command {
	list := []*cobra.Command{root}
	for _, c := range root.Commands() {
		list = append(list, allCommands(c)...)
	}
	return list
}

func testRoot() *cobra.Command {
	return newRoot(Output{Stdin: strings.NewReader(""), Stdout: io.Discard, Stderr: io.Discard})
}

// TestEveryCommandHasHelp runs `clonecd CMD --help` for every command: it
// exits 0, prints to standard output only, shows the usage line, the
// long help and at least one example.
func TestEveryCommandHasHelp(t *testing.T) {
	t.Parallel()
	cmds := allCommands(testRoot())
	if len(cmds) < 25 {
		t.Fatalf("only %d commands in the tree", len(cmds))
	}
	for _, c := range cmds {
		if c.Name() == "help" {
			continue
		}
		path := strings.Fields(c.CommandPath())[1:]
		t.Run(strings.Join(append([]string{"clonecd"}, path...), "_"), func(t *testing.T) {
			t.Parallel()
			code, out, errs := runMain(t, append(path, "--help")...)
			if code != 0 || errs != "" {
				t.Fatalf("exit %d, stderr %q", code, errs)
			}
			if want := "Usage:\n  " + c.UseLine(); !strings.Contains(out, want) {
				t.Errorf("help lacks the usage line %q:\n%s", want, out)
			}
			if !strings.Contains(out, "Examples:\n  clonecd") && !strings.Contains(out, "Examples:\n  ") {
				t.Errorf("help of %q has no examples:\n%s", c.CommandPath(), out)
			}
			intro := c.Long
			if intro == "" {
				intro = c.Short
			}
			if !strings.HasPrefix(out, firstLine(intro)) {
				t.Errorf("help does not start with the description: %q", firstLine(out))
			}
		})
	}
}

// TestHelpExamplesParse parses every example in every command's help as
// the shell would and runs each clonecd command line in it through the
// real command tree: the command exists, every flag exists and takes the
// value given, the arguments are the ones the command wants, and no
// pattern is left for the shell to expand.
func TestHelpExamplesParse(t *testing.T) {
	t.Parallel()
	n := 0
	for _, c := range allCommands(testRoot()) {
		if c.Example == "" {
			continue
		}
		lines, err := exampleCommands(c.Example)
		if err != nil {
			t.Errorf("%s: examples: %v", c.CommandPath(), err)
			continue
		}
		for _, args := range lines {
			n++
			if err := checkCommandLine(args); err != nil {
				t.Errorf("%s: example `clonecd %s`: %v", c.CommandPath(), strings.Join(args, " "), err)
			}
		}
	}
	if n < 60 {
		t.Errorf("only %d example command lines found", n)
	}
}

// TestExampleChecker: the checker of TestHelpExamplesParse refuses the
// mistakes the review found in the old help texts.
func TestExampleChecker(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct{ example, err string }{
		{`clonecd rollback --reason x; clonecd reclone-all`, "want FIRST LAST"},
		{`clonecd pack --exclude /home/*** -o node.cpio.gz /`, "unquoted"},
		{`clonecd pack -j 0 -o node.cpio.gz /`, "want 1-256"},
		{`clonecd pack --level=0 /`, "want 1-19"},
		{`clonecd pack -o`, "needs an argument"},
		{`clonecd frobnicate`, "unknown command"},
		{`ssh s001 clonecd verify --bogus a b`, "unknown flag"},
		{`git tag $(clonecd version show --tga)`, "unknown flag"},
		{`clonecd publish --version 1.x node.cpio.gz`, "MAJOR.MINOR"},
		{`clonecd prune --dry-run`, "required flag"},
		{`clonecd status --server garbage`, "URL"},
		{`clonecd layout`, "needs a sub-command"},
		{`clonecd clone --media m --target t --break bogus`, "want one of"},
	} {
		lines, err := exampleCommands(tt.example)
		if err == nil {
			for _, args := range lines {
				if err = checkCommandLine(args); err != nil {
					break
				}
			}
		}
		if err == nil || !strings.Contains(err.Error(), tt.err) {
			t.Errorf("example %q: %v; want an error with %q", tt.example, err, tt.err)
		}
	}
}

// exampleCommands returns the arguments of every clonecd command line in
// a shell snippet, also inside pipes, $(...) and after ssh HOST. A word
// the shell would expand ($VAR, $(...)) stands as "X"; an unquoted glob
// is an error.
func exampleCommands(src string) ([][]string, error) {
	f, err := syntax.NewParser().Parse(strings.NewReader(src), "")
	if err != nil {
		return nil, err
	}
	var out [][]string
	syntax.Walk(f, func(n syntax.Node) bool {
		call, ok := n.(*syntax.CallExpr)
		if !ok || err != nil {
			return err == nil
		}
		var words []string
		for _, w := range call.Args {
			s, werr := wordValue(w)
			if werr != nil {
				err = werr
				return false
			}
			words = append(words, s)
		}
		for i, w := range words {
			if w == "clonecd" {
				out = append(out, words[i+1:])
				break
			}
		}
		return true
	})
	return out, err
}

func wordValue(w *syntax.Word) (string, error) {
	var b strings.Builder
	for _, p := range w.Parts {
		switch p := p.(type) {
		case *syntax.Lit:
			if strings.ContainsAny(p.Value, "*?[") {
				return "", fmt.Errorf("unquoted pattern %q: the shell expands it", p.Value)
			}
			b.WriteString(p.Value)
		case *syntax.SglQuoted:
			b.WriteString(p.Value)
		case *syntax.DblQuoted:
			for _, q := range p.Parts {
				if l, ok := q.(*syntax.Lit); ok {
					b.WriteString(l.Value)
				} else {
					b.WriteString("X")
				}
			}
		default:
			b.WriteString("X")
		}
	}
	return b.String(), nil
}

// checkCommandLine parses clonecd's arguments with a fresh command tree as
// Run would, without running the command.
func checkCommandLine(args []string) error {
	root := testRoot()
	cmd, rest, err := root.Find(args)
	if err != nil {
		return err
	}
	cmd.InitDefaultHelpFlag()
	if err := cmd.ParseFlags(rest); err != nil {
		return err
	}
	if help, _ := cmd.Flags().GetBool("help"); help {
		return nil
	}
	if !cmd.Runnable() {
		return fmt.Errorf("%s cannot run", cmd.CommandPath())
	}
	if err := cmd.ValidateArgs(cmd.Flags().Args()); err != nil {
		return err
	}
	if err := cmd.ValidateRequiredFlags(); err != nil {
		return err
	}
	if cmd.Annotations[onlyGroups] != "" {
		return needsSubcommand(cmd, nil) // layout without its sub-command
	}
	return cmd.ValidateFlagGroups()
}
