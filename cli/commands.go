package cli

import (
	"fmt"
	"strings"
	"sync"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// commandGroup is a heading of clonecd --help and its commands.
type commandGroup struct {
	id, title string
	cmds      []*cobra.Command
}

// commands lists every command, in the order an admin uses them: make
// the image, build the CD and clone, keep versions, reclone over the
// network. A command's constructor and its run function stand together
// (see doc.go).
func commands(out Output) []commandGroup {
	return []commandGroup{
		{"image", "Make the node image:", []*cobra.Command{
			packCmd(out), layoutCmd(out), kickstartCmd(out), verifyCmd(out), unpackCmd(out)}},
		{"cd", "Build the clone CD and clone:", []*cobra.Command{
			versionCmd(out), initramfsCmd(out), buildCmd(out), cloneCmd(out)}},
		{"store", "Keep versions in the image store:", []*cobra.Command{
			keyCmd(out), publishCmd(out), imagesCmd(out), promoteCmd(out), rollbackCmd(out), pruneCmd(out)}},
		{"net", "Reclone over the network:", []*cobra.Command{
			serveCmd(out), tokenCmd(out), recloneCmd(out), recloneAllCmd(out), statusCmd(out), ramcloneCmd(out), fetchCmd(out), cacheConfigCmd(out)}},
		{"sync", "Update running nodes in place:", []*cobra.Command{
			syncCmd(out), syncAllCmd(out)}},
		{"shell", "Shell completion and manual:", []*cobra.Command{
			completionCmd(out), manCmd(out), helpCmd(out)}},
	}
}

const rootHelp = `clonecd packs a golden node into node.cpio.gz, builds a bootable clone CD
(BIOS and UEFI, CD or USB stick) whose initramfs runs clonecd itself, clones
nodes from it headless, and reclones running nodes over the network.

Flags are GNU style: -o FILE or --output=FILE, short flags bundle (-qj4),
flags may follow arguments, and -- ends the flags.

Exit status, the same for every command:
  0  done, or the answer is yes (verify: same; layout check: preserve)
  1  the answer is no (verify: differs; layout check: repartition;
     kickstart --strict: warnings), or some nodes of reclone failed
  2  error: bad usage, unreadable input, I/O error, refused
  3  clone stopped at its --break step

With --json, standard output carries only JSON; progress and messages go
to standard error.`

var sortOnce sync.Once

// newRoot builds the command tree printing to out.
func newRoot(out Output) *cobra.Command {
	// List commands in the order of commands(), not sorted by name.
	sortOnce.Do(func() { cobra.EnableCommandSorting = false })
	root := &cobra.Command{
		Use:     "clonecd",
		Short:   "clone a golden node onto many: pack, build a clone CD, clone, reclone",
		Long:    rootHelp,
		Version: Version,
		Example: `  clonecd pack -o /data/node.cpio.gz /
  clonecd layout capture /dev/sda > node.sfdisk
  clonecd build --image node.cpio.gz --layout node.sfdisk --version 1.19 -o clonecd.iso
  clonecd pack --help`,
		Args: subcommandArgs,
		RunE: func(c *cobra.Command, args []string) error {
			fmt.Fprint(out.Stderr, c.UsageString()) // bare clonecd: usage is an error
			return &ExitError{Code: exitErr}
		},
		SuggestionsMinimumDistance: 2,
		SilenceErrors:              true,
		SilenceUsage:               true,
		CompletionOptions:          cobra.CompletionOptions{DisableDefaultCmd: true},
	}
	root.SetIn(out.Stdin)
	root.SetOut(out.Stdout)
	root.SetErr(out.Stderr)
	root.SetVersionTemplate("clonecd {{.Version}}\n")
	root.Flags().BoolP("version", "v", false, "print clonecd's own version (the image's version is clonecd version)")
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error {
		return &ExitError{Code: exitErr, Err: err, usage: true}
	})
	for _, g := range commands(out) {
		root.AddGroup(&cobra.Group{ID: g.id, Title: g.title})
		for _, c := range g.cmds {
			c.GroupID = g.id
			root.AddCommand(c)
		}
	}
	if help, _, err := root.Find([]string{"help"}); err == nil && help != root {
		root.SetHelpCommand(help)
	}
	runtimeErrors(root)
	completeValues(root)
	return root
}

// completeValues lets the shell complete the values of flags that have a
// fixed set (--format newc|crc, --break STEP, ...).
func completeValues(c *cobra.Command) {
	c.Flags().VisitAll(func(fl *pflag.Flag) {
		if v, ok := fl.Value.(*oneOfFlag); ok {
			c.RegisterFlagCompletionFunc(fl.Name, cobra.FixedCompletions(v.from, cobra.ShellCompDirectiveNoFileComp))
		}
	})
	for _, sub := range c.Commands() {
		completeValues(sub)
	}
}

// subcommandArgs refuses arguments that name no sub-command of c.
func subcommandArgs(c *cobra.Command, args []string) error {
	if len(args) == 0 {
		return nil
	}
	hint := ""
	if s := c.SuggestionsFor(args[0]); len(s) > 0 {
		hint = fmt.Sprintf(" (did you mean %s?)", strings.Join(s, " or "))
	}
	return UsageError("unknown command %q%s", args[0], hint)
}

// onlyGroups annotates a command that only groups others (layout): run
// without a sub-command it is a usage error (needsSubcommand).
const onlyGroups = "clonecd-only-groups"

// needsSubcommand is the run function of a command that only groups
// others (layout).
func needsSubcommand(c *cobra.Command, _ []string) error {
	var names []string
	for _, s := range c.Commands() {
		if s.IsAvailableCommand() {
			names = append(names, s.Name())
		}
	}
	return UsageError("needs a sub-command: %s", strings.Join(names, ", "))
}

// exactArgs wants n arguments, named by what (IMAGE and DIR).
func exactArgs(n int, what string) cobra.PositionalArgs {
	return func(c *cobra.Command, args []string) error {
		switch {
		case len(args) == n:
		case len(args) == 0:
			return UsageError("want %s", what)
		default:
			return UsageError("want %s, got %s", what, quoteArgs(args))
		}
		return nil
	}
}

// noArgs refuses arguments; inputs are flags.
func noArgs(c *cobra.Command, args []string) error {
	if len(args) > 0 {
		return UsageError("takes no arguments, got %s", quoteArgs(args))
	}
	return nil
}

func quoteArgs(args []string) string {
	q := make([]string, len(args))
	for i, a := range args {
		q[i] = fmt.Sprintf("%q", a)
	}
	return "[" + strings.Join(q, " ") + "]"
}
