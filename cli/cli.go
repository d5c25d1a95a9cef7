package cli

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// Runner runs a command with the arguments left after its flags.
type Runner func(args []string) error

// Command is one subcommand. Name may hold a space ("layout dump") for a
// command with sub-commands.
type Command struct {
	Name    string
	Args    string // synopsis after the name, e.g. "[flags] ROOT"
	Summary string // one line
	Help    string // longer text with examples, printed by --help
	// Setup defines the command's flags on fs and returns its runner.
	Setup func(fs *flag.FlagSet) Runner
}

// ExitError ends the program with Code after printing Err (if any).
type ExitError struct {
	Code int
	Err  error
}

func (e *ExitError) Error() string {
	if e.Err == nil {
		return fmt.Sprintf("exit status %d", e.Code)
	}
	return e.Err.Error()
}

func (e *ExitError) Unwrap() error { return e.Err }

// UsageError marks an error in the command line (exit status 2).
func UsageError(format string, a ...any) error {
	return &ExitError{Code: 2, Err: fmt.Errorf(format, a...)}
}

var (
	commands  = map[string]*Command{}
	multicall = map[string]func(args []string) int{}
	// Stdout and Stderr are where commands print; tests may replace them.
	Stdout io.Writer = os.Stdout
	Stderr io.Writer = os.Stderr
)

// Register adds a command. It panics on a duplicate name.
func Register(c *Command) {
	if _, dup := commands[c.Name]; dup {
		panic("cli: duplicate command " + c.Name)
	}
	commands[c.Name] = c
}

// RegisterMulticall makes clonecd behave as fn when started under the
// program name name (argv[0]'s base name), e.g. "modprobe" or "init".
func RegisterMulticall(name string, fn func(args []string) int) {
	multicall[name] = fn
}

// Main runs clonecd with argv and returns the exit status.
func Main(argv []string) int {
	base := filepath.Base(argv[0])
	if fn, ok := multicall[base]; ok && base != "clonecd" {
		return fn(argv)
	}
	if os.Getpid() == 1 {
		if fn, ok := multicall["init"]; ok {
			return fn(argv)
		}
	}
	args := argv[1:]
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		if len(args) > 1 {
			args = []string{args[1], "--help"}
		} else {
			usage(Stdout)
			if len(args) == 0 {
				return 2
			}
			return 0
		}
	}
	if args[0] == "--version" {
		fmt.Fprintln(Stdout, "clonecd", Version)
		return 0
	}
	c, rest := lookup(args)
	if c == nil {
		if subs := subcommands(args[0]); len(subs) > 0 {
			fmt.Fprintf(Stderr, "clonecd %s: needs a sub-command: %s\n", args[0], strings.Join(subs, ", "))
		} else {
			fmt.Fprintf(Stderr, "clonecd: unknown command %q (try clonecd --help)\n", args[0])
		}
		return 2
	}
	return run(c, rest)
}

// Version is clonecd's own version, set with -ldflags at build time.
var Version = "dev"

func lookup(args []string) (*Command, []string) {
	if len(args) >= 2 {
		if c, ok := commands[args[0]+" "+args[1]]; ok {
			return c, args[2:]
		}
	}
	if c, ok := commands[args[0]]; ok {
		return c, args[1:]
	}
	return nil, nil
}

func subcommands(prefix string) []string {
	var out []string
	for name := range commands {
		if strings.HasPrefix(name, prefix+" ") {
			out = append(out, strings.TrimPrefix(name, prefix+" "))
		}
	}
	sort.Strings(out)
	return out
}

func run(c *Command, args []string) int {
	fs := flag.NewFlagSet("clonecd "+c.Name, flag.ContinueOnError)
	fs.SetOutput(Stderr)
	fs.Usage = func() {} // help goes to stdout on --help, a hint to stderr otherwise

	var runner Runner
	if c.Setup != nil {
		runner = c.Setup(fs)
	}
	if err := fs.Parse(interspersed(fs, args)); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			commandHelp(Stdout, c, fs)
			return 0
		}
		fmt.Fprintf(Stderr, "usage: clonecd %s %s (clonecd %s --help for more)\n", c.Name, c.Args, c.Name)
		return 2
	}
	if runner == nil {
		commandHelp(Stderr, c, fs)
		return 2
	}
	err := runner(fs.Args())
	if err == nil {
		return 0
	}
	var ee *ExitError
	if errors.As(err, &ee) {
		if ee.Err != nil {
			fmt.Fprintf(Stderr, "clonecd %s: %v\n", c.Name, ee.Err)
		}
		return ee.Code
	}
	fmt.Fprintf(Stderr, "clonecd %s: %v\n", c.Name, err)
	return 1
}

// interspersed lets flags follow positional arguments ("pack ROOT -o x"),
// as admins type them. "--" ends flag parsing.
func interspersed(fs *flag.FlagSet, args []string) []string {
	var flags, pos []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			pos = append(pos, args[i+1:]...)
			break
		}
		if len(a) > 1 && a[0] == '-' {
			flags = append(flags, a)
			name := strings.TrimLeft(a, "-")
			if strings.Contains(name, "=") {
				continue
			}
			if f := fs.Lookup(name); f != nil {
				if bf, ok := f.Value.(interface{ IsBoolFlag() bool }); ok && bf.IsBoolFlag() {
					continue
				}
				if i+1 < len(args) {
					i++
					flags = append(flags, args[i])
				}
			}
			continue
		}
		pos = append(pos, a)
	}
	return append(append(flags, "--"), pos...)
}

func commandHelp(w io.Writer, c *Command, fs *flag.FlagSet) {
	fmt.Fprintf(w, "usage: clonecd %s %s\n\n%s\n", c.Name, c.Args, c.Summary)
	if c.Help != "" {
		fmt.Fprintf(w, "\n%s\n", strings.TrimSpace(c.Help))
	}
	hasFlags := false
	fs.VisitAll(func(*flag.Flag) { hasFlags = true })
	if hasFlags {
		fmt.Fprintf(w, "\nflags:\n")
		out := fs.Output()
		fs.SetOutput(w)
		fs.PrintDefaults()
		fs.SetOutput(out)
	}
}

func usage(w io.Writer) {
	fmt.Fprintf(w, "clonecd %s: clone a golden node onto many (pack, build a clone CD, clone, reclone)\n\nusage: clonecd COMMAND [flags] [args]\n\ncommands:\n", Version)
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-18s %s\n", n, commands[n].Summary)
	}
	fmt.Fprintf(w, "\nclonecd COMMAND --help shows a command's flags and examples.\n")
}
