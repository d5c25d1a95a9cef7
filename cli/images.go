package cli

import (
	"context"
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/clonecd/clonecd/progress"
	"github.com/clonecd/clonecd/versions"
)

type imagesFlags struct {
	dir  string
	json bool
}

func imagesCmd(out Output) *cobra.Command {
	f := &imagesFlags{}
	c := &cobra.Command{
		Use:   "images [flags]",
		Short: "list the image store's versions, which is current and which nodes run each",
		Long: `Columns: version (* = current), date, size, sha256 prefix, signed (the
key ID of MANIFEST.minisig, or "unsigned"; as the signature says: build
--trust and fetch --trust verify it), status (good,
BAD: reason, or CHANGED when the image was written to after publishing),
the nodes whose last report names the version (with their state unless
done: s003(cloning), s004(failed)), note.

` + storeHelp,
		Example: `  clonecd images
  clonecd images --dir /srv/clone_image --json | jq .`,
		Args: noArgs,
		RunE: func(c *cobra.Command, args []string) error { return runImages(c.Context(), out, f, args) },
	}
	storeFlag(c.Flags(), &f.dir)
	c.Flags().BoolVar(&f.json, "json", false, "print JSON")
	return c
}

func runImages(_ context.Context, out Output, f *imagesFlags, _ []string) error {
	s, err := versions.Open(f.dir)
	if err != nil {
		return err
	}
	list, err := s.List()
	if err != nil {
		return err
	}
	if f.json {
		return writeJSON(out, storeEntries(list))
	}
	if len(list) == 0 {
		fmt.Fprintf(out.Stdout, "no versions in %s (clonecd publish node.cpio.gz --layout node.sfdisk)\n", s.Dir)
		return nil
	}
	tw := tabwriter.NewWriter(out.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "VERSION\tDATE\tSIZE\tSHA256\tSIGNED\tSTATUS\tNODES\tNOTE")
	for _, e := range list {
		mark, status := " ", "good"
		if e.Current {
			mark = "*"
		}
		if e.Bad {
			status = "BAD"
			if e.BadReason != "" {
				status += ": " + e.BadReason
			}
		}
		if e.Changed {
			status = "CHANGED since publish (sha256 no longer matches)"
		}
		nodes := "-"
		if len(e.NodeStates) > 0 {
			var ns []string
			for _, n := range e.NodeStates {
				if n.State == "" || n.State == "done" {
					ns = append(ns, n.Node)
				} else {
					ns = append(ns, n.Node+"("+n.State+")")
				}
			}
			nodes = strings.Join(ns, ",")
		}
		signed := "unsigned"
		if e.Signed {
			signed = e.KeyID
		}
		fmt.Fprintf(tw, "%s%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", mark, e.Version, e.Date.Local().Format("2006-01-02 15:04"),
			progress.Bytes(e.Size), short(e.SHA256), signed, printable(status), printable(nodes), printable(e.Note))
	}
	return tw.Flush()
}
