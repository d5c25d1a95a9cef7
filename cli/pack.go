package cli

import (
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/clonecd/clonecd/cpio"
	"github.com/clonecd/clonecd/image"
	"github.com/clonecd/clonecd/progress"
)

// listFlag is a repeatable string flag.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(s string) error { *l = append(*l, s); return nil }

func init() {
	Register(&Command{
		Name:    "pack",
		Args:    "[flags] ROOT",
		Summary: "pack a golden node's root tree into node.cpio.gz (+ .sha256)",
		Help: `Writes the tree at ROOT as a gzip'd cpio archive (like
  cd ROOT && find . -xdev | cpio -o -H newc | gzip)
in a stable sorted order, without crossing filesystems, keeping regular
files, directories, symlinks, hardlinks (data stored once), char and block
devices, FIFOs, modes incl. setuid/setgid/sticky, numeric owners, mtimes,
and xattrs (file capabilities such as ping's) in a record plain GNU cpio
ignores. Sockets are skipped with a warning. Files of 4 GiB or more cannot
be stored in cpio: leave them out with --exclude. IMAGE.sha256 is written
beside the image (sha256sum format).

Left out by default (the directories themselves stay; --no-default-excludes
or --include PATTERN keep them):
  ` + strings.Join(image.DefaultExcludes, "\n  ") + `
Kept as an empty file: ` + strings.Join(image.DefaultEmptied, " ") + `

Patterns (--exclude, --include, --exclude-from FILE, one a line) are
rsync-style: a leading / anchors at ROOT, otherwise they match the end of
the path; * and ? stay within a component, ** crosses; a trailing / matches
directories only; DIR/*** is DIR and everything below it.

Examples:
  clonecd pack -o /data/node.cpio.gz /
  clonecd pack --format crc -j 4 --level 9 -o node.cpio.gz /mnt/golden
  clonecd pack --exclude /home/*** --exclude '*.pyc' -o node.cpio.gz /
  clonecd pack -o - /mnt/golden | ssh master 'cat > node.cpio.gz'`,
		Setup: func(fs *flag.FlagSet) Runner {
			out := fs.String("o", "node.cpio.gz", "output `FILE` (\"-\" for standard output)")
			format := fs.String("format", "newc", "cpio format: newc or crc (070702, checksummed)")
			threads := fs.Int("j", 0, "gzip threads (0: one per CPU)")
			level := fs.Int("level", 6, "gzip level 1-9")
			quiet := fs.Bool("q", false, "quiet: no progress, no summary")
			noDef := fs.Bool("no-default-excludes", false, "do not leave out the default runtime trees and identity files")
			noX := fs.Bool("no-xattrs", false, "do not record extended attributes")
			var excl, incl, exFrom listFlag
			fs.Var(&excl, "exclude", "leave out paths matching `PATTERN` (repeatable)")
			fs.Var(&incl, "include", "keep paths matching `PATTERN` even if excluded (repeatable)")
			fs.Var(&exFrom, "exclude-from", "read exclude patterns from `FILE` (repeatable)")
			return func(args []string) error {
				if len(args) != 1 {
					return UsageError("pack needs exactly one ROOT (try clonecd pack --help)")
				}
				root := args[0]
				f, err := cpio.ParseFormat(*format)
				if err != nil {
					return UsageError("%v", err)
				}
				if *level < 1 || *level > 9 {
					return UsageError("--level %d: want 1-9", *level)
				}
				for _, file := range exFrom {
					ps, err := image.ReadPatterns(file)
					if err != nil {
						return UsageError("--exclude-from: %v", err)
					}
					excl = append(excl, ps...)
				}
				filter, err := image.NewFilter(*noDef, excl, incl)
				if err != nil {
					return UsageError("%v", err)
				}
				var total int64
				if !*quiet && progress.IsTerminal(Stderr) {
					total, _ = image.Measure(root, filter)
				}
				meter := progress.New(Stderr, "pack", total, *quiet)
				o := image.PackOptions{Format: f, Filter: filter, Level: *level, Threads: *threads,
					NoXattrs: *noX, Progress: meter,
					Warn: func(s string) { fmt.Fprintf(Stderr, "\r\033[Kclonecd pack: warning: %s\n", s) }}
				if !progress.IsTerminal(Stderr) {
					o.Warn = func(s string) { fmt.Fprintf(Stderr, "clonecd pack: warning: %s\n", s) }
				}
				start := time.Now()
				var st *image.Stats
				var sum string
				if *out == "-" {
					if fi, err := os.Stdout.Stat(); err == nil && fi.Mode().IsRegular() {
						o.Skip = append(o.Skip, fi) // pack / -o - > /node.cpio.gz
					}
					st, err = image.Pack(root, os.Stdout, o)
				} else {
					st, sum, err = image.PackFile(root, *out, o)
				}
				meter.Done()
				if err != nil {
					return err
				}
				if !*quiet {
					size := ""
					if fi, err := os.Stat(*out); err == nil && *out != "-" {
						size = fmt.Sprintf(" -> %s", progress.Bytes(fi.Size()))
					}
					fmt.Fprintf(Stderr, "packed %s: %d entries (%d files, %d dirs, %d symlinks, %d devices/fifos, %d hardlinks, %d xattrs), %s of data%s in %.1fs; %d paths left out\n",
						root, st.Entries, st.Files, st.Dirs, st.Symlinks, st.Devices, st.Hardlinks, st.Xattrs,
						progress.Bytes(st.Bytes), size, time.Since(start).Seconds(), st.Excluded)
					if sum != "" {
						fmt.Fprintf(Stderr, "wrote %s and %s.sha256 (sha256 %s)\n", *out, *out, sum)
					}
				}
				return nil
			}
		},
	})
}
