package cli

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/clonecd/clonecd/fleet"
	"github.com/clonecd/clonecd/netclone"
	"github.com/clonecd/clonecd/progress"
)

type recloneFlags struct {
	server, dir, rsh, command, version string
	delay, timeout, grace              time.Duration
	parallel                           int
	skipCurrent, asJSON                bool
}

func (f *recloneFlags) define(fs *flag.FlagSet) {
	fs.StringVar(&f.server, "server", os.Getenv("CLONECD_SERVER"), "clonecd serve URL to follow the nodes on (env CLONECD_SERVER)")
	fs.StringVar(&f.dir, "dir", defaultStore(), "the server's image directory, when no --server")
	fs.StringVar(&f.rsh, "rsh", netclone.DefaultRsh, "remote shell; the node name and the command follow")
	fs.StringVar(&f.command, "command", netclone.DefaultCommand, "command run on each node")
	f.delay = -1
	fs.Var((*autoDuration)(&f.delay), "delay", "pause between starts, or auto: one image's time on 1 GbE (printed)")
	fs.IntVar(&f.parallel, "parallel", 8, "nodes in flight at most (0 = no cap)")
	fs.DurationVar(&f.timeout, "timeout", 30*time.Minute, "per node, from start to done")
	fs.DurationVar(&f.grace, "grace", 2*time.Minute, "a failed node that starts cloning again within this time is followed on")
	fs.BoolVar(&f.skipCurrent, "skip-current", false, "leave nodes already on the served version alone")
	fs.StringVar(&f.version, "version", "", "clone this version instead of the current one (canary)")
	fs.BoolVar(&f.asJSON, "json", false, "print the results as JSON instead of a table")
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
are redrawn; then a table: node, result, duration, version. The exit
status is 1 if any node failed.`

func init() {
	Register(&Command{
		Name:    "reclone",
		Args:    "[flags] NODE...",
		Summary: "reclone nodes over the network (ssh, ramclone, follow)",
		Help: recloneHelp + `

NODE is a name or a nodeset: s001 's[001-064,070]'.

Examples:
  clonecd reclone --server http://master:8080 s001 s002
  clonecd reclone --version 1.20 --server http://master:8080 s001   # canary
  clonecd reclone --rsh "ssh -i /root/.ssh/clone_key -o BatchMode=yes" 's[001-004]'`,
		Setup: func(fs *flag.FlagSet) Runner {
			var f recloneFlags
			f.define(fs)
			return func(args []string) error {
				if len(args) == 0 {
					return UsageError("no nodes given")
				}
				var nodes []string
				for _, a := range args {
					n, err := fleet.ParseNodeset(a)
					if err != nil {
						return UsageError("%v", err)
					}
					nodes = append(nodes, n...)
				}
				return reclone(&f, nodes)
			}
		},
	})
	Register(&Command{
		Name:    "reclone-all",
		Args:    "[flags] FIRST LAST",
		Summary: "reclone nodes FIRST..LAST over the network (Medusa's reclone_all.bash)",
		Help: recloneHelp + `

FIRST and LAST are numbers put through --pattern (s%03d: 1 64 means
s001..s064).

Examples:
  clonecd reclone-all --server http://master:8080 1 64
  clonecd reclone-all --pattern node%02d --parallel 4 --delay 10s 1 16
  clonecd reclone-all --skip-current 1 64`,
		Setup: func(fs *flag.FlagSet) Runner {
			var f recloneFlags
			f.define(fs)
			pattern := fs.String("pattern", "s%03d", "node name pattern with one %d")
			return func(args []string) error {
				if len(args) != 2 {
					return UsageError("want FIRST LAST, got %d arguments", len(args))
				}
				first, err1 := strconv.Atoi(args[0])
				last, err2 := strconv.Atoi(args[1])
				if err1 != nil || err2 != nil {
					return UsageError("FIRST and LAST must be numbers, got %q %q", args[0], args[1])
				}
				nodes, err := fleet.PatternNodes(*pattern, first, last)
				if err != nil {
					return UsageError("%v", err)
				}
				return reclone(&f, nodes)
			}
		},
	})
}

func reclone(f *recloneFlags, nodes []string) error {
	src, err := netclone.NewSource(f.server, f.dir)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	rsh := strings.Fields(f.rsh)
	if len(rsh) == 0 {
		return UsageError("--rsh is empty")
	}
	r := &netclone.Recloner{
		Source: src, Rsh: rsh, Command: f.command, Delay: f.delay, Parallel: f.parallel,
		Timeout: f.timeout, Grace: f.grace, SkipCurrent: f.skipCurrent, Version: f.version, Out: Stdout,
		Live: progress.IsTerminal(Stdout) && !f.asJSON,
	}
	if r.Delay < 0 {
		vi, err := src.Version(ctx, f.version)
		if err != nil {
			return err
		}
		size := vi.Size
		r.Delay = netclone.DefaultDelay(size)
		fmt.Fprintf(Stdout, "--delay %s between starts (default: a %s image on a 1 GbE link)\n", r.Delay, progress.Bytes(size))
	}
	fmt.Fprintf(Stdout, "recloning %d nodes, %s apart, at most %s in flight, following %s\n",
		len(nodes), r.Delay, parallelText(f.parallel), src.Where())
	start := time.Now()
	results, err := r.Run(ctx, nodes)
	if err != nil {
		return err
	}
	if f.asJSON {
		enc := json.NewEncoder(Stdout)
		enc.SetIndent("", "  ")
		enc.Encode(results)
	} else {
		fmt.Fprintln(Stdout)
		netclone.WriteTable(Stdout, results)
		fmt.Fprintf(Stdout, "wall time %s\n", time.Since(start).Round(time.Second))
	}
	for _, res := range results {
		if !res.OK {
			return &ExitError{Code: 1}
		}
	}
	return nil
}

func parallelText(n int) string {
	if n <= 0 {
		return "all"
	}
	return strconv.Itoa(n)
}

// autoDuration is a duration flag whose default "auto" is stored as -1.
type autoDuration time.Duration

func (d *autoDuration) String() string {
	if d == nil || *d < 0 {
		return "auto"
	}
	return time.Duration(*d).String()
}

func (d *autoDuration) Set(s string) error {
	if s == "auto" {
		*d = -1
		return nil
	}
	v, err := time.ParseDuration(s)
	if err != nil || v < 0 {
		return fmt.Errorf("want a duration like 5s or auto")
	}
	*d = autoDuration(v)
	return nil
}
