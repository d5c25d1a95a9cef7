package cli

import (
	"context"
	"errors"
	"fmt"
	"io/fs"

	"github.com/spf13/cobra"

	"github.com/clonecd/clonecd/builder"
	"github.com/clonecd/clonecd/medium"
	"github.com/clonecd/clonecd/progress"
	"github.com/clonecd/clonecd/versions"
)

type buildFlags struct {
	builder.Options
	addModules, omitModules listFlag
}

func buildCmd(out Output) *cobra.Command {
	f := &buildFlags{}
	c := &cobra.Command{
		Use:   "build [flags] -o clonecd.iso",
		Short: "build the bootable clone CD (ISO 9660, BIOS + UEFI, isohybrid for USB sticks)",
		Long: `Builds clonecd.iso from node.cpio.gz and its partition layout: isolinux (BIOS)
and GRUB (UEFI) boot menus with the entries clone (default), clone-net, shell
and local, on the screen and the serial console ttyS0 (3 s timeout); the
kernel; an initramfs whose /init is clonecd itself; and the media files
CLONE_CD_VERSION, node.cpio.gz(.sha256), node.sfdisk, clonecd.conf and the
optional nodes and ks.cfg. The ISO is also an MBR disk image: dd it to a
USB stick and it boots both ways. Files of 4 GiB or more are refused.
Without --version the CLONE_CD_VERSION file in the current directory
names the version.`,
		Example: `  # the Medusa workflow (what "make" runs)
  clonecd build --image node.cpio.gz --layout node.sfdisk --version 1.19 -o clonecd.iso

  # the golden root's kernel, modules and firmware; a nodes table; network server
  clonecd build --root /srv/golden --image node.cpio.gz --layout node.sfdisk \
      --nodes nodes --server http://10.0.0.1:8080 -o clonecd.iso

  # boot straight into a media check (prints "clonecd: media OK" and powers off)
  clonecd build --image node.cpio.gz --layout node.sfdisk --append clonecd.mode=probe -o probe.iso

  # a prebuilt initramfs (make rd), no UEFI loader
  clonecd build --image node.cpio.gz --layout node.sfdisk --initrd initrd.img --no-uefi -o clonecd.iso`,
		Args: noArgs,
		RunE: func(c *cobra.Command, args []string) error { return runBuild(c.Context(), out, f, args) },
	}
	o := &f.Options
	fl := c.Flags()
	fl.StringVarP(&o.Output, "output", "o", "clonecd.iso", "output ISO `FILE`")
	fl.StringVar(&o.Image, "image", "", "the node image `node.cpio.gz` (its .sha256 beside it is checked)")
	fl.StringVar(&o.Layout, "layout", "", "partition layout `FILE` (node.sfdisk)")
	fl.StringVar(&o.Kickstart, "kickstart", "", "kickstart `ks.cfg`, copied to /ks.cfg (%post scripts; layout if no --layout)")
	fl.StringVar(&o.Kernel, "kernel", "", "kernel `FILE` (default: the golden root's newest /boot/vmlinuz-*, else the build host's)")
	fl.StringVar(&o.Initrd, "initrd", "", "use this prebuilt initramfs `FILE` instead of building one")
	fl.StringVar(&o.Root, "root", "", "golden root `DIR`: kernel, modules, firmware and programs come from it")
	fl.Var((*versionFlag)(&o.Version), "version", "clone image version, MAJOR.MINOR (default: the CLONE_CD_VERSION file)")
	fl.StringVar(&o.Append, "append", "", "extra kernel `ARGUMENTS` for every boot entry (later keys win)")
	fl.StringVar(&o.Nodes, "nodes", "", "identity table `FILE` (MAC HOSTNAME [ADDRESS/PREFIX [GATEWAY]]), copied to /nodes")
	fl.Var((*urlFlag)(&o.Server), "server", "network clone server (clonecd serve) `URL` for clonecd.conf and the clone-net entry")
	fl.StringVar(&o.Clonecd, "clonecd", "", "static clonecd `BINARY` to use as /init (default: this one)")
	fl.StringVar(&o.Initramfs.Modules, "modules", "", "kernel module `DIR` for the initramfs (default: matching the kernel)")
	fl.Var(&f.addModules, "add-module", "add kernel `MODULES` to the initramfs (comma-separated, repeatable)")
	fl.Var(&f.omitModules, "omit-module", "leave kernel `MODULES` out of the initramfs (comma-separated, repeatable)")
	fl.BoolVar(&o.Initramfs.NoFirmware, "no-firmware", false, "no firmware in the initramfs")
	fl.BoolVar(&o.NoUEFI, "no-uefi", false, "no UEFI boot entry (when the build host has no grub-efi-amd64-bin)")
	fl.BoolVar(&o.NoHybrid, "no-hybrid", false, "no isohybrid MBR (CD only)")
	intVarP(fl, &o.Timeout, "timeout", "", 3, 1, builder.MaxTimeout, fmt.Sprintf("boot menu timeout in `SECONDS`, 1-%d", builder.MaxTimeout))
	fl.BoolVarP(&o.Quiet, "quiet", "q", false, "print only the summary")
	return c
}

func runBuild(_ context.Context, out Output, f *buildFlags, _ []string) error {
	o := f.Options
	o.Initramfs.AddModules, o.Initramfs.OmitModules = f.addModules, f.omitModules
	o.Log = out.Stderr
	if o.Version == "" {
		// The builder would take the file's first word as it is.
		v, err := versions.ReadFile(medium.Version)
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		if err == nil {
			o.Version = v.String()
		}
	}
	if err := checkOutput(o.Output); err != nil {
		return err
	}
	s, err := builder.Build(o)
	if err != nil {
		return err
	}
	printBuildSummary(out, s)
	return nil
}

func printBuildSummary(out Output, s *builder.Summary) {
	w := out.Stdout
	fmt.Fprintf(w, "clonecd.iso   %s: %s, label %s, version %s, %d files, built in %.1fs\n",
		s.Output, progress.Bytes(s.Size), s.Label, s.Version, s.Files, s.Took.Seconds())
	fmt.Fprintf(w, "image         %s %s, sha256 %s\n", medium.ImageGzip, progress.Bytes(s.Image), s.ImageSHA256)
	fmt.Fprintf(w, "kernel        %s (%s), %s\n", s.Kernel, s.KernelVersion, progress.Bytes(s.KernelSize))
	if s.Initrd.Prebuilt {
		fmt.Fprintf(w, "initramfs     prebuilt, %s\n", progress.Bytes(s.Initrd.Compressed))
	} else {
		fmt.Fprintf(w, "initramfs     %s compressed, %d modules, %d firmware files, %d programs\n",
			progress.Bytes(s.Initrd.Compressed), s.Initrd.Modules, s.Initrd.Firmware, s.Initrd.Programs)
	}
	boot := "BIOS (isolinux)"
	if s.UEFI {
		boot += " + UEFI (GRUB, FAT16 ESP)"
	}
	if s.Hybrid {
		boot += ", isohybrid MBR (USB/HDD)"
	}
	fmt.Fprintf(w, "boot          %s; menu: clone (default), clone-net, shell, local\n", boot)
}
