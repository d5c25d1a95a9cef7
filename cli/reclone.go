package cli

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/clonecd/clonecd/netclone"
	"github.com/clonecd/clonecd/progress"
	"github.com/clonecd/clonecd/trust"
	"github.com/clonecd/clonecd/versions"
)

// recloneFlags are the flags reclone and reclone-all share.
type recloneFlags struct {
	server            urlFlag
	dir, rsh, command string
	version           versionFlag
	delay             autoDuration
	timeout, grace    time.Duration
	parallel          int
	skipCurrent, json bool
	force, noCred     bool
	access            accessFlags
}

func (f *recloneFlags) define(fs *pflag.FlagSet) {
	fs.Var(&f.server, "server", "clonecd serve `URL` to follow the nodes on (default $CLONECD_SERVER)")
	fs.StringVar(&f.dir, "dir", defaultStore(), "the server's image `DIR`, when no --server ($CLONECD_STORE)")
	fs.StringVar(&f.rsh, "rsh", netclone.DefaultRsh, "remote shell; the node name and the command follow")
	fs.StringVar(&f.command, "command", netclone.DefaultCommand, "command run on each node")
	f.delay = -1
	fs.Var(&f.delay, "delay", "pause between starts, or auto: one image's time on 1 GbE (printed)")
	intVarP(fs, &f.parallel, "parallel", "", 8, 1, 4096, "nodes in flight at most, 1-4096")
	durationVar(fs, &f.timeout, "timeout", 30*time.Minute, time.Second, "per node, from start to done")
	durationVar(fs, &f.grace, "grace", 2*time.Minute, 0, "a failed node that starts cloning again within this time is followed on")
	fs.BoolVar(&f.skipCurrent, "skip-current", false, "leave nodes already on the served version alone")
	fs.Var(&f.version, "version", "clone this version, MAJOR.MINOR, instead of the current one (canary)")
	fs.BoolVar(&f.force, "force", false, "clone --version even if it is marked bad")
	fs.BoolVar(&f.json, "json", false, "print the results as JSON instead of a table (messages go to standard error)")
	fs.BoolVar(&f.noCred, "no-credential", false, "do not send each node its credential (nodes whose clonecd has no ramclone --credential)")
	f.access.define(fs)
}

const recloneHelp = `For each node: over ssh (--rsh; batch mode, known hosts respected) run
"clonecd ramclone --reboot", so it boots the network cloner from its own
disk, then follow its state on the server (--server URL, or --dir DIR of
the server) until done or failed. Starts are staggered by --delay (default:
the time the image takes on a 1 GbE link, printed) and at most --parallel
nodes are in flight; a node that cannot be reached is reported, not
retried. --skip-current leaves nodes already on the served version alone;
--version V clones the given nodes to version V (a canary) instead of the
current one. On a terminal a line per node in flight and an overall bar
are redrawn; then a table: node, result, duration, version. What the
nodes reported is printed with control characters escaped.

` + accessHelp + ` reclone uses the admin's credential. With the store's
secret (--dir), it also sends each node its own credential on ssh's
standard input ("clonecd ramclone --reboot --credential -"), which the
node keeps for its cloner; --no-credential does not.

Exit status: 0 when every node is done (or skipped), 1 when some failed,
2 on an error before any node was started.`

func recloneCmd(out Output) *cobra.Command {
	f := &recloneFlags{}
	pxeMark := false
	c := &cobra.Command{
		Use:   "reclone [flags] NODE...",
		Short: "reclone nodes over the network (ssh, ramclone, follow)",
		Long: recloneHelp + `

NODE is a name or a nodeset: s001 's[001-064,070]'.

With --pxe nothing runs on the nodes: each is marked in --dir DIR so that
its next network boot from clonecd serve --pxe gets the cloner (a node
that cannot boot its ramclone entry: bare, or its disk broken). NODE is
then a name of the version's nodes table or a MAC (a new machine clonecd
status lists); --version V pins the version it clones. After its clone
the node reports done and its next network boot goes to its disk.`,
		Example: `  clonecd reclone --server https://master:8443 s001 s002
  clonecd reclone --version 1.20 --server https://master:8443 s001   # canary
  clonecd reclone --rsh "ssh -i /root/.ssh/clone_key -o BatchMode=yes" 's[001-004]'
  clonecd reclone --json s001 | jq -r '.[].result'
  clonecd reclone --pxe s001 52:54:00:12:34:56     # their next network boot (clonecd serve --pxe) clones them`,
		Args: func(c *cobra.Command, args []string) error {
			if len(args) == 0 {
				return UsageError("no nodes given")
			}
			if pxeMark {
				return nil // names or MACs: runReclonePXE checks them
			}
			return nodesetArgs(c, args)
		},
		RunE: func(c *cobra.Command, args []string) error {
			if pxeMark {
				return runReclonePXE(c, out, f, args)
			}
			return runReclone(c.Context(), out, f, args)
		},
	}
	f.define(c.Flags())
	c.Flags().BoolVar(&pxeMark, "pxe", false, "mark the nodes (names or MACs) for clonecd serve --pxe: their next network boot gets the cloner; no ssh")
	return c
}

func runReclone(ctx context.Context, out Output, f *recloneFlags, args []string) error {
	nodes, err := parseNodes(args)
	if err != nil {
		return err
	}
	return reclone(ctx, out, f, nodes)
}

// reclone reclones nodes and prints a table (or JSON) of the results.
func reclone(ctx context.Context, out Output, f *recloneFlags, nodes []string) error {
	rsh := strings.Fields(f.rsh)
	if len(rsh) == 0 {
		return UsageError("--rsh is empty")
	}
	src, err := stateSource(f.server, f.dir, &f.access)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	msgs := out.Stdout // human lines: with --json, standard error
	if f.json {
		msgs = out.Stderr
	}
	r := &netclone.Recloner{
		Source: src, Rsh: rsh, Command: f.command, Delay: time.Duration(f.delay), Parallel: f.parallel,
		Timeout: f.timeout, Grace: f.grace, SkipCurrent: f.skipCurrent, Version: string(f.version), Force: f.force, Out: msgs,
		Live: progress.IsTerminal(msgs),
	}
	if !f.noCred {
		if r.Credential, err = nodeCredentials(f.dir); err != nil {
			return err
		}
	}
	// The server and the version, checked once before any node is touched.
	vi, err := r.Check(ctx)
	if err != nil {
		return err
	}
	if r.Delay < 0 {
		size := vi.Size
		r.Delay = netclone.DefaultDelay(size)
		fmt.Fprintf(msgs, "--delay %s between starts (default: a %s image on a 1 GbE link)\n", r.Delay, progress.Bytes(size))
	}
	fmt.Fprintf(msgs, "recloning %d nodes, %s apart, at most %d in flight, following %s\n",
		len(nodes), r.Delay, f.parallel, src.Where())
	start := time.Now()
	results, err := r.Run(ctx, nodes)
	if err != nil {
		return err
	}
	if f.json {
		if err := writeJSON(out, results); err != nil {
			return err
		}
	} else {
		for i := range results {
			res := &results[i]
			res.Node, res.Result, res.Version, res.Error = printable(res.Node), printable(res.Result), printable(res.Version), printable(res.Error)
		}
		fmt.Fprintln(out.Stdout)
		netclone.WriteTable(out.Stdout, results)
		fmt.Fprintf(out.Stdout, "wall time %s\n", time.Since(start).Round(time.Second))
	}
	for _, res := range results {
		if !res.OK {
			return &ExitError{Code: exitNo}
		}
	}
	return nil
}

// nodeCredentials gives reclone each node's credential from the store's
// secret; nil when the store has none (a master that never served).
func nodeCredentials(dir string) (func(string) (trust.Credential, error), error) {
	s, err := versions.Open(dir)
	if err != nil {
		return nil, err
	}
	secret, err := s.ReadSecret()
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return secret.Credential, nil
}
