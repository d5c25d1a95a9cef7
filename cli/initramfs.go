package cli

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/clonecd/clonecd/initramfs"
	"github.com/clonecd/clonecd/progress"
	"github.com/clonecd/clonecd/trust"
)

type initramfsFlags struct {
	initramfs.Options
	output, fromDir                   string
	addModules, omitModules, programs listFlag
	files, trust                      []string
	quiet                             bool
}

func initramfsCmd(out Output) *cobra.Command {
	f := &initramfsFlags{}
	c := &cobra.Command{
		Use:   "initramfs [flags] -o initrd.img",
		Short: "build the clone CD's initramfs (clonecd as /init, drivers, helper programs, rescue shell)",
		Long: `Writes a gzip'd newc initramfs whose /init is this clonecd binary (static):
as PID 1 it sets up the boot environment, loads drivers by modalias and
clones; /sbin/modprobe links to it for the kernel's module requests.

Kernel modules come from --modules DIR (default: the golden root's
/lib/modules/VERSION for --kernel-version, else the build host's): all
storage, USB storage, network and filesystem drivers (ext4, xfs, vfat,
isofs) with their modules.dep closure and softdeps, and the firmware they
name from the same root's /lib/firmware. Helper programs (mke2fs, e2fsck,
mkfs.xfs, mkfs.vfat, ...) are copied from --root with the shared libraries
their ELF headers need. busybox-static gives the rescue shell.

--trust KEY.pub (repeatable; or a DIR of *.pub) puts the public keys the
cloner trusts in /etc/clonecd/trust/ID.pub: it then clones only versions
and media whose MANIFEST one of them signed.

--from-dir DIR packs a directory as it is (` + "`make rd`" + ` after ` + "`make rdfs`" + `).`,
		Example: `  clonecd initramfs -o initrd.img
  clonecd initramfs --trust /root/.clonecd/clonecd.key.pub -o initrd.img
  clonecd initramfs --golden /var/cache/clonecd/golden-bookworm -o initrd.img
  clonecd initramfs --kernel-version 6.1.0-50-amd64 --add-module btrfs --omit-module 'mlx*' -o initrd.img
  clonecd initramfs --from-dir initrd -o initrd.img`,
		Args: noArgs,
		RunE: func(c *cobra.Command, args []string) error { return runInitramfs(c.Context(), out, f, args) },
	}
	o := &f.Options
	fl := c.Flags()
	fl.StringVarP(&f.output, "output", "o", "", "output `FILE` (required; \"-\": standard output)")
	fl.StringVar(&f.fromDir, "from-dir", "", "pack this `DIR` as the initramfs instead of building one")
	fl.StringVar(&o.Clonecd, "clonecd", "", "static clonecd `BINARY` for /init (default: this one)")
	fl.StringVar(&o.KernelVersion, "kernel-version", "", "kernel `RELEASE` whose modules to take (default: newest found)")
	fl.StringVar(&o.Golden, "golden", os.Getenv("CLONECD_GOLDEN"), "golden root `DIR` whose /lib/modules and /lib/firmware are preferred ($CLONECD_GOLDEN)")
	fl.StringVar(&o.Modules, "modules", "", "module tree `DIR` /lib/modules/VERSION (default: golden root's, else the host's)")
	fl.StringVar(&o.Firmware, "firmware", "", "firmware tree `DIR` (default: lib/firmware of the modules' root)")
	fl.StringVar(&o.Root, "root", "/", "root `DIR` to take helper programs and their libraries from")
	fl.StringVar(&o.Busybox, "busybox", "", "static busybox `FILE` for the rescue shell (default: found in --root or the host; none: embedded shell)")
	fl.Var(&f.addModules, "add-module", "extra `MODULES`: name, alias or glob on names or paths (repeatable, comma-separated)")
	fl.Var(&f.omitModules, "omit-module", "`MODULES` to leave out, with whatever needs them (repeatable, comma-separated)")
	fl.Var(&f.programs, "program", "helper `PROGRAMS` instead of the default list (repeatable, comma-separated)")
	fl.StringArrayVar(&f.files, "file", nil, "extra file or directory `DEST=SRC` (repeatable)")
	fl.StringArrayVar(&f.trust, "trust", nil, "trust the public key `FILE.pub` (or every *.pub of a DIR) in the cloner (repeatable)")
	fl.BoolVar(&o.NoFirmware, "no-firmware", false, "leave out firmware")
	fl.BoolVar(&o.NoModules, "no-modules", false, "leave out kernel modules")
	intVarP(fl, &o.Level, "level", "", 6, 1, 9, "gzip level 1-9")
	fl.BoolVarP(&f.quiet, "quiet", "q", false, "no progress or summary")
	c.MarkFlagRequired("output")
	return c
}

func runInitramfs(_ context.Context, out Output, f *initramfsFlags, _ []string) error {
	o := f.Options
	o.AddModules, o.OmitModules = f.addModules, f.omitModules
	if len(f.programs) > 0 {
		o.Programs = f.programs
	}
	if len(f.trust) > 0 && f.fromDir != "" {
		return UsageError("--trust with --from-dir: the directory is packed as it is; put the keys in %s/%s instead", f.fromDir, strings.TrimPrefix(trust.TrustDir, "/"))
	}
	keys, ids, err := trust.InitrdKeys(f.trust...)
	if err != nil {
		return fmt.Errorf("--trust: %w", err)
	}
	if len(f.files) > 0 || len(keys) > 0 {
		o.ExtraFiles = keys
		if o.ExtraFiles == nil {
			o.ExtraFiles = map[string]string{}
		}
		for _, e := range f.files {
			d, s, ok := strings.Cut(e, "=")
			if !ok || d == "" || s == "" {
				return UsageError("--file %q: want DEST=SRC", e)
			}
			o.ExtraFiles[d] = s
		}
	}
	quiet := f.quiet || f.output == "-"
	o.Progress = progress.New(out.Stderr, "initramfs", 0, quiet)
	var s *initramfs.Summary
	err = writeOutput(out, f.output, 0o644, func(w io.Writer) error {
		bw := bufio.NewWriterSize(w, 1<<20)
		var err error
		if f.fromDir != "" {
			s, err = initramfs.BuildDir(bw, f.fromDir, o)
		} else {
			s, err = initramfs.Build(bw, o)
		}
		if err != nil {
			return err
		}
		return bw.Flush()
	})
	if err != nil || quiet {
		return err
	}
	printInitramfsSummary(out, f, s)
	if len(ids) > 0 {
		fmt.Fprintf(out.Stdout, "trusted keys: %s\n", strings.Join(ids, ", "))
	}
	return nil
}

func printInitramfsSummary(out Output, f *initramfsFlags, s *initramfs.Summary) {
	w := out.Stdout
	fmt.Fprintf(w, "%s: %s compressed (%s cpio), %d files\n", f.output, progress.Bytes(s.Compressed), progress.Bytes(s.Uncompressed), s.Files)
	if s.KernelVersion != "" {
		fmt.Fprintf(w, "kernel %s: %d modules from %s, %d firmware files", s.KernelVersion, s.Modules, s.ModulesDir, s.Firmware)
		if len(s.FirmwareMiss) > 0 {
			fmt.Fprintf(w, " (%d named but not found)", len(s.FirmwareMiss))
		}
		fmt.Fprintln(w)
	}
	if f.fromDir != "" {
		return
	}
	fmt.Fprintf(w, "programs: %s\n", strings.Join(s.Programs, " "))
	if len(s.Missing) > 0 {
		fmt.Fprintf(w, "not found (skipped): %s\n", strings.Join(s.Missing, " "))
	}
	bb := s.Busybox
	if bb == "" {
		bb = "none (embedded shell)"
	}
	fmt.Fprintf(w, "busybox: %s\n", bb)
}
