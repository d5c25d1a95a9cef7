package cli

import (
	"flag"
	"fmt"
	"strings"

	"github.com/clonecd/clonecd/builder"
	"github.com/clonecd/clonecd/progress"
)

type buildModules []string

func (l *buildModules) String() string { return strings.Join(*l, ",") }
func (l *buildModules) Set(s string) error {
	for _, x := range strings.Split(s, ",") {
		if x = strings.TrimSpace(x); x != "" {
			*l = append(*l, x)
		}
	}
	return nil
}

func init() {
	Register(&Command{
		Name:    "build",
		Args:    "[flags] -o clonecd.iso",
		Summary: "build the bootable clone CD (ISO 9660, BIOS + UEFI, isohybrid for USB sticks)",
		Help: `Builds clonecd.iso from node.cpio.gz and its partition layout: isolinux (BIOS)
and GRUB (UEFI) boot menus with the entries clone (default), clone-net, shell
and local, on the screen and the serial console ttyS0 (3 s timeout); the
kernel; an initramfs whose /init is clonecd itself; and the media files
CLONE_CD_VERSION, node.cpio.gz(.sha256), node.sfdisk, clonecd.conf and the
optional nodes and ks.cfg. The ISO is also an MBR disk image: dd it to a
USB stick and it boots both ways. Files of 4 GiB or more are refused.

Examples:
  # the Medusa workflow (what "make" runs)
  clonecd build --image node.cpio.gz --layout node.sfdisk --version 1.19 -o clonecd.iso

  # the golden root's kernel, modules and firmware; a nodes table; network server
  clonecd build --root /srv/golden --image node.cpio.gz --layout node.sfdisk \
      --nodes nodes --server http://10.0.0.1:8080 -o clonecd.iso

  # boot straight into a media check (prints "clonecd: media OK" and powers off)
  clonecd build --image node.cpio.gz --layout node.sfdisk --append clonecd.mode=probe -o probe.iso

  # a prebuilt initramfs (make rd), no UEFI loader
  clonecd build --image node.cpio.gz --layout node.sfdisk --initrd initrd.img --no-uefi -o clonecd.iso`,
		Setup: func(fs *flag.FlagSet) Runner {
			var o builder.Options
			var add, omit buildModules
			fs.StringVar(&o.Output, "o", "clonecd.iso", "output ISO `file`")
			fs.StringVar(&o.Image, "image", "", "the node image `node.cpio.gz` (its .sha256 beside it is checked)")
			fs.StringVar(&o.Layout, "layout", "", "partition layout `file` (node.sfdisk)")
			fs.StringVar(&o.Kickstart, "kickstart", "", "kickstart `ks.cfg`, copied to /ks.cfg (%post scripts; layout if no --layout)")
			fs.StringVar(&o.Kernel, "kernel", "", "kernel `file` (default: the golden root's newest /boot/vmlinuz-*, else the build host's)")
			fs.StringVar(&o.Initrd, "initrd", "", "use this prebuilt initramfs `file` instead of building one")
			fs.StringVar(&o.Root, "root", "", "golden root `dir`: kernel, modules, firmware and programs come from it")
			fs.StringVar(&o.Version, "version", "", "clone image `version` (default: the CLONE_CD_VERSION file)")
			fs.StringVar(&o.Append, "append", "", "extra kernel `arguments` for every boot entry (later keys win)")
			fs.StringVar(&o.Nodes, "nodes", "", "identity table `file` (MAC HOSTNAME [ADDRESS/PREFIX [GATEWAY]]), copied to /nodes")
			fs.StringVar(&o.Server, "server", "", "network clone server `URL` (clonecd.conf and the clone-net entry)")
			fs.StringVar(&o.Clonecd, "clonecd", "", "static clonecd `binary` to use as /init (default: this one)")
			fs.StringVar(&o.Initramfs.Modules, "modules", "", "kernel module `dir` for the initramfs (default: matching the kernel)")
			fs.Var(&add, "add-module", "add kernel `modules` to the initramfs (comma-separated, repeatable)")
			fs.Var(&omit, "omit-module", "leave kernel `modules` out of the initramfs (comma-separated, repeatable)")
			fs.BoolVar(&o.Initramfs.NoFirmware, "no-firmware", false, "no firmware in the initramfs")
			fs.BoolVar(&o.NoUEFI, "no-uefi", false, "no UEFI boot entry (when the build host has no grub-efi-amd64-bin)")
			fs.BoolVar(&o.NoHybrid, "no-hybrid", false, "no isohybrid MBR (CD only)")
			fs.IntVar(&o.Timeout, "timeout", 3, "boot menu timeout in `seconds`")
			fs.BoolVar(&o.Quiet, "q", false, "quiet: print only the summary")
			return func(args []string) error {
				if len(args) > 0 {
					return UsageError("unexpected arguments %q (inputs are flags: --image, --layout)", args)
				}
				o.Initramfs.AddModules, o.Initramfs.OmitModules = add, omit
				o.Log = Stderr
				s, err := builder.Build(o)
				if err != nil {
					return err
				}
				printBuildSummary(s)
				return nil
			}
		},
	})
}

func printBuildSummary(s *builder.Summary) {
	w := Stdout
	fmt.Fprintf(w, "clonecd.iso   %s: %s, label %s, version %s, %d files, built in %.1fs\n",
		s.Output, progress.Bytes(s.Size), s.Label, s.Version, s.Files, s.Took.Seconds())
	fmt.Fprintf(w, "image         node.cpio.gz %s, sha256 %s\n", progress.Bytes(s.Image), s.ImageSHA256)
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
