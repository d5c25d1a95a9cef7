package nodesync

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/clonecd/clonecd/image"
)

// Options tune Sync.
type Options struct {
	// Version is written to /etc/clonecd-version once every entry is
	// current; "": the file is left as it is.
	Version string
	// DryRun lists what would change and changes nothing.
	DryRun bool
	// NoDelete keeps what the image no longer has.
	NoDelete bool
	// Checksum compares the content of every regular file, not only of
	// those whose size, time, mode or owner differ.
	Checksum bool
	// Exclude are more patterns (rsync-style, as pack's --exclude) of
	// paths sync leaves alone, besides the identity files, NodeState,
	// image.DefaultExcludes and the node's LocalExcludes.
	Exclude []string
	// CrossMounts are the mount points below the root that hold image
	// content (the layout's other partitions); every other mounted
	// filesystem is left alone. nil: {"/boot"}.
	CrossMounts []string
	// Batch is how many bytes of new content are staged (written beside
	// their targets) before the filesystem is synced and they are renamed
	// into place; 0: 256 MiB.
	Batch int64
	// Progress counts bytes of content written and entries done; may be
	// nil.
	Progress image.Counter
}

// Kind is what a change does to an entry.
type Kind string

// Kinds of change.
const (
	Added    Kind = "added"
	Changed  Kind = "changed"  // content, type, link target or device
	Metadata Kind = "metadata" // owner, mode, time or xattrs only
	Removed  Kind = "removed"
)

// Change is one entry sync changed (or, with DryRun, would change).
type Change struct {
	Path string
	Kind Kind
	Type Type   // the entry's type (the node's, when Removed)
	Size int64  // content bytes of a regular file
	What string // "content", "mode 0644, image has 0755", ...
}

// Failure is an entry sync did not bring up to date: it is as it was.
type Failure struct {
	Path string
	Err  error
}

// MarshalJSON writes a failure as {"Path": ..., "Error": "..."} (for
// --json).
func (f Failure) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct{ Path, Error string }{f.Path, f.Err.Error()})
}

// Report is what Sync did.
type Report struct {
	Changes []Change
	Failed  []Failure

	Entries                           int // entries of node.files compared
	LeftAlone                         int // of them, left alone (identity files, excluded, mounts)
	Added, Changed, Metadata, Removed int
	// Content bytes: of added and of changed regular files (their new
	// size), of removed ones (their old size).
	AddedBytes, ChangedBytes, RemovedBytes int64
	Fetched                                int64 // content bytes that came from the source
	FetchedBlobs                           int
	Copied                                 int64 // content bytes copied from files the node had
	Hashed                                 int64 // bytes of local files read to compare contents
	// DeletesSkipped: removals were left out because of failures (as
	// rsync does after an I/O error), or by NoDelete.
	DeletesSkipped int
	// Boot: /boot, the kernel, its modules or GRUB's settings changed;
	// the caller reruns update-grub (unless told not to).
	Boot bool
	// Grub: GRUB's own files (/usr/lib/grub) changed; the caller reruns
	// grub-install.
	Grub     bool
	Duration time.Duration
}

// Current reports whether the root already was what the image holds
// (no change made, or with DryRun none pending) and nothing failed.
func (r *Report) Current() bool { return len(r.Changes) == 0 && len(r.Failed) == 0 }

func (r *Report) add(c Change) {
	r.Changes = append(r.Changes, c)
	switch c.Kind {
	case Added:
		r.Added++
		r.AddedBytes += c.Size
	case Changed:
		r.Changed++
		r.ChangedBytes += c.Size
	case Metadata:
		r.Metadata++
	case Removed:
		r.Removed++
		r.RemovedBytes += c.Size
	}
	if c.Kind != Metadata {
		switch {
		case strings.HasPrefix(c.Path, "/usr/lib/grub/"):
			r.Grub = true
		case bootPath(c.Path):
			r.Boot = true
		}
	}
}

// bootPath: a change there needs update-grub.
func bootPath(p string) bool {
	for _, pre := range []string{"/boot/", "/lib/modules/", "/usr/lib/modules/", "/etc/grub.d/", "/vmlinuz", "/initrd.img"} {
		if strings.HasPrefix(p, pre) {
			return true
		}
	}
	return p == "/etc/default/grub"
}

// IncompleteError is Sync's error when some entries were not updated.
type IncompleteError struct{ Failed []Failure }

func (e *IncompleteError) Error() string {
	f := e.Failed[0]
	if len(e.Failed) == 1 {
		return fmt.Sprintf("%s not updated: %v", f.Path, f.Err)
	}
	return fmt.Sprintf("%d entries not updated (the first, %s: %v)", len(e.Failed), f.Path, f.Err)
}

// Format writes the report as text: one line per change when verbose,
// failures, then the totals.
func (r *Report) Format(w io.Writer, verbose bool) {
	if verbose {
		for _, c := range r.Changes {
			fmt.Fprintf(w, "%-8s %s (%s)\n", c.Kind, c.Path, c.What)
		}
	}
	for _, f := range r.Failed {
		fmt.Fprintf(w, "FAILED   %s: %v\n", f.Path, f.Err)
	}
	fmt.Fprintf(w, "%d entries: %d added (%d bytes), %d changed (%d bytes), %d metadata only, %d removed (%d bytes), %d left alone\n",
		r.Entries, r.Added, r.AddedBytes, r.Changed, r.ChangedBytes, r.Metadata, r.Removed, r.RemovedBytes, r.LeftAlone)
	fmt.Fprintf(w, "fetched %d bytes in %d blobs, copied %d bytes locally, hashed %d bytes, in %v\n",
		r.Fetched, r.FetchedBlobs, r.Copied, r.Hashed, r.Duration.Round(time.Millisecond))
	if r.DeletesSkipped > 0 {
		fmt.Fprintf(w, "%d removals skipped\n", r.DeletesSkipped)
	}
	if r.Boot || r.Grub {
		fmt.Fprintf(w, "boot files changed: update-grub needed (grub-install: %v)\n", r.Grub)
	}
}
