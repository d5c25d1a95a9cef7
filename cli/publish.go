package cli

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/clonecd/clonecd/medium"
	"github.com/clonecd/clonecd/progress"
	"github.com/clonecd/clonecd/trust"
	"github.com/clonecd/clonecd/versions"
)

type publishFlags struct {
	dir, layout, note, nodes, ks, kernel, initrd string
	key                                          string
	version                                      versionFlag
	noPromote, force, json, unsigned, quiet      bool
}

func publishCmd(out Output) *cobra.Command {
	f := &publishFlags{}
	c := &cobra.Command{
		Use:   "publish [flags] node.cpio.gz",
		Short: "add an image to the image store as a new version and make it current",
		Long: `Copies the image, node.cpio.gz or node.cpio.zst (pack --compress zstd;
checked against IMAGE.sha256 when that exists), into the
store as version V (default: the next after the highest published, 1.0 in
an empty store) with its sha256, layout, date and note, then makes it
current. --no-promote publishes a canary: clone chosen nodes with
clonecd reclone --version V, then clonecd promote V.

Every version gets a MANIFEST: the version and the sha256 and size of each
of its files. --key FILE (clonecd key generate) signs it: MANIFEST.minisig
is written inside the version before it appears in the store, and cloners
built with --trust FILE.pub then use only what it lists. Publishing
without a key needs --unsigned. A passphrase-protected key (minisign -G)
asks for its passphrase on the terminal.

` + storeHelp,
		Example: `  clonecd publish /data/node.cpio.gz --layout node.sfdisk --key /root/.clonecd/clonecd.key --note "kernel 6.1.0-50"
  clonecd publish node.cpio.gz --version 1.20 --key clonecd.key    # keeps current's layout
  clonecd publish node.cpio.gz --no-promote --ks ks.cfg --nodes nodes --key clonecd.key
  clonecd publish --unsigned --json node.cpio.gz | jq -r .version`,
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
	fl.StringVar(&f.key, "key", "", "sign the version's MANIFEST with this minisign secret key `FILE` (clonecd key generate)")
	fl.BoolVar(&f.unsigned, "unsigned", false, "publish without a signature (cloners that trust a key refuse the version)")
	fl.BoolVar(&f.force, "force", false, "make a version lower than the current one current")
	fl.BoolVar(&f.json, "json", false, "print the new version as JSON")
	fl.BoolVarP(&f.quiet, "quiet", "q", false, "no progress meter (there is none unless standard error is a terminal)")
	return c
}

func runPublish(_ context.Context, out Output, f *publishFlags, args []string) error {
	switch {
	case f.key == "" && !f.unsigned:
		return UsageError("no --key: sign the version with --key FILE (clonecd key generate), or publish it with --unsigned")
	case f.key != "" && f.unsigned:
		return UsageError("--key and --unsigned exclude each other")
	}
	var key *trust.SecretKey
	if f.key != "" {
		k, err := trust.LoadSecretKey(f.key, passphrase(out))
		if err != nil {
			return err
		}
		key = k
	}
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
	pxeBootFiles(files, out.Stderr)
	meter := &stageMeter{w: out.Stderr, label: "publish", quiet: f.quiet}
	e, err := s.Publish(args[0], versions.PublishOptions{
		Version: string(f.version), Note: f.note, Layout: f.layout, NoPromote: f.noPromote, Force: f.force, Files: files, Key: key,
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
	fmt.Fprintf(out.Stdout, "published %s (%s, sha256 %s, %s) in %s: %s\n", e.Version, progress.Bytes(e.Size), short(e.SHA256), signedBy(*e), s.Dir, state)
	return nil
}

// signedBy says how a version is signed, as publish and images print it.
func signedBy(e versions.Entry) string {
	if !e.Signed {
		return "unsigned"
	}
	return "signed by key " + e.KeyID
}

// passphrase asks for a secret key's passphrase on the terminal; without
// one, an encrypted key is refused with what to do.
func passphrase(out Output) trust.Passphrase {
	f, ok := out.Stdin.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return nil
	}
	return func(file string) (string, error) {
		fmt.Fprintf(out.Stderr, "passphrase of %s: ", file)
		b, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(out.Stderr)
		return string(b), err
	}
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
