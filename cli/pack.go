package cli

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/clonecd/clonecd/cpio"
	"github.com/clonecd/clonecd/image"
	"github.com/clonecd/clonecd/medium"
	"github.com/clonecd/clonecd/progress"
)

type packFlags struct {
	output, format, compress    string
	jobs, level                 int
	quiet, noDefaults, noXattrs bool
	exclude, include            patternsFlag
	excludeFrom                 []string
}

func packCmd(out Output) *cobra.Command {
	f := &packFlags{}
	c := &cobra.Command{
		Use:   "pack [flags] ROOT",
		Short: "pack a golden node's root tree into node.cpio.gz or node.cpio.zst (+ .sha256)",
		Long: `Writes the tree at ROOT as a gzip'd cpio archive (like
  cd ROOT && find . -xdev | cpio -o -H newc | gzip)
or with --compress zstd as node.cpio.zst (| zstd -T0 -3), which restores
about twice as fast and is smaller; gzip stays the default (the Medusa
format, what GNU cpio and gzip -dc read).
in a stable sorted order, without crossing filesystems, keeping regular
files, directories, symlinks, hardlinks (data stored once), char and block
devices, FIFOs, modes incl. setuid/setgid/sticky, numeric owners, mtimes,
and xattrs (file capabilities such as ping's) in a record plain GNU cpio
ignores. Sockets are skipped with a warning. Files of 4 GiB or more cannot
be stored in cpio: leave them out with --exclude. IMAGE.sha256 is written
beside the image (sha256sum format). A .gz name for a zstd image (or .zst
for gzip) is refused before anything is packed. Like gzip, pack will not
write the archive to a terminal.

Left out by default (the directories themselves stay; --no-default-excludes
or --include PATTERN keep them):
  ` + strings.Join(image.DefaultExcludes, "\n  ") + `
Kept as an empty file: ` + strings.Join(image.DefaultEmptied, " ") + `

Patterns (--exclude, --include, --exclude-from FILE, one a line) are
rsync-style: a leading / anchors at ROOT, otherwise they match the end of
the path; * and ? stay within a component, ** crosses; a trailing / matches
directories only; DIR/*** is DIR and everything below it. Quote them, or
the shell expands them first.`,
		Example: `  clonecd pack -o /data/node.cpio.gz /
  clonecd pack --compress zstd -o /data/node.cpio.zst /
  clonecd pack --format crc -j 4 --level 9 -o node.cpio.gz /mnt/golden
  clonecd pack --exclude '/home/***' --exclude '*.pyc' -o node.cpio.gz /
  clonecd pack -o - /mnt/golden | ssh master 'cat > node.cpio.gz'`,
		Args: exactArgs(1, "one ROOT"),
		RunE: func(c *cobra.Command, args []string) error { return runPack(c.Context(), out, f, args) },
	}
	fl := c.Flags()
	fl.StringVarP(&f.output, "output", "o", "", "output `FILE` (\"-\": standard output; default: "+medium.ImageGzip+", with --compress zstd "+medium.ImageZstd+")")
	oneOfVar(fl, &f.format, "format", "newc", []string{"newc", "crc"}, "cpio format: newc, or crc (070702, checksummed)")
	oneOfVar(fl, &f.compress, "compress", "gzip", []string{"gzip", "zstd"}, "compression: gzip, or zstd (faster restore, smaller)")
	intVarP(fl, &f.jobs, "jobs", "j", 0, 1, 256, "compression threads, 1-256 (default: one per CPU)")
	intVarP(fl, &f.level, "level", "", 0, 1, 19, "compression level: gzip 1-9 (default 6), zstd 1-19 (default 3)")
	fl.BoolVarP(&f.quiet, "quiet", "q", false, "no progress, no summary")
	fl.BoolVar(&f.noDefaults, "no-default-excludes", false, "do not leave out the default runtime trees and identity files")
	fl.BoolVar(&f.noXattrs, "no-xattrs", false, "do not record extended attributes")
	fl.Var(&f.exclude, "exclude", "leave out paths matching `PATTERN` (repeatable)")
	fl.Var(&f.include, "include", "keep paths matching `PATTERN` even if excluded (repeatable)")
	fl.StringArrayVar(&f.excludeFrom, "exclude-from", nil, "read exclude patterns from `FILE`, one a line (repeatable)")
	return c
}

func runPack(_ context.Context, out Output, f *packFlags, args []string) error {
	root := args[0]
	format, err := cpio.ParseFormat(f.format)
	if err != nil {
		return UsageError("--format: %v", err)
	}
	comp, err := image.ParseCompression(f.compress)
	if err != nil {
		return UsageError("--compress: %v", err)
	}
	if err := comp.CheckLevel(f.level); err != nil {
		return UsageError("--level: %v", err)
	}
	if f.output == "" {
		f.output = comp.ImageName()
	}
	excl := append([]string(nil), f.exclude...)
	for _, file := range f.excludeFrom {
		ps, err := image.ReadPatterns(file)
		if err != nil {
			return UsageError("--exclude-from: %v", err)
		}
		excl = append(excl, ps...)
	}
	filter, err := image.NewFilter(f.noDefaults, excl, f.include)
	if err != nil {
		return UsageError("%v", err)
	}
	if f.output == "-" {
		if progress.IsTerminal(out.Stdout) {
			return UsageError("refusing to write the archive to a terminal: redirect it, or give -o FILE")
		}
	} else if err := checkOutput(f.output); err != nil {
		return err
	}
	var total int64
	if !f.quiet && progress.IsTerminal(out.Stderr) {
		total, _ = image.Measure(root, filter)
	}
	meter := progress.New(out.Stderr, "pack", total, f.quiet)
	o := image.PackOptions{Format: format, Compress: comp, Filter: filter, Level: f.level, Threads: f.jobs,
		NoXattrs: f.noXattrs, Progress: meter, Warn: warner(out.Stderr, "clonecd pack")}
	start := time.Now()
	var st *image.Stats
	var sum string
	if f.output == "-" {
		if fi, err := statWriter(out.Stdout); err == nil && fi.Mode().IsRegular() {
			o.Skip = append(o.Skip, fi) // pack / -o - > /node.cpio.gz
		}
		st, err = image.Pack(root, out.Stdout, o)
	} else {
		st, sum, err = image.PackFile(root, f.output, o)
	}
	meter.Done()
	if err != nil {
		return err
	}
	if f.quiet {
		return nil
	}
	size := ""
	if fi, err := os.Stat(f.output); err == nil && f.output != "-" {
		size = fmt.Sprintf(" -> %s", progress.Bytes(fi.Size()))
	}
	fmt.Fprintf(out.Stderr, "packed %s: %d entries (%d files, %d dirs, %d symlinks, %d devices/fifos, %d hardlinks, %d xattrs), %s of data%s in %.1fs; %d paths left out\n",
		root, st.Entries, st.Files, st.Dirs, st.Symlinks, st.Devices, st.Hardlinks, st.Xattrs,
		progress.Bytes(st.Bytes), size, time.Since(start).Seconds(), st.Excluded)
	if sum != "" {
		fmt.Fprintf(out.Stderr, "wrote %s and %s (sha256 %s)\n", f.output, medium.SumName(f.output), sum)
	}
	return nil
}
