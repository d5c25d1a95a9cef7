package cli

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"text/tabwriter"
	"time"

	"github.com/clonecd/clonecd/fleet"
	"github.com/clonecd/clonecd/netclone"
)

func init() {
	Register(&Command{
		Name:    "status",
		Args:    "[--json] [--server URL | --dir DIR] [NODES...]",
		Summary: "show each node's clone state as the server knows it",
		Help: `Per node: the version it runs or is being cloned to, its state (waiting,
cloning n%, done, failed at STEP), when that was last reported, and where
the server keeps its uploaded /tmp/clone.log. NODES are names or nodesets
(s[001-064,070]); without them every node the server knows is listed.

Reads a running server (--server, env CLONECD_SERVER) or its directory
(--dir, default $CLONECD_STORE or /root/clone_image).

Examples:
  clonecd status
  clonecd status --server http://master:8080 's[001-016]'
  clonecd status --json s001 | jq .`,
		Setup: func(fs *flag.FlagSet) Runner {
			server := fs.String("server", os.Getenv("CLONECD_SERVER"), "server URL (env CLONECD_SERVER)")
			dir := fs.String("dir", defaultStore(), "image directory when no --server (env CLONECD_STORE)")
			asJSON := fs.Bool("json", false, "print JSON")
			return func(args []string) error {
				return status(*server, *dir, *asJSON, args)
			}
		},
	})
}

func status(server, dir string, asJSON bool, args []string) error {
	src, err := netclone.NewSource(server, dir)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var states []fleet.State
	if len(args) == 0 {
		if states, err = src.All(ctx); err != nil {
			return err
		}
	} else {
		for _, a := range args {
			nodes, err := fleet.ParseNodeset(a)
			if err != nil {
				return UsageError("%v", err)
			}
			for _, n := range nodes {
				st, err := src.Get(ctx, n)
				if errors.Is(err, fs.ErrNotExist) {
					st = fleet.State{Node: n, State: fleet.Unknown}
				} else if err != nil {
					return err
				}
				states = append(states, st)
			}
		}
	}
	if asJSON {
		type row struct {
			fleet.State
			Summary string `json:"summary"`
		}
		rows := make([]row, len(states))
		for i, s := range states {
			rows[i] = row{s, s.Summary()}
		}
		enc := json.NewEncoder(Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rows)
	}
	if len(states) == 0 {
		fmt.Fprintf(Stdout, "no node has reported to %s yet\n", src.Where())
		return nil
	}
	tw := tabwriter.NewWriter(Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NODE\tVERSION\tSTATE\tWHEN\tLOG")
	for _, s := range states {
		when := "-"
		if !s.When.IsZero() {
			when = s.When.Local().Format("2006-01-02 15:04:05")
		}
		v, lg := s.Version, s.Log
		if v == "" {
			v = "-"
		}
		if lg == "" {
			lg = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", s.Node, fleet.Clean(v, 20), s.Summary(), when, fleet.Clean(lg, 0))
	}
	return tw.Flush()
}
