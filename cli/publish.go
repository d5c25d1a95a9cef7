package cli

import (
	"context"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/clonecd/clonecd/medium"
	"github.com/clonecd/clonecd/progress"
	"github.com/clonecd/clonecd/versions"
)

type publishFlags struct {
	dir, layout, note, nodes, ks, kernel, initrd string
	version                                      versionFlag
	noPromote, force, json, quiet                bool
}

func publishCmd(out Output) *cobra.Command {
	f := &publishFlags{}
	c := &cobra.Command{
		Use:   "publish [flags] node.cpio.gz",
		Short: "add an image to the image store as a new version and make it current",
		Long: `Copies the image (checked against IMAGE.sha256 when that exists) into the
store as version V (default: the next after the highest published, 1.0 in
an empty store) with its sha256, layout, date and note, then makes it
current. --no-promote publishes a canary: clone chosen nodes with
clonecd reclone --version V, then clonecd promote V.

` + storeHelp,
		Example: `  clonecd publish /data/node.cpio.gz --layout node.sfdisk --note "kernel 6.1.0-50"
  clonecd publish node.cpio.gz --version 1.20               # keeps current's layout
  clonecd publish node.cpio.gz --no-promote --ks ks.cfg --nodes nodes
  clonecd publish --json node.cpio.gz | jq -r .version`,
		Args: exactArgs(1, "one image file"),
		RunE: func(c *cobra.Command, args []string) error { return runPublish(c.Context(), out, f, args) },
	}
	fl := c.Flags()
	storeFlag(fl, &f.dir)
	fl.StringVar(&f.layout, "layout", "", "layout `FILE` (sfdisk dump with clonecd lines); default: the current version's")
	fl.Var(&f.version, "version", "version to publish as, MAJOR.MINOR (default: the next)")
	fl.StringVar(&f.note, "note", "", "`TEXT` shown by clonecd images")
	fl.BoolVar(&f.noPromote, "no-promote", false, "do not make the new version current (canary)")
	fl.StringVar(&f.nodes, "nodes", "", "identity table `FILE` (MAC HOSTNAME [ADDRESS/PREFIX [GATEWAY]]) to publish with it")
	fl.StringVar(&f.ks, "ks", "", "kickstart `FILE` to publish with it (its %post scripts run on the clones)")
	fl.StringVar(&f.kernel, "kernel", "", "kernel `FILE` (vmlinuz) for network cloning to publish with it")
	fl.StringVar(&f.initrd, "initrd", "", "clonecd initramfs `FILE` (initrd.img) for network cloning to publish with it")
	fl.BoolVar(&f.force, "force", false, "make a version lower than the current one current")
	fl.BoolVar(&f.json, "json", false, "print the new version as JSON")
	fl.BoolVarP(&f.quiet, "quiet", "q", false, "no progress meter (there is none unless standard error is a terminal)")
	return c
}

func runPublish(_ context.Context, out Output, f *publishFlags, args []string) error {
	s, err := versions.Open(f.dir)
	if err != nil {
		return err
	}
	files := map[string]string{}
	for name, path := range map[string]string{medium.Nodes: f.nodes, medium.Kickstart: f.ks,
		medium.Kernel: f.kernel, medium.Initrd: f.initrd} {
		if path != "" {
			files[name] = path
		}
	}
	meter := &stageMeter{w: out.Stderr, label: "publish", quiet: f.quiet}
	e, err := s.Publish(args[0], versions.PublishOptions{
		Version: string(f.version), Note: f.note, Layout: f.layout, NoPromote: f.noPromote, Force: f.force, Files: files,
		Progress: meter.progress})
	meter.done()
	if err != nil {
		return err
	}
	if f.json {
		return writeJSON(out, storeEntries([]versions.Entry{*e})[0])
	}
	state := "current"
	if !e.Current {
		state = "not current (canary; clonecd promote " + e.Version + ")"
	}
	fmt.Fprintf(out.Stdout, "published %s (%s, sha256 %s) in %s: %s\n", e.Version, progress.Bytes(e.Size), short(e.SHA256), s.Dir, state)
	return nil
}

// stageMeter draws a progress meter per stage of a long operation (on a
// terminal only: package progress): "publish: checking", then "publish:
// copying".
type stageMeter struct {
	w     io.Writer
	label string
	quiet bool
	stage string
	m     *progress.Meter
}

func (s *stageMeter) progress(stage string, done, total int64) {
	if stage != s.stage {
		s.done()
		s.stage, s.m = stage, progress.New(s.w, s.label+": "+stage, total, s.quiet)
	}
	s.m.Set(done)
}

func (s *stageMeter) done() {
	if s.m != nil {
		s.m.Done()
		s.m = nil
	}
}
