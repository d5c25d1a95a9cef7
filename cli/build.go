package cli

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/clonecd/clonecd/builder"
	"github.com/clonecd/clonecd/clone"
	"github.com/clonecd/clonecd/medium"
	"github.com/clonecd/clonecd/progress"
	"github.com/clonecd/clonecd/trust"
	"github.com/clonecd/clonecd/versions"
)

type buildFlags struct {
	builder.Options
	addModules, omitModules listFlag
	trust                   []string
	tlsPin                  pinFlag
	dir, key                string
	noCredentials           bool
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
names the version.

Trust: --trust KEY.pub puts the master's public key in the initramfs
(/etc/clonecd/trust/ID.pub), so the cloner (on the CD, and as the
ramclone entry a clone installs on the node) uses only what that key
signed. The CD's own MANIFEST lists its files (the media check verifies
them); --key signs it. For network cloning, --tls-pin (printed by clonecd
serve) pins the server's certificate: tls-pin= in clonecd.conf and on the
clone-net entry. --dir names the served store on this machine instead:
the pin of its certificate, and the tokens of the nodes in --nodes, which
the CD then carries as isolinux/credentials.img (0600 inside; loaded by
every entry after the initramfs, never installed on a node as it is).
Such a CD is a secret, as the image on it already is; --no-credentials
leaves the tokens off (a node then boots with
clonecd.credential=NODE:TOKEN typed at the boot prompt).`,
		Example: `  # the Medusa workflow (what "make" runs)
  clonecd build --image node.cpio.gz --layout node.sfdisk --version 1.19 -o clonecd.iso

  # the golden root's kernel, modules and firmware; a nodes table; network server
  clonecd build --root /srv/golden --image node.cpio.gz --layout node.sfdisk \
      --nodes nodes --server https://10.0.0.1:8443 --dir /root/clone_image -o clonecd.iso

  # signed: the cloner trusts the master's key, the CD's MANIFEST is signed
  clonecd build --image node.cpio.gz --layout node.sfdisk --trust /root/.clonecd/clonecd.key.pub \
      --key /root/.clonecd/clonecd.key --server https://10.0.0.1:8443 --tls-pin sha256//q0P0vTLXDCxC9dHdZ8ocEfkhd9tu2yvWjDCbzBnmC2Q= -o clonecd.iso

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
	fl.StringVar(&o.Image, "image", "", "the node image `node.cpio.gz` or node.cpio.zst (its .sha256 beside it is checked)")
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
	fl.BoolVar(&o.SecureBoot, "secure-boot", false, "UEFI loader: Debian's signed shim and GRUB, so the CD boots with Secure Boot on (needs shim-signed, grub-efi-amd64-signed and a Debian-signed kernel)")
	intVarP(fl, &o.Timeout, "timeout", "", 3, 1, builder.MaxTimeout, fmt.Sprintf("boot menu timeout in `SECONDS`, 1-%d", builder.MaxTimeout))
	fl.BoolVarP(&o.Quiet, "quiet", "q", false, "print only the summary")
	fl.StringArrayVar(&f.trust, "trust", nil, "trust the public key `FILE.pub` (or every *.pub of a DIR) in the cloner (repeatable)")
	fl.Var(&f.tlsPin, "tls-pin", "the server's TLS `PIN` (sha256//BASE64, printed by clonecd serve) for clonecd.conf and clone-net")
	fl.StringVar(&f.dir, "dir", "", "the served image store `DIR` on this machine: its TLS pin and the tokens of the nodes in --nodes")
	fl.BoolVar(&f.noCredentials, "no-credentials", false, "with --dir: leave the nodes' tokens off the CD")
	fl.StringVar(&f.key, "key", "", "sign the CD's MANIFEST with this minisign secret key `FILE`")
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
	if err := buildTrust(out, f, &o); err != nil {
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
	fmt.Fprintf(w, "image         %s %s, sha256 %s\n", s.ImageName, progress.Bytes(s.Image), s.ImageSHA256)
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
	trusts := "no key: the cloner clones UNSIGNED versions"
	if len(s.Trusted) > 0 {
		trusts = "keys " + strings.Join(s.Trusted, ", ")
	}
	fmt.Fprintf(w, "trust         MANIFEST %s; the cloner trusts %s\n", s.Signed, trusts)
	if s.Credentials > 0 {
		fmt.Fprintf(w, "credentials   the tokens of %d nodes (%s): keep the CD as secret as the image\n", s.Credentials, medium.Credentials)
	}
}

// buildTrust fills in the trust settings of a build: the keys the
// cloner trusts, the server's pin (--tls-pin, else the store's with
// --dir), the nodes' tokens (--dir and --nodes) and the signing key.
func buildTrust(out Output, f *buildFlags, o *builder.Options) error {
	o.Trust, o.TLSPin = f.trust, string(f.tlsPin)
	if f.key != "" {
		k, err := trust.LoadSecretKey(f.key, passphrase(out))
		if err != nil {
			return err
		}
		o.Key = k
	}
	https := strings.HasPrefix(o.Server, "https:")
	if f.dir == "" {
		if https && o.TLSPin == "" {
			return UsageError("--server %s: give the server's --tls-pin (printed by clonecd serve), or --dir, its store on this machine", o.Server)
		}
		return nil
	}
	store, err := versions.Open(f.dir)
	if err != nil {
		return err
	}
	if o.TLSPin == "" && (https || o.Server == "") {
		if o.TLSPin, err = store.ServerPin(); err != nil {
			return err
		}
	}
	if o.Nodes == "" || f.noCredentials {
		return nil
	}
	nf, err := os.Open(o.Nodes)
	if err != nil {
		return fmt.Errorf("nodes table: %w", err)
	}
	defer nf.Close()
	nodes, err := clone.ParseNodes(nf)
	if err != nil {
		return fmt.Errorf("nodes table %s: %w", o.Nodes, err)
	}
	secret, err := store.Secret()
	if err != nil {
		return err
	}
	for _, n := range nodes {
		if _, dup := trust.FindCredential(o.Credentials, n.Hostname); dup {
			continue
		}
		c, err := secret.Credential(n.Hostname)
		if err != nil {
			return fmt.Errorf("nodes table %s:%d: %w", o.Nodes, n.Line, err)
		}
		o.Credentials = append(o.Credentials, c)
	}
	return nil
}
