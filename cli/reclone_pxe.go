package cli

import (
	"fmt"
	"net"
	"slices"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/clonecd/clonecd/pxe"
	"github.com/clonecd/clonecd/versions"
)

// pxeMarked is one host reclone --pxe marked, as --json prints it.
type pxeMarked struct {
	Node    string `json:"node"`
	MAC     string `json:"mac"`
	Version string `json:"version"`
}

// runReclonePXE is reclone --pxe: each node (a name of the nodes table,
// a nodeset, or a MAC) is marked so that its next network boot from
// clonecd serve --pxe gets the cloner; nothing is run on the nodes. Every
// argument is resolved before the first mark.
func runReclonePXE(c *cobra.Command, out Output, f *recloneFlags, args []string) error {
	var bad []string
	c.Flags().Visit(func(fl *pflag.Flag) {
		if !slices.Contains([]string{"pxe", "dir", "version", "force", "json"}, fl.Name) {
			bad = append(bad, "--"+fl.Name)
		}
	})
	if len(bad) > 0 {
		return UsageError("%s: not with --pxe (it marks nodes in --dir DIR for clonecd serve --pxe; nothing runs on them)", bad[0])
	}
	store, err := versions.Open(f.dir)
	if err != nil {
		return err
	}
	v := string(f.version)
	e, err := store.Current()
	if v != "" {
		e, err = store.Get(v)
	}
	if err != nil {
		return err
	}
	if v != "" && e.Bad && !f.force {
		return fmt.Errorf("version %s is marked bad (clonecd images): give --force to clone it anyway", v)
	}
	table, err := readNodes(store, e.Version)
	if err != nil {
		table = nil // no nodes table: MACs only
	}
	var marks []pxeMarked
	for _, a := range args {
		if mac, err := net.ParseMAC(a); err == nil && len(mac) == 6 {
			m := pxeMarked{MAC: mac.String(), Node: pxe.HostName(mac), Version: v}
			for _, n := range table {
				if n.MAC == m.MAC {
					m.Node = n.Hostname
				}
			}
			marks = append(marks, m)
			continue
		}
		names, err := parseNodes([]string{a})
		if err != nil {
			return UsageError("%s: neither a MAC nor a node name: %v", a, err)
		}
	names:
		for _, name := range names {
			for _, n := range table {
				if n.Hostname == name {
					marks = append(marks, pxeMarked{Node: name, MAC: n.MAC, Version: v})
					continue names
				}
			}
			return fmt.Errorf("%s is not in the nodes table of version %s: add \"MAC %s\" to it (clonecd publish --nodes) or give its MAC", name, e.Version, name)
		}
	}
	p := &pxe.DirPolicy{Dir: pxeHostsDir(store.Dir)}
	for _, m := range marks {
		mac, _ := net.ParseMAC(m.MAC)
		if err := p.Mark(mac, m.Node, m.Version); err != nil {
			return err
		}
	}
	if f.json {
		return writeJSON(out, marks)
	}
	what := "the current version"
	if v != "" {
		what = "version " + v
	}
	for _, m := range marks {
		fmt.Fprintf(out.Stdout, "%s (%s): its next network boot clones %s (clonecd serve --pxe)\n", m.Node, m.MAC, what)
	}
	return nil
}
