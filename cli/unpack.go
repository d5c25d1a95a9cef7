package cli

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/clonecd/clonecd/image"
	"github.com/clonecd/clonecd/progress"
)

type unpackFlags struct {
	quiet, noChown, noXattrs bool
}

func unpackCmd(out Output) *cobra.Command {
	f := &unpackFlags{}
	c := &cobra.Command{
		Use:   "unpack [flags] IMAGE DIR",
		Short: "restore node.cpio.gz (gzip'd or plain, newc or crc) into DIR",
		Long: `Restores IMAGE into DIR (created if missing): files, directories,
symlinks, hardlinks in either order, devices, FIFOs, owners, modes (setuid
kept), mtimes (directories last) and xattrs. crc checksums are verified.
Reads the image once as a stream ("-" is standard input). Refuses absolute
paths, ".." components, writing through symlinks and duplicate names:
nothing is written outside DIR. A truncated or corrupt image ends with an
error naming the entry and its offset.`,
		Example: `  clonecd unpack node.cpio.gz /mnt/newroot
  clonecd unpack initrd.img initrd
  curl -s http://master/node.cpio.gz | clonecd unpack - /mnt`,
		Args: exactArgs(2, "IMAGE and DIR"),
		RunE: func(c *cobra.Command, args []string) error { return runUnpack(c.Context(), out, f, args) },
	}
	fl := c.Flags()
	fl.BoolVarP(&f.quiet, "quiet", "q", false, "no progress, no summary")
	fl.BoolVar(&f.noChown, "no-chown", false, "keep files owned by the unpacking user")
	fl.BoolVar(&f.noXattrs, "no-xattrs", false, "do not restore extended attributes")
	return c
}

func runUnpack(_ context.Context, out Output, f *unpackFlags, args []string) error {
	img, dir := args[0], args[1]
	in, total, err := openImage(out, img)
	if err != nil {
		return err
	}
	defer in.Close()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	meter := progress.New(out.Stderr, "unpack", total, f.quiet)
	start := time.Now()
	// The meter counts compressed bytes read, for a true ETA.
	st, err := image.Unpack(meter.Reader(in), dir, image.UnpackOptions{NoChown: f.noChown, NoXattrs: f.noXattrs,
		Progress: image.ItemsOnly(meter), Warn: warner(out.Stderr, "clonecd unpack")})
	meter.Done()
	if err != nil {
		if img != "-" {
			return fmt.Errorf("%s: %w", img, err)
		}
		return err
	}
	if !f.quiet {
		fmt.Fprintf(out.Stderr, "unpacked %s into %s: %d entries (%d files, %d dirs, %d symlinks, %d devices/fifos, %d hardlinks, %d xattrs), %s of data in %.1fs\n",
			img, dir, st.Entries, st.Files, st.Dirs, st.Symlinks, st.Devices, st.Hardlinks, st.Xattrs,
			progress.Bytes(st.Bytes), time.Since(start).Seconds())
	}
	return nil
}
