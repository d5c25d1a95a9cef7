package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/clonecd/clonecd/clone"
	"github.com/clonecd/clonecd/fleet"
	"github.com/clonecd/clonecd/medium"
	"github.com/clonecd/clonecd/netclone"
	"github.com/clonecd/clonecd/nodesync"
	"github.com/clonecd/clonecd/partition"
	"github.com/clonecd/clonecd/progress"
	"github.com/clonecd/clonecd/trust"
)

// syncFlags are the flags of sync and sync-all; the first group is
// passed on to each node by sync NODE... and sync-all.
type syncFlags struct {
	server                                   urlFlag
	version                                  versionFlag
	dryRun, checksum, noDelete, noBootloader bool
	exclude                                  patternsFlag
	trust                                    []string
	access                                   accessFlags

	node            nodeFlag
	root, disk, dir string
	verbose, asJSON bool
	fleet           fleetFlags
}

func (f *syncFlags) define(fs *pflag.FlagSet) {
	fs.Var(&f.server, "server", "server `URL` (default $CLONECD_SERVER)")
	fs.Var(&f.version, "version", "sync to this version, MAJOR.MINOR, instead of the node's (its canary pin, else current)")
	fs.BoolVarP(&f.dryRun, "dry-run", "n", false, "print what would change and change nothing (exit 1 when changes are pending)")
	fs.BoolVarP(&f.checksum, "checksum", "c", false, "compare the content of every file, not only of those whose size, time, mode or owner differ")
	fs.BoolVar(&f.noDelete, "no-delete", false, "keep what the image no longer has")
	fs.BoolVar(&f.noBootloader, "no-bootloader", false, "do not rerun update-grub or grub-install when boot files changed")
	fs.Var(&f.exclude, "exclude", "leave paths matching `PATTERN` alone (rsync-style, as pack's; repeatable)")
	fs.StringArrayVar(&f.trust, "trust", nil, "refuse a version not signed by the public key `FILE.pub`, or one of every *.pub in a DIR (repeatable)")
	fs.BoolVar(&f.asJSON, "json", false, "print the result as JSON")
	fs.StringVar(&f.dir, "dir", defaultStore(), "the server's image `DIR` on this machine: its secret and certificate ($CLONECD_STORE)")
	f.access.define(fs)
}

const syncHelp = `Brings a running node's root (--root, default /) to the served version
without reinstalling or rebooting, as SystemImager's si_updateclient does:
it compares the node's files with the version's node.files (size, time,
mode, owner, xattrs; the content where those differ, every file with
--checksum), fetches only the contents the node lacks from the server's
blob store, writes each file beside its target and renames it into place,
makes owners, modes, file capabilities, hard links, devices and symlinks
exact, and removes what the image no longer has (--no-delete keeps it).
A failure leaves every file old or new and lists those not updated; the
next sync finishes the job.

It never touches the identity files (hostname, machine-id, ssh host keys,
fstab, network setup, /boot/grub, and the network cloner the clone
installed: /boot/clonecd, /usr/local/sbin/clonecd, its GRUB entry and
GRUB_DEFAULT=saved drop-in), the trees pack leaves out, /data and
the node's other state, paths listed in /etc/clonecd/sync.exclude or
given with --exclude, and mounted filesystems other than the image's own
(/boot). /etc/clonecd-version is set to the new version.

Before the first write: with --trust, the version's MANIFEST must be
signed by a trusted key and node.files must match it; on the running
system (--root /, or with --disk DEV) the disk's partition table must
still be the version's layout, else the node "needs reclone" and nothing
is written. When /boot, the kernel or GRUB's settings changed, update-grub
runs (grub-install too when GRUB's own files changed) unless
--no-bootloader. The result is reported to the server (state done, op
sync, counts, bytes, duration: clonecd status shows it as synced).

With NODE... (a name or a nodeset: s001 's[001-064]') sync runs itself on
each node over ssh (--rsh), --parallel at a time, no reboot, sending each
node its credential on ssh's standard input (from --dir's secret) and the
flags above, then prints a table: node, result, changes, bytes, duration.

` + accessHelp + `

Exit status: 0 synced, or already current; 1 with --dry-run when changes
are pending, when the node needs reclone, or (NODE..., sync-all) when some
nodes failed or need reclone; 2 on an error (some entries not updated, the
server unreachable, a refused signature).`

func syncCmd(out Output) *cobra.Command {
	f := &syncFlags{}
	c := &cobra.Command{
		Use:   "sync [flags] [NODE...]",
		Short: "update a running node in place to the served version, moving only what changed",
		Long:  syncHelp,
		Example: `  clonecd sync --server https://master:8443 --trust /etc/clonecd/clonecd.key.pub
  clonecd sync --server https://master:8443 --dry-run
  clonecd sync --server https://master:8443 --root /mnt/node --disk none
  clonecd sync --server https://master:8443 --parallel 16 's[001-064]'`,
		Args: nodesetArgs,
		RunE: func(c *cobra.Command, args []string) error { return runSync(c.Context(), out, f, args) },
	}
	f.define(c.Flags())
	c.Flags().Var(&f.node, "node", "report to the server as node `NAME` (default: the credential's node)")
	c.Flags().StringVar(&f.root, "root", "/", "the node's root `DIR`")
	c.Flags().StringVar(&f.disk, "disk", "", "check `DEV`'s partition table against the version's layout first (default: the root's disk when --root is /; none: no check)")
	c.Flags().BoolVarP(&f.verbose, "verbose", "V", false, "print every change")
	f.fleet.define(c.Flags())
	return c
}

// syncResult is sync --json's output, and what sync NODE... reads from
// each node.
type syncResult struct {
	Node    string  `json:"node,omitempty"`
	Root    string  `json:"root,omitempty"`
	Version string  `json:"version"`
	Result  string  `json:"result"`           // synced, current, pending (--dry-run), needs reclone, failed
	Reason  string  `json:"reason,omitempty"` // needs reclone: why; failed: the error
	Trust   string  `json:"trust,omitempty"`
	Seconds float64 `json:"seconds"`
	// Report is what sync did (with --dry-run: would do); nil when it
	// did not get to compare.
	Report *syncReport `json:"report,omitempty"`
}

// syncReport is nodesync.Report for --json.
type syncReport struct {
	Entries        int          `json:"entries"`
	LeftAlone      int          `json:"left_alone"`
	Added          int          `json:"added"`
	Changed        int          `json:"changed"`
	Metadata       int          `json:"metadata"`
	Removed        int          `json:"removed"`
	AddedBytes     int64        `json:"added_bytes"`
	ChangedBytes   int64        `json:"changed_bytes"`
	RemovedBytes   int64        `json:"removed_bytes"`
	Fetched        int64        `json:"fetched"` // content bytes from the server
	FetchedBlobs   int          `json:"fetched_blobs"`
	Copied         int64        `json:"copied"` // content bytes copied from the node's own files
	Hashed         int64        `json:"hashed"`
	DeletesSkipped int          `json:"deletes_skipped,omitempty"`
	Boot           bool         `json:"boot,omitempty"` // update-grub needed
	Grub           bool         `json:"grub,omitempty"` // grub-install needed
	Changes        []syncChange `json:"changes"`
	Failed         []syncChange `json:"failed,omitempty"` // not updated: What is the error
}

type syncChange struct {
	Path string `json:"path"`
	Kind string `json:"kind,omitempty"` // added, changed, metadata, removed
	Type string `json:"type,omitempty"`
	Size int64  `json:"size,omitempty"`
	What string `json:"what"`
}

func newSyncReport(r *nodesync.Report) *syncReport {
	if r == nil {
		return nil
	}
	out := &syncReport{Entries: r.Entries, LeftAlone: r.LeftAlone, Added: r.Added, Changed: r.Changed, Metadata: r.Metadata,
		Removed: r.Removed, AddedBytes: r.AddedBytes, ChangedBytes: r.ChangedBytes, RemovedBytes: r.RemovedBytes,
		Fetched: r.Fetched, FetchedBlobs: r.FetchedBlobs, Copied: r.Copied, Hashed: r.Hashed,
		DeletesSkipped: r.DeletesSkipped, Boot: r.Boot, Grub: r.Grub, Changes: []syncChange{}}
	for _, c := range r.Changes {
		out.Changes = append(out.Changes, syncChange{Path: c.Path, Kind: string(c.Kind), Type: c.Type.String(), Size: c.Size, What: c.What})
	}
	for _, f := range r.Failed {
		out.Failed = append(out.Failed, syncChange{Path: f.Path, What: f.Err.Error()})
	}
	return out
}

// The results of a sync.
const (
	resultSynced  = "synced"
	resultCurrent = "current"
	resultPending = "pending"
	resultReclone = "needs reclone"
	resultFailed  = "failed"
)

func runSync(ctx context.Context, out Output, f *syncFlags, args []string) error {
	if len(args) > 0 {
		if f.root != "/" || f.disk != "" || f.node != "" {
			return UsageError("--root, --disk and --node are for a sync on this machine, not with NODE... (each node syncs its own root)")
		}
		nodes, err := parseNodes(args)
		if err != nil {
			return err
		}
		return syncNodes(ctx, out, f, nodes)
	}
	server, err := serverURL(f.server)
	if err != nil {
		return err
	}
	if server == "" {
		return UsageError("--server URL is required (or set CLONECD_SERVER)")
	}
	if f.access.credFile == "-" {
		c, err := readCredential(out, "-")
		if err != nil {
			return err
		}
		f.access.token, f.access.credFile = credentialFlag(c), ""
	} else if f.access.credFile == "" && f.access.token.User == "" && os.Getenv(envToken) == "" {
		if _, err := os.Stat(trust.CredentialFile); err == nil {
			f.access.credFile = trust.CredentialFile // the node's own (ramclone --credential)
		}
	}
	user := trust.AdminUser
	if f.node != "" {
		user = string(f.node)
	}
	acc, err := f.access.access(string(server), f.dir, user)
	if err != nil {
		return err
	}
	node := string(f.node)
	if node == "" && acc.Credential.User != trust.AdminUser {
		node = acc.Credential.User
	}
	var verifier *trust.Verifier
	if len(f.trust) > 0 {
		if verifier, err = trust.LoadVerifier(f.trust...); err != nil {
			return fmt.Errorf("--trust: %w", err)
		}
		if len(verifier.Keys()) == 0 {
			return fmt.Errorf("--trust: no public key (*.pub) in %q", f.trust)
		}
	}
	root, err := filepath.Abs(f.root)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	start := time.Now()
	res := syncResult{Node: node, Root: root}
	rep, err := syncRoot(ctx, out, f, string(server), acc, verifier, root, &res)
	res.Seconds, res.Report = time.Since(start).Seconds(), newSyncReport(rep)
	switch {
	case res.Result == resultReclone:
	case err != nil:
		res.Result, res.Reason = resultFailed, err.Error()
	case f.dryRun && !rep.Current():
		res.Result = resultPending
	case rep.Current():
		res.Result = resultCurrent
	default:
		res.Result = resultSynced
	}
	if !f.dryRun && res.Version != "" {
		reportSync(ctx, out, string(server), acc, node, &res, start)
	}
	if err == nil && rep != nil && !f.dryRun && (rep.Boot || rep.Grub) {
		err = rerunBootloader(out, f, root, rep)
	}
	if f.asJSON {
		if jerr := writeJSON(out, res); jerr != nil && err == nil {
			err = jerr
		}
	} else if rep != nil {
		rep.Format(out.Stdout, f.verbose || f.dryRun)
		fmt.Fprintf(out.Stdout, "%s: %s, version %s", root, res.Result, res.Version)
		if res.Trust != "" {
			fmt.Fprintf(out.Stdout, " (%s)", res.Trust)
		}
		fmt.Fprintln(out.Stdout)
	} else if res.Result == resultReclone {
		fmt.Fprintf(out.Stdout, "%s: needs reclone: %s\n", root, res.Reason)
	}
	switch {
	case err != nil:
		return err
	case res.Result == resultPending || res.Result == resultReclone:
		return &ExitError{Code: exitNo}
	}
	return nil
}

// syncRoot checks the version (signature, layout) and syncs root to it.
// It fills res's version, trust and, for a node whose table differs,
// its result.
func syncRoot(ctx context.Context, out Output, f *syncFlags, server string, acc netclone.Access, v *trust.Verifier, root string, res *syncResult) (*nodesync.Report, error) {
	m, err := netclone.NewMedia(ctx, server, netclone.MediaOptions{Access: acc, Version: string(f.version), Retries: 3})
	if err != nil {
		return nil, err
	}
	res.Version = m.Version
	man, st, err := v.ReadManifest(m)
	if err != nil {
		return nil, err
	}
	if v != nil {
		res.Trust = st.String()
	}
	if man == nil {
		return nil, fmt.Errorf("version %s on %s has no %s: publish it again with this clonecd", m.Version, server, medium.ManifestFile)
	}
	file, ok := man.Lookup(medium.Files)
	if !ok {
		return nil, fmt.Errorf("version %s on %s has no %s (published by an older clonecd): publish it again to sync nodes to it", m.Version, server, medium.Files)
	}
	sum, err := nodesync.ParseSum(file.SHA256)
	if err != nil {
		return nil, fmt.Errorf("%s of version %s: %s: %w", medium.ManifestFile, m.Version, medium.Files, err)
	}
	if reason, err := layoutDiffers(f, m, man, root); err != nil {
		return nil, err
	} else if reason != "" {
		res.Result, res.Reason = resultReclone, reason
		return nil, nil
	}
	src := &nodesync.HTTPSource{URL: server + nodesync.Prefix, Client: acc.HTTPClient(), Header: acc.Header()}
	o := nodesync.Options{Version: m.Version, DryRun: f.dryRun, NoDelete: f.noDelete, Checksum: f.checksum, Exclude: f.exclude}
	if !f.asJSON && progress.IsTerminal(out.Stderr) {
		fmt.Fprintf(out.Stderr, "syncing %s to version %s from %s\n", root, m.Version, server)
	}
	return nodesync.SyncSum(ctx, root, sum, src, o)
}

// layoutDiffers compares the disk's partition table with the version's
// layout (--disk DEV; by default the running system's disk): the reason
// the node needs a reclone, or "".
func layoutDiffers(f *syncFlags, fsys fs.FS, man *medium.Manifest, root string) (string, error) {
	disk := f.disk
	switch {
	case disk == "none":
		return "", nil
	case disk == "" && root != "/":
		return "", nil
	case disk == "":
		d, err := clone.FindDisk("", "", "")
		if err != nil {
			return "", fmt.Errorf("finding the disk to check the layout on (give --disk DEV, or --disk none): %w", err)
		}
		disk = d
	}
	b, err := trust.ReadFile(fsys, man, medium.Layout)
	if err != nil {
		return "", err
	}
	l, err := partition.ParseLayout(bytes.NewReader(b))
	if err != nil {
		return "", fmt.Errorf("%s: %w", medium.Layout, err)
	}
	dec, err := partition.CheckTable(l, disk)
	if err != nil {
		return "", err
	}
	if dec.Preserve {
		return "", nil
	}
	return fmt.Sprintf("%s: %s", disk, dec.Reason), nil
}

// reportSync tells the server what the sync did (op sync: state done,
// or failed with the error), best effort.
func reportSync(ctx context.Context, out Output, server string, acc netclone.Access, node string, res *syncResult, start time.Time) {
	if node == "" {
		return
	}
	src, err := netclone.NewSource(server, "", acc)
	if err != nil {
		return
	}
	st := fleet.State{Node: node, Version: res.Version, Op: fleet.OpSync, Step: "sync", Trust: res.Trust,
		Started: start.UTC(), Finished: time.Now().UTC()}
	switch res.Result {
	case resultFailed, resultReclone:
		st.State, st.Error = fleet.Failed, res.Result+": "+res.Reason
	default:
		st.State = fleet.Done
	}
	if r := res.Report; r != nil {
		st.Done, st.Total = r.Fetched, r.AddedBytes+r.ChangedBytes
		st.Detail = fmt.Sprintf("%s: %d added, %d changed, %d metadata, %d removed; fetched %d bytes in %d blobs in %.1fs",
			res.Result, r.Added, r.Changed, r.Metadata, r.Removed, r.Fetched, r.FetchedBlobs, res.Seconds)
	}
	if _, err := src.Set(ctx, st); err != nil {
		fmt.Fprintf(out.Stderr, "clonecd sync: reporting to %s: %v\n", server, err)
	}
}

// rerunBootloader runs update-grub (and grub-install when GRUB's own
// files changed) on the running system; for another root it says what
// to run.
func rerunBootloader(out Output, f *syncFlags, root string, rep *nodesync.Report) error {
	if f.noBootloader {
		fmt.Fprintln(out.Stderr, "clonecd sync: boot files changed; --no-bootloader: update-grub not run")
		return nil
	}
	if root != "/" {
		fmt.Fprintf(out.Stderr, "clonecd sync: boot files changed in %s; run update-grub inside it\n", root)
		return nil
	}
	if rep.Grub {
		args := []string{}
		if _, err := os.Stat("/sys/firmware/efi"); errors.Is(err, fs.ErrNotExist) {
			disk := f.disk
			if disk == "" || disk == "none" {
				d, err := clone.FindDisk("", "", "")
				if err != nil {
					return fmt.Errorf("grub-install: finding the disk (give --disk DEV): %w", err)
				}
				disk = d
			}
			args = append(args, disk)
		}
		if err := runTool(out, "grub-install", args...); err != nil {
			return err
		}
	}
	return runTool(out, "update-grub")
}

func runTool(out Output, name string, args ...string) error {
	cmd := exec.Command(name, args...)
	var buf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &buf, &buf
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s: %w: %s", name, err, bytes.TrimSpace(buf.Bytes()))
	}
	io.Copy(out.Stderr, &buf)
	return nil
}
