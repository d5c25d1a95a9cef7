package cli

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/clonecd/clonecd/image"
	"github.com/clonecd/clonecd/progress"
)

type verifyFlags struct {
	quiet, noExtra, noXattrs, json bool
	ignore                         patternsFlag
}

func verifyCmd(out Output) *cobra.Command {
	f := &verifyFlags{}
	c := &cobra.Command{
		Use:   "verify [flags] IMAGE DIR",
		Short: "compare a node's tree with node.cpio.gz (\"slave testing\")",
		Long: `Compares DIR with IMAGE: type, mode, owner, size, content (sha256
of the archive's data and of the file), symlink target, device numbers,
hardlink groups and xattrs, and files in DIR that the image does not hold
(not descending into other filesystems; the runtime trees pack leaves out
are not reported). Every difference is listed on standard output.
Differences in files that a clone personalises (hostname, machine-id, ssh
host keys, fstab, hosts, network setup, GRUB) are listed apart and are not
failures.

Exit status: 0 when DIR matches, 1 when it differs, 2 when the comparison
could not be made (IMAGE unreadable or damaged, DIR missing).`,
		Example: `  clonecd verify node.cpio.gz /
  clonecd verify --no-extra /media/cdrom/node.cpio.gz /mnt/node
  clonecd verify --ignore '/var/log/***' --ignore '/var/lib/systemd/***' node.cpio.gz /
  ssh s001 clonecd verify --json -q /data/node.cpio.gz / | jq .same`,
		Args: exactArgs(2, "IMAGE and DIR"),
		RunE: func(c *cobra.Command, args []string) error { return runVerify(c.Context(), out, f, args) },
	}
	fl := c.Flags()
	fl.BoolVarP(&f.quiet, "quiet", "q", false, "no progress; print only differences")
	fl.BoolVar(&f.noExtra, "no-extra", false, "do not look for files the image does not hold")
	fl.BoolVar(&f.noXattrs, "no-xattrs", false, "do not compare extended attributes")
	fl.Var(&f.ignore, "ignore", "do not compare paths matching `PATTERN` (repeatable; e.g. '/var/log/***' on a live node)")
	fl.BoolVar(&f.json, "json", false, "print the report as JSON")
	return c
}

// verifyReport is verify --json's output.
type verifyReport struct {
	Image       string       `json:"image"`
	Dir         string       `json:"dir"`
	Same        bool         `json:"same"`
	Differences []difference `json:"differences"`
	Identity    []difference `json:"identity"`
	Entries     int          `json:"entries"`
	Files       int          `json:"files"`
	Bytes       int64        `json:"bytes"`
}

type difference struct {
	Path string `json:"path"`
	What string `json:"what"`
}

func differences(ds []image.Difference) []difference {
	out := make([]difference, len(ds))
	for i, d := range ds {
		out[i] = difference{d.Path, d.What}
	}
	return out
}

func runVerify(_ context.Context, out Output, f *verifyFlags, args []string) error {
	img, dir := args[0], args[1]
	in, total, err := openImage(out, img)
	if err != nil {
		return err
	}
	defer in.Close()
	// The meter counts compressed bytes read, for a true ETA.
	meter := progress.New(out.Stderr, "verify", total, f.quiet)
	rep, err := image.Verify(meter.Reader(in), dir, image.VerifyOptions{NoExtra: f.noExtra, NoXattrs: f.noXattrs,
		Skip: f.ignore, Progress: image.ItemsOnly(meter)})
	meter.Done()
	if err != nil {
		return err
	}
	if f.json {
		err = writeJSON(out, verifyReport{Image: img, Dir: dir, Same: rep.OK(),
			Differences: differences(rep.Differences), Identity: differences(rep.Identity),
			Entries: rep.Stats.Entries, Files: rep.Stats.Files, Bytes: rep.Stats.Bytes})
		if err != nil {
			return err
		}
	} else {
		image.FormatReport(out.Stdout, rep)
	}
	if !rep.OK() {
		n, word := len(rep.Differences), "differences"
		if n == 1 {
			word = "difference"
		}
		return &ExitError{Code: exitNo, Err: fmt.Errorf("%s differs from %s: %d %s", dir, img, n, word)}
	}
	if !f.quiet && !f.json {
		fmt.Fprintf(out.Stdout, "%s matches %s: %d entries, %d files, %s of data checked; %d identity differences\n",
			dir, img, rep.Stats.Entries, rep.Stats.Files, progress.Bytes(rep.Stats.Bytes), len(rep.Identity))
	}
	return nil
}

// writeJSON prints v as indented JSON on standard output: with --json
// nothing else goes there.
func writeJSON(out Output, v any) error {
	enc := json.NewEncoder(out.Stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
