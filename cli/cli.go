package cli

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/spf13/cobra"
)

// Output is where a command prints: results on Stdout, progress, events
// and errors on Stderr. Stdin is read for "-" inputs (unpack -, verify -).
type Output struct {
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
}

// Version is clonecd's own version, set with -ldflags at build time.
var Version = "dev"

// Exit statuses, one convention for every command.
const (
	exitOK    = 0 // done, or the answer is yes (same, preserve, current)
	exitNo    = 1 // the answer is no (differs, repartition), or some nodes failed
	exitErr   = 2 // error: bad usage, unreadable input, I/O, refused
	exitBreak = 3 // clone stopped at its --break step
)

// ExitError ends the program with Code after printing Err (if any).
type ExitError struct {
	Code  int
	Err   error
	usage bool // the command line is at fault: point at --help
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
	return &ExitError{Code: exitErr, Err: fmt.Errorf(format, a...), usage: true}
}

// Main runs clonecd with argv on the process's standard streams and
// returns the exit status.
func Main(argv []string) int {
	return Run(argv, Output{Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr})
}

// Run runs clonecd with argv, printing to out, and returns the exit
// status. As PID 1, or started under another program's name (argv[0]
// "init", "modprobe"), clonecd is that program.
func Run(argv []string, out Output) int {
	base := filepath.Base(argv[0])
	if fn := multicall(base); fn != nil && base != "clonecd" {
		return fn(argv, out)
	}
	if os.Getpid() == 1 {
		return multicall("init")(argv, out)
	}
	root := newRoot(out)
	root.SetArgs(argv[1:])
	cmd, err := root.ExecuteC()
	return exitStatus(cmd, err, out.Stderr)
}

// exitStatus prints err once, prefixed by the command it came from
// ("clonecd publish: ..."), and returns the exit status for it.
func exitStatus(cmd *cobra.Command, err error, stderr io.Writer) int {
	if err == nil {
		return exitOK
	}
	name := "clonecd"
	if cmd != nil {
		name = cmd.CommandPath()
	}
	var ee *ExitError
	if !errors.As(err, &ee) {
		// Not from a run function (they are wrapped by runtimeErrors):
		// cobra refused the command line (unknown flag, missing value,
		// required flag).
		ee = &ExitError{Code: exitErr, Err: err, usage: true}
	}
	if ee.Err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", name, ee.Err)
	}
	if ee.usage {
		fmt.Fprintf(stderr, "Run '%s --help' for usage.\n", name)
	}
	return ee.Code
}

// runtimeErrors makes every error a run function returns an *ExitError
// (status 2 unless it says otherwise), so exitStatus can tell them from
// cobra's own command-line errors.
func runtimeErrors(c *cobra.Command) {
	if run := c.RunE; run != nil {
		c.RunE = func(cmd *cobra.Command, args []string) error {
			err := run(cmd, args)
			var ee *ExitError
			if err == nil || errors.As(err, &ee) {
				return err
			}
			return &ExitError{Code: exitErr, Err: err}
		}
	}
	for _, sub := range c.Commands() {
		runtimeErrors(sub)
	}
}

// printable makes a string from elsewhere (a node's report, a server's
// reply) safe to print on a terminal: control characters, escape
// sequences included, are shown quoted (\x1b), never sent as they are;
// bytes that are not UTF-8 become U+FFFD.
func printable(s string) string {
	if utf8.ValidString(s) && !strings.ContainsFunc(s, unicode.IsControl) {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		if unicode.IsControl(r) {
			q := fmt.Sprintf("%+q", string(r))
			b.WriteString(q[1 : len(q)-1])
		} else {
			b.WriteRune(r)
		}
	}
	return b.String()
}

// short is a sha256's first 12 hex digits, as images and publish print it.
func short(sum string) string {
	if len(sum) > 12 {
		return sum[:12]
	}
	if sum == "" {
		return "-"
	}
	return sum
}
