package cli

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/clonecd/clonecd/fleet"
	"github.com/clonecd/clonecd/netclone"
	"github.com/clonecd/clonecd/trust"
)

type statusFlags struct {
	server urlFlag
	dir    string
	json   bool
	access accessFlags
}

func statusCmd(out Output) *cobra.Command {
	f := &statusFlags{}
	c := &cobra.Command{
		Use:   "status [flags] [NODES...]",
		Short: "show each node's clone state as the server knows it",
		Long: `Per node: the version it runs or is being cloned to, its state (waiting,
cloning n%, done, failed at STEP), when that was last reported, and where
the server keeps its uploaded /tmp/clone.log. NODES are names or nodesets
(s[001-064,070]); without them every node the server knows is listed.

Reads a running server (--server, default $CLONECD_SERVER) or its
directory (--dir, default $CLONECD_STORE or /root/clone_image). What the
nodes reported is printed with control characters escaped; a version a
cloner took without checking a signature shows as "1.20 (UNSIGNED)".
From a server, the last lines say the image bytes the master served and
those its nodes served each other (serve --swarm): in total, then per
version that has bytes, newest first.

` + accessHelp + ` The admin's credential sees every node.`,
		Example: `  clonecd status
  clonecd status --server https://10.0.0.1:8443 's[001-016]'
  clonecd status --server https://master:8443 --credential /root/admin.cred --tls-pin sha256//q0P0vTLXDCxC9dHdZ8ocEfkhd9tu2yvWjDCbzBnmC2Q=
  clonecd status --json s001 | jq .`,
		Args: nodesetArgs,
		RunE: func(c *cobra.Command, args []string) error { return runStatus(c.Context(), out, f, args) },
	}
	fl := c.Flags()
	fl.Var(&f.server, "server", "server `URL` (default $CLONECD_SERVER)")
	fl.StringVar(&f.dir, "dir", defaultStore(), "image `DIR` when no --server ($CLONECD_STORE)")
	fl.BoolVar(&f.json, "json", false, "print JSON")
	f.access.define(fl)
	return c
}

// nodesetArgs checks NODE arguments: names or nodesets (s[001-064]).
func nodesetArgs(_ *cobra.Command, args []string) error {
	_, err := parseNodes(args)
	return err
}

// parseNodes expands nodesets into host names, each one checked.
func parseNodes(args []string) ([]string, error) {
	var nodes []string
	for _, a := range args {
		n, err := fleet.ParseNodeset(a)
		if err != nil {
			return nil, UsageError("%v", err)
		}
		for _, name := range n {
			if err := checkNodeName(name); err != nil {
				return nil, UsageError("%v", err)
			}
		}
		nodes = append(nodes, n...)
	}
	return nodes, nil
}

func runStatus(ctx context.Context, out Output, f *statusFlags, args []string) error {
	nodes, err := parseNodes(args)
	if err != nil {
		return err
	}
	src, err := stateSource(f.server, f.dir, &f.access)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	var states []fleet.State
	if len(nodes) == 0 {
		if states, err = src.All(ctx); err != nil {
			return err
		}
	}
	for _, n := range nodes {
		st, err := src.Get(ctx, n)
		if errors.Is(err, fs.ErrNotExist) {
			st = fleet.State{Node: n, State: "unknown"}
		} else if err != nil {
			return err
		}
		states = append(states, st)
	}
	if f.json {
		type row struct {
			fleet.State
			Summary string `json:"summary"`
		}
		rows := make([]row, len(states))
		for i, s := range states {
			rows[i] = row{s, s.Summary()}
		}
		return writeJSON(out, rows)
	}
	if len(states) == 0 {
		fmt.Fprintf(out.Stdout, "no node has reported to %s yet\n", src.Where())
		if err := printNewcomers(ctx, out.Stdout, f, nodes); err != nil {
			return err
		}
		return printServed(ctx, out, src)
	}
	tw := tabwriter.NewWriter(out.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NODE\tVERSION\tSTATE\tWHEN\tLOG")
	for _, s := range states {
		when := "-"
		if !s.When.IsZero() {
			when = s.When.Local().Format("2006-01-02 15:04:05")
		}
		version := orDash(s.Version)
		if s.Trust == trust.Unsigned {
			version += " (" + trust.Unsigned + ")"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", printable(orDash(s.Node)), printable(version),
			printable(s.Summary()), when, printable(orDash(s.Log)))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if err := printNewcomers(ctx, out.Stdout, f, nodes); err != nil {
		return err
	}
	return printServed(ctx, out, src)
}

// stateSource is where status and reclone read node states: the server
// (--server, else $CLONECD_SERVER) with the admin's credential, else its
// directory.
func stateSource(flag urlFlag, dir string, af *accessFlags) (netclone.StateSource, error) {
	server, err := serverURL(flag)
	if err != nil {
		return nil, err
	}
	var a netclone.Access
	if server != "" {
		if a, err = af.access(string(server), dir, trust.AdminUser); err != nil {
			return nil, err
		}
	}
	return netclone.NewSource(string(server), dir, a)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
