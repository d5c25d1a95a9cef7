package cli

import (
	"encoding/json"
	"flag"
	"fmt"
	"github.com/clonecd/clonecd/progress"
	"strings"
	"text/tabwriter"

	"github.com/clonecd/clonecd/medium"
	"github.com/clonecd/clonecd/versions"
)

const storeHelp = `The image store (default /root/clone_image, or $CLONECD_STORE; --dir) is
what clonecd serve serves: DIR/versions/V/ holds each version's
node.cpio.gz, node.cpio.gz.sha256, node.sfdisk and CLONE_CD_VERSION;
DIR/current points at the current one and DIR/node.cpio.gz etc. are
aliases of current's files, so the Medusa path /root/clone_image/node.cpio.gz
still works. A Medusa-style directory with a plain node.cpio.gz is adopted
as a version on first use. Only prune deletes.`

func storeFlag(fs *flag.FlagSet) *string {
	return fs.String("dir", versions.DefaultDir(), "image store directory ($CLONECD_STORE)")
}

func init() {
	Register(&Command{
		Name:    "publish",
		Args:    "[flags] node.cpio.gz",
		Summary: "add an image to the image store as a new version and make it current",
		Help: `Copies the image (checked against IMAGE.sha256 when that exists) into the
store as version V (default: the next after the highest published, 1.0 in
an empty store) with its sha256, layout, date and note, then makes it
current. --no-promote publishes a canary: clone chosen nodes with
clonecd reclone --version V, then clonecd promote V.

` + storeHelp + `

examples:
  clonecd publish /data/node.cpio.gz --layout node.sfdisk --note "kernel 6.1.0-50"
  clonecd publish node.cpio.gz --version 1.20               # keeps current's layout
  clonecd publish node.cpio.gz --no-promote --ks ks.cfg --nodes nodes`,
		Setup: func(fs *flag.FlagSet) Runner {
			dir := storeFlag(fs)
			layout := fs.String("layout", "", "layout file (sfdisk dump with clonecd lines); default: the current version's")
			version := fs.String("version", "", "version to publish as (MAJOR.MINOR); default: next")
			note := fs.String("note", "", "note shown by clonecd images")
			noPromote := fs.Bool("no-promote", false, "do not make the new version current (canary)")
			nodes := fs.String("nodes", "", "identity table (MAC HOSTNAME [ADDRESS/PREFIX [GATEWAY]]) to publish with it")
			ks := fs.String("ks", "", "kickstart file to publish with it (its %post scripts run on the clones)")
			kernel := fs.String("kernel", "", "kernel (vmlinuz) for network cloning to publish with it")
			initrd := fs.String("initrd", "", "clonecd initramfs (initrd.img) for network cloning to publish with it")
			return func(args []string) error {
				if len(args) != 1 {
					return UsageError("want one image file")
				}
				s, err := versions.Open(*dir)
				if err != nil {
					return err
				}
				files := map[string]string{}
				if *nodes != "" {
					files[medium.Nodes] = *nodes
				}
				if *ks != "" {
					files[medium.Kickstart] = *ks
				}
				if *kernel != "" {
					files[medium.Kernel] = *kernel
				}
				if *initrd != "" {
					files[medium.Initrd] = *initrd
				}
				e, err := s.Publish(args[0], versions.PublishOptions{
					Version: *version, Note: *note, Layout: *layout, NoPromote: *noPromote, Files: files})
				if err != nil {
					return err
				}
				state := "current"
				if !e.Current {
					state = "not current (canary; clonecd promote " + e.Version + ")"
				}
				fmt.Fprintf(Stdout, "published %s (%s, sha256 %s) in %s: %s\n", e.Version, progress.Bytes(e.Size), e.SHA256[:12], s.Dir, state)
				return nil
			}
		},
	})
	Register(&Command{
		Name:    "images",
		Args:    "[--dir DIR] [--json]",
		Summary: "list the image store's versions, which is current and which nodes run each",
		Help: `Columns: version (* = current), date, size, sha256 prefix, status (good,
BAD: reason, or CHANGED when the image was written to after publishing),
the nodes whose last report names the version (with their state unless
done: s003(cloning), s004(failed)), note.

` + storeHelp + `

examples:
  clonecd images
  clonecd images --dir /srv/clone_image --json | jq .`,
		Setup: func(fs *flag.FlagSet) Runner {
			dir := storeFlag(fs)
			asJSON := fs.Bool("json", false, "print JSON")
			return func(args []string) error {
				if len(args) != 0 {
					return UsageError("images takes no arguments")
				}
				s, err := versions.Open(*dir)
				if err != nil {
					return err
				}
				list, err := s.List()
				if err != nil {
					return err
				}
				if *asJSON {
					type row struct {
						versions.Entry
						Current bool     `json:"current"`
						Dir     string   `json:"dir"`
						Nodes   []string `json:"nodes"`
					}
					rows := []row{}
					for _, e := range list {
						rows = append(rows, row{e, e.Current, e.Dir, e.Nodes})
					}
					enc := json.NewEncoder(Stdout)
					enc.SetIndent("", "  ")
					return enc.Encode(rows)
				}
				if len(list) == 0 {
					fmt.Fprintf(Stdout, "no versions in %s (clonecd publish node.cpio.gz --layout node.sfdisk)\n", s.Dir)
					return nil
				}
				tw := tabwriter.NewWriter(Stdout, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "VERSION\tDATE\tSIZE\tSHA256\tSTATUS\tNODES\tNOTE")
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
					sum := e.SHA256
					if len(sum) > 12 {
						sum = sum[:12]
					}
					fmt.Fprintf(tw, "%s%s\t%s\t%s\t%s\t%s\t%s\t%s\n", mark, e.Version, e.Date.Local().Format("2006-01-02 15:04"),
						progress.Bytes(e.Size), sum, status, nodes, e.Note)
				}
				return tw.Flush()
			}
		},
	})
	Register(&Command{
		Name:    "promote",
		Args:    "[--dir DIR] [--force] V",
		Summary: "make version V of the image store current",
		Help: `Makes V current: clonecd serve and reclone-all use it from now on. A
version marked bad (by rollback) is refused unless --force, which clears
the mark.

examples:
  clonecd promote 1.20
  clonecd promote --force 1.19`,
		Setup: func(fs *flag.FlagSet) Runner {
			dir := storeFlag(fs)
			force := fs.Bool("force", false, "promote a version marked bad and clear the mark")
			return func(args []string) error {
				if len(args) != 1 {
					return UsageError("want one version")
				}
				s, err := versions.Open(*dir)
				if err != nil {
					return err
				}
				e, err := s.Promote(args[0], *force)
				if err != nil {
					return err
				}
				fmt.Fprintf(Stdout, "current version is now %s\n", e.Version)
				return nil
			}
		},
	})
	Register(&Command{
		Name:    "rollback",
		Args:    "[--dir DIR] [--reason TEXT]",
		Summary: "mark the current version bad and go back to the previous good one",
		Help: `The "last known good" image: marks the current version bad and makes
current the most recent version that was current before it and is not
bad (else the highest good version below it). Nothing changes when there
is none. Recloned nodes then get the good version.

examples:
  clonecd rollback --reason "nfs mounts hang on 1.21"
  clonecd reclone-all`,
		Setup: func(fs *flag.FlagSet) Runner {
			dir := storeFlag(fs)
			reason := fs.String("reason", "", "why the current version is bad (shown by clonecd images)")
			return func(args []string) error {
				if len(args) != 0 {
					return UsageError("rollback takes no arguments")
				}
				s, err := versions.Open(*dir)
				if err != nil {
					return err
				}
				old, err := s.Current()
				if err != nil {
					return err
				}
				e, err := s.Rollback(*reason)
				if err != nil {
					return err
				}
				fmt.Fprintf(Stdout, "marked %s bad; current version is now %s\n", old.Version, e.Version)
				return nil
			}
		},
	})
	Register(&Command{
		Name:    "prune",
		Args:    "[--dir DIR] --keep N",
		Summary: "delete the oldest versions of the image store, keeping N",
		Help: `The only command that deletes images. Keeps the current version (it
counts towards N), versions pinned for a node's next clone (canaries) and
the newest others up to N in total.

examples:
  clonecd prune --keep 3
  clonecd prune --keep 3 --dry-run`,
		Setup: func(fs *flag.FlagSet) Runner {
			dir := storeFlag(fs)
			keep := fs.Int("keep", 0, "number of versions to keep (at least 1)")
			dry := fs.Bool("dry-run", false, "only say what would be deleted")
			return func(args []string) error {
				if len(args) != 0 {
					return UsageError("prune takes no arguments")
				}
				if *keep < 1 {
					return UsageError("--keep N is required, N >= 1")
				}
				s, err := versions.Open(*dir)
				if err != nil {
					return err
				}
				if *dry {
					return pruneDryRun(s, *keep)
				}
				plan, err := s.Prune(*keep)
				var removed []versions.Entry
				if plan != nil {
					removed = plan.Delete
				}
				for _, e := range removed {
					fmt.Fprintf(Stdout, "deleted %s (%s)\n", e.Version, progress.Bytes(e.Size))
				}
				if err == nil && len(removed) == 0 {
					fmt.Fprintln(Stdout, "nothing to delete")
				}
				return err
			}
		},
	})
}

// pruneDryRun reports the versions prune would delete without touching
// anything.
func pruneDryRun(s *versions.Store, keep int) error {
	plan, err := s.PlanPrune(keep)
	if err != nil {
		return err
	}
	for _, e := range plan.Delete {
		fmt.Fprintf(Stdout, "would delete %s (%s)\n", e.Version, progress.Bytes(e.Size))
	}
	if len(plan.Delete) == 0 {
		fmt.Fprintln(Stdout, "nothing to delete")
	}
	return nil
}
