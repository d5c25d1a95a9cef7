package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"golang.org/x/sync/errgroup"

	"github.com/clonecd/clonecd/fleet"
	"github.com/clonecd/clonecd/netclone"
	"github.com/clonecd/clonecd/progress"
	"github.com/clonecd/clonecd/versions"
)

// fleetFlags are the flags of sync NODE... and sync-all: how each node
// is reached.
type fleetFlags struct {
	rsh, command string
	parallel     int
	timeout      time.Duration
}

func (f *fleetFlags) define(fs *pflag.FlagSet) {
	fs.StringVar(&f.rsh, "rsh", netclone.DefaultRsh, "with NODE...: remote shell; the node name and the command follow")
	fs.StringVar(&f.command, "command", "clonecd", "with NODE...: the clonecd `COMMAND` on the nodes (sync and its flags follow)")
	intVarP(fs, &f.parallel, "parallel", "", 8, 1, 4096, "with NODE...: nodes synced at once, 1-4096")
	durationVar(fs, &f.timeout, "timeout", 30*time.Minute, time.Second, "with NODE...: per node")
}

type syncAllFlags struct {
	syncFlags
	pattern string
}

func syncAllCmd(out Output) *cobra.Command {
	f := &syncAllFlags{}
	c := &cobra.Command{
		Use:   "sync-all [flags] FIRST LAST",
		Short: "sync nodes FIRST..LAST in place over ssh (no reboot), like reclone-all",
		Long: `Runs clonecd sync on nodes FIRST..LAST (numbers put through --pattern:
s%03d: 1 64 means s001..s064) over ssh, --parallel at a time, no reboot;
then prints a table: node, result (synced, current, pending with
--dry-run, needs reclone, failed, unreachable), changes, bytes fetched,
duration, version. It is clonecd sync NODE... for a range; see
clonecd sync --help.

Exit status: 0 when every node is synced or current, 1 when some failed,
need reclone or (--dry-run) have changes pending, 2 on an error before
any node was started.`,
		Example: `  clonecd sync-all --server https://master:8443 1 64
  clonecd sync-all --server https://master:8443 --dry-run 1 64
  clonecd sync-all --pattern node%02d --parallel 16 --json 1 16 > results.json`,
		Args: exactArgs(2, "FIRST LAST"),
		RunE: func(c *cobra.Command, args []string) error { return runSyncAll(c.Context(), out, f, args) },
	}
	f.define(c.Flags())
	f.fleet.define(c.Flags())
	c.Flags().StringVar(&f.pattern, "pattern", "s%03d", "node name `PATTERN` with one %d")
	return c
}

func runSyncAll(ctx context.Context, out Output, f *syncAllFlags, args []string) error {
	nodes, err := patternNodes(f.pattern, args)
	if err != nil {
		return err
	}
	return syncNodes(ctx, out, &f.syncFlags, nodes)
}

// syncNodes runs clonecd sync on each node over ssh and prints a table
// (or JSON) of the results.
func syncNodes(ctx context.Context, out Output, f *syncFlags, nodes []string) error {
	rsh := strings.Fields(f.fleet.rsh)
	if len(rsh) == 0 {
		return UsageError("--rsh is empty")
	}
	server, err := serverURL(f.server)
	if err != nil {
		return err
	}
	if server == "" {
		return UsageError("--server URL is required (or set CLONECD_SERVER): the nodes sync from it")
	}
	pin, err := serverPin(f)
	if err != nil {
		return err
	}
	creds, err := nodeCredentials(f.dir)
	if err != nil {
		return err
	}
	remote := remoteSync(f, string(server), pin, creds != nil)
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	msgs := out.Stdout
	if f.asJSON {
		msgs = out.Stderr
	}
	fmt.Fprintf(msgs, "syncing %d nodes, at most %d at once, from %s\n", len(nodes), f.fleet.parallel, server)
	start := time.Now()
	var msgsMu sync.Mutex
	results := make([]syncResult, len(nodes))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(f.fleet.parallel)
	for i, node := range nodes {
		g.Go(func() error {
			var stdin io.Reader
			if creds != nil {
				c, err := creds(node)
				if err != nil {
					return err
				}
				stdin = strings.NewReader(c.String() + "\n")
			}
			results[i] = syncOne(gctx, rsh, node, remote, stdin, f.fleet.timeout)
			msgsMu.Lock()
			fmt.Fprintf(msgs, "%s: %s\n", node, printable(results[i].Result))
			msgsMu.Unlock()
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	if f.asJSON {
		if err := writeJSON(out, results); err != nil {
			return err
		}
	} else {
		fmt.Fprintln(out.Stdout)
		writeSyncTable(out.Stdout, results)
		fmt.Fprintf(out.Stdout, "wall time %s\n", time.Since(start).Round(time.Second))
	}
	for _, r := range results {
		if r.Result != resultSynced && r.Result != resultCurrent {
			return &ExitError{Code: exitNo}
		}
	}
	return nil
}

// serverPin is the TLS pin the nodes check the server against:
// --tls-pin, $CLONECD_TLS_PIN, else the pin of the store's certificate
// (--dir), else none.
func serverPin(f *syncFlags) (string, error) {
	if f.access.pin != "" {
		return string(f.access.pin), nil
	}
	if env := os.Getenv(envPin); env != "" {
		return env, nil
	}
	s, err := versions.Open(f.dir)
	if err != nil {
		return "", err
	}
	pin, err := s.ReadServerPin()
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	return pin, err
}

// remoteSync is the command line each node runs: clonecd sync --json
// with the flags that concern the node.
func remoteSync(f *syncFlags, server, pin string, cred bool) string {
	args := []string{f.fleet.command, "sync", "--json", "--server", server}
	if pin != "" {
		args = append(args, "--tls-pin", pin)
	}
	if f.version != "" {
		args = append(args, "--version", string(f.version))
	}
	for _, b := range []struct {
		on   bool
		flag string
	}{{f.dryRun, "--dry-run"}, {f.checksum, "--checksum"}, {f.noDelete, "--no-delete"}, {f.noBootloader, "--no-bootloader"}} {
		if b.on {
			args = append(args, b.flag)
		}
	}
	for _, p := range f.exclude {
		args = append(args, "--exclude", p)
	}
	for _, t := range f.trust {
		args = append(args, "--trust", t)
	}
	if cred {
		args = append(args, "--credential", "-")
	}
	q := make([]string, len(args))
	for i, a := range args {
		q[i] = shellQuote(a)
	}
	return strings.Join(q, " ")
}

// shellQuote quotes s for the remote shell (ssh hands the command to
// the node's sh -c).
func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./:=@%+,") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// syncOne runs the remote sync on node and reads its JSON result.
func syncOne(ctx context.Context, rsh []string, node, command string, stdin io.Reader, timeout time.Duration) syncResult {
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	args := append(append([]string{}, rsh[1:]...), "--", node, command)
	cmd := exec.CommandContext(ctx, rsh[0], args...)
	cmd.Stdin = stdin
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var res syncResult
	if jerr := json.Unmarshal(stdout.Bytes(), &res); jerr == nil && res.Result != "" {
		res.Node = node
		return res
	}
	res = syncResult{Node: node, Result: resultFailed, Seconds: time.Since(start).Seconds()}
	var ee *exec.ExitError
	if errors.As(err, &ee) && ee.ExitCode() == 255 || ctx.Err() != nil {
		res.Result = "unreachable"
	}
	res.Reason = fleet.Clean(lastLine(stderr.String()), 500)
	if res.Reason == "" && err != nil {
		res.Reason = err.Error()
	}
	return res
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}

// writeSyncTable prints sync NODE...'s table.
func writeSyncTable(w io.Writer, results []syncResult) {
	fmt.Fprintf(w, "%-14s %-14s %6s %7s %5s %7s %10s %9s  %s\n", "NODE", "RESULT", "ADDED", "CHANGED", "META", "REMOVED", "FETCHED", "DURATION", "VERSION")
	ok := 0
	for _, r := range results {
		line := fmt.Sprintf("%-14s %-14s", printable(r.Node), printable(r.Result))
		if rep := r.Report; rep != nil {
			line += fmt.Sprintf(" %6d %7d %5d %7d %10s", rep.Added, rep.Changed, rep.Metadata, rep.Removed, progress.Bytes(rep.Fetched))
		} else {
			line += fmt.Sprintf(" %6s %7s %5s %7s %10s", "-", "-", "-", "-", "-")
		}
		line += fmt.Sprintf(" %9s  %s", (time.Duration(r.Seconds * float64(time.Second))).Round(time.Second), orDash(printable(r.Version)))
		if r.Reason != "" {
			line += "  (" + printable(fleet.Clean(r.Reason, 100)) + ")"
		}
		fmt.Fprintln(w, line)
		if r.Result == resultSynced || r.Result == resultCurrent {
			ok++
		}
	}
	fmt.Fprintf(w, "%d of %d nodes synced or current\n", ok, len(results))
}
