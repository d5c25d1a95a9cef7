package cli

import (
	"context"
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/clonecd/clonecd/progress"
	"github.com/clonecd/clonecd/versions"
)

const storeHelp = `The image store (default /root/clone_image, or $CLONECD_STORE; --dir) is
what clonecd serve serves: DIR/versions/V/ holds each version's
node.cpio.gz, node.cpio.gz.sha256, node.sfdisk, CLONE_CD_VERSION, its
MANIFEST and, signed, MANIFEST.minisig (files 0600, directories 0700);
DIR/current points at the current one and DIR/node.cpio.gz etc. are
aliases of current's files, so the Medusa path /root/clone_image/node.cpio.gz
still works. A Medusa-style directory with a plain node.cpio.gz is adopted
as a version on first use. Only prune deletes.`

// storeFlag defines --dir, the image store.
func storeFlag(fs *pflag.FlagSet, p *string) {
	fs.StringVar(p, "dir", versions.DefaultDir(), "image store `DIR` ($CLONECD_STORE)")
}

// storeEntry is a version as images, publish and prune print it with
// --json.
type storeEntry struct {
	versions.Entry
	Current bool     `json:"current"`
	Dir     string   `json:"dir"`
	Nodes   []string `json:"nodes"`
	Signed  bool     `json:"signed"`
	KeyID   string   `json:"key_id,omitempty"` // the key of MANIFEST.minisig
}

func storeEntries(list []versions.Entry) []storeEntry {
	rows := []storeEntry{}
	for _, e := range list {
		rows = append(rows, storeEntry{e, e.Current, e.Dir, nonNil(e.Nodes), e.Signed, e.KeyID})
	}
	return rows
}

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

type promoteFlags struct {
	dir   string
	force bool
}

func promoteCmd(out Output) *cobra.Command {
	f := &promoteFlags{}
	c := &cobra.Command{
		Use:   "promote [flags] V",
		Short: "make version V of the image store current",
		Long: `Makes V current: clonecd serve and reclone-all use it from now on. A
version marked bad (by rollback) is refused unless --force, which clears
the mark.`,
		Example: `  clonecd promote 1.20
  clonecd promote --force 1.19`,
		Args: exactArgs(1, "one version"),
		RunE: func(c *cobra.Command, args []string) error { return runPromote(c.Context(), out, f, args) },
	}
	storeFlag(c.Flags(), &f.dir)
	c.Flags().BoolVar(&f.force, "force", false, "promote a version marked bad and clear the mark")
	return c
}

func runPromote(_ context.Context, out Output, f *promoteFlags, args []string) error {
	v, err := parseVersion(args[0])
	if err != nil {
		return UsageError("%v", err)
	}
	s, err := versions.Open(f.dir)
	if err != nil {
		return err
	}
	e, err := s.Promote(v.String(), f.force)
	if err != nil {
		return err
	}
	fmt.Fprintf(out.Stdout, "current version is now %s\n", e.Version)
	return nil
}

type rollbackFlags struct {
	dir, reason string
}

func rollbackCmd(out Output) *cobra.Command {
	f := &rollbackFlags{}
	c := &cobra.Command{
		Use:   "rollback [flags]",
		Short: "mark the current version bad and go back to the previous good one",
		Long: `The "last known good" image: marks the current version bad and makes
current the most recent version that was current before it and is not
bad (else the highest good version below it). Nothing changes when there
is none. Recloned nodes then get the good version.`,
		Example: `  clonecd rollback --reason "nfs mounts hang on 1.21"
  clonecd reclone-all 1 64`,
		Args: noArgs,
		RunE: func(c *cobra.Command, args []string) error { return runRollback(c.Context(), out, f, args) },
	}
	storeFlag(c.Flags(), &f.dir)
	c.Flags().StringVar(&f.reason, "reason", "", "why the current version is bad (shown by clonecd images)")
	return c
}

func runRollback(_ context.Context, out Output, f *rollbackFlags, _ []string) error {
	s, err := versions.Open(f.dir)
	if err != nil {
		return err
	}
	old, err := s.Current()
	if err != nil {
		return err
	}
	e, err := s.Rollback(f.reason)
	if err != nil {
		return err
	}
	fmt.Fprintf(out.Stdout, "marked %s bad; current version is now %s\n", old.Version, e.Version)
	return nil
}

type pruneFlags struct {
	dir          string
	keep         int
	dryRun, json bool
}

func pruneCmd(out Output) *cobra.Command {
	f := &pruneFlags{}
	c := &cobra.Command{
		Use:   "prune [flags] --keep N",
		Short: "delete the oldest versions of the image store, keeping N",
		Long: `The only command that deletes images. Keeps the current version (it
counts towards N), versions pinned for a node's next clone (canaries) and
the newest others up to N in total.`,
		Example: `  clonecd prune --keep 3
  clonecd prune --keep 3 --dry-run
  clonecd prune --keep 3 -n --json | jq -r '.[].version'`,
		Args: noArgs,
		RunE: func(c *cobra.Command, args []string) error { return runPrune(c.Context(), out, f, args) },
	}
	fl := c.Flags()
	storeFlag(fl, &f.dir)
	intVarP(fl, &f.keep, "keep", "", 0, 1, 1<<20, "number of versions to keep, at least 1 (required)")
	fl.BoolVarP(&f.dryRun, "dry-run", "n", false, "only say what would be deleted")
	fl.BoolVar(&f.json, "json", false, "print the versions deleted (or that would be) as JSON")
	c.MarkFlagRequired("keep")
	return c
}

func runPrune(_ context.Context, out Output, f *pruneFlags, _ []string) error {
	s, err := versions.Open(f.dir)
	if err != nil {
		return err
	}
	var plan *versions.PrunePlan
	verb := "deleted"
	if f.dryRun {
		verb = "would delete"
		plan, err = s.PlanPrune(f.keep)
	} else {
		plan, err = s.Prune(f.keep)
	}
	var list []versions.Entry
	if plan != nil {
		list = plan.Delete
	}
	if f.json && (err == nil || len(list) > 0) {
		if jerr := writeJSON(out, storeEntries(list)); err == nil {
			err = jerr
		}
		return err
	}
	for _, e := range list {
		fmt.Fprintf(out.Stdout, "%s %s (%s)\n", verb, e.Version, progress.Bytes(e.Size))
	}
	if plan != nil {
		for _, h := range plan.Held {
			fmt.Fprintf(out.Stdout, "kept %s: %s\n", h.Version, h.Why)
		}
	}
	if err == nil && len(list) == 0 {
		fmt.Fprintln(out.Stdout, "nothing to delete")
	}
	return err
}
