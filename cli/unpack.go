package cli

import (
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/clonecd/clonecd/image"
	"github.com/clonecd/clonecd/progress"
)

func init() {
	Register(&Command{
		Name:    "unpack",
		Args:    "[flags] IMAGE DIR",
		Summary: "restore node.cpio.gz (gzip'd or plain, newc or crc) into DIR",
		Help: `Restores IMAGE into DIR (created if missing): files, directories,
symlinks, hardlinks in either order, devices, FIFOs, owners, modes (setuid
kept), mtimes (directories last) and xattrs. crc checksums are verified.
Reads the image once as a stream ("-" is standard input). Refuses absolute
paths, ".." components, writing through symlinks and duplicate names:
nothing is written outside DIR. A truncated or corrupt image ends with an
error naming the entry and its offset.

Examples:
  clonecd unpack node.cpio.gz /mnt/newroot
  clonecd unpack initrd.img initrd
  curl -s http://master/node.cpio.gz | clonecd unpack - /mnt`,
		Setup: func(fs *flag.FlagSet) Runner {
			quiet := fs.Bool("q", false, "quiet: no progress, no summary")
			noChown := fs.Bool("no-chown", false, "keep files owned by the unpacking user")
			noX := fs.Bool("no-xattrs", false, "do not restore extended attributes")
			return func(args []string) error {
				if len(args) != 2 {
					return UsageError("unpack needs IMAGE and DIR (try clonecd unpack --help)")
				}
				img, dir := args[0], args[1]
				if err := os.MkdirAll(dir, 0o755); err != nil {
					return err
				}
				in, total, err := openImage(img)
				if err != nil {
					return err
				}
				defer in.Close()
				meter := progress.New(Stderr, "unpack", total, *quiet)
				start := time.Now()
				// The meter counts compressed bytes read, for a true ETA.
				st, err := image.Unpack(meter.Reader(in), dir, image.UnpackOptions{NoChown: *noChown, NoXattrs: *noX, Progress: image.ItemsOnly(meter),
					Warn: func(s string) { fmt.Fprintf(Stderr, "clonecd unpack: warning: %s\n", s) }})
				meter.Done()
				if err != nil {
					if img != "-" {
						return fmt.Errorf("%s: %w", img, err)
					}
					return err
				}
				if !*quiet {
					fmt.Fprintf(Stderr, "unpacked %s into %s: %d entries (%d files, %d dirs, %d symlinks, %d devices/fifos, %d hardlinks, %d xattrs), %s of data in %.1fs\n",
						img, dir, st.Entries, st.Files, st.Dirs, st.Symlinks, st.Devices, st.Hardlinks, st.Xattrs,
						progress.Bytes(st.Bytes), time.Since(start).Seconds())
				}
				return nil
			}
		},
	})
}

// openImage opens an image argument: a file, or standard input for "-"
// (which closing leaves open). total is the file's size when it is a
// regular file, else 0.
func openImage(name string) (rc io.ReadCloser, total int64, err error) {
	f := os.Stdin
	rc = io.NopCloser(f)
	if name != "-" {
		if f, err = os.Open(name); err != nil {
			return nil, 0, err
		}
		rc = f
	}
	if fi, err := f.Stat(); err == nil && fi.Mode().IsRegular() {
		total = fi.Size()
	}
	return rc, total, nil
}
