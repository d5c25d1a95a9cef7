package cli

import (
	"bufio"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/clonecd/clonecd/initramfs"
	"github.com/clonecd/clonecd/progress"
)

// initramfsList is a repeatable, comma-separable string flag.
type initramfsList []string

func (l *initramfsList) String() string { return strings.Join(*l, ",") }
func (l *initramfsList) Set(s string) error {
	for _, w := range strings.Split(s, ",") {
		if w = strings.TrimSpace(w); w != "" {
			*l = append(*l, w)
		}
	}
	return nil
}

func init() {
	Register(&Command{
		Name:    "initramfs",
		Args:    "[flags] -o initrd.img",
		Summary: "build the clone CD's initramfs (clonecd as /init, drivers, helper programs, rescue shell)",
		Help: `Writes a gzip'd newc initramfs whose /init is this clonecd binary (static):
as PID 1 it sets up the boot environment, loads drivers by modalias and
clones; /sbin/modprobe links to it for the kernel's module requests.

Kernel modules come from --modules DIR (default: the golden root's
/lib/modules/VERSION for --kernel-version, else the build host's): all
storage, USB storage, network and filesystem drivers (ext4, xfs, vfat,
isofs) with their modules.dep closure and softdeps, and the firmware they
name from the same root's /lib/firmware. Helper programs (mke2fs, e2fsck,
mkfs.xfs, mkfs.vfat, ...) are copied from --root with the shared libraries
their ELF headers need. busybox-static gives the rescue shell.

--from-dir DIR packs a directory as it is (` + "`make rd`" + ` after ` + "`make rdfs`" + `).

examples:
  clonecd initramfs -o initrd.img
  clonecd initramfs --golden /var/cache/clonecd/golden-bookworm -o initrd.img
  clonecd initramfs --kernel-version 6.1.0-50-amd64 --add-module btrfs --omit-module 'mlx*' -o initrd.img
  clonecd initramfs --from-dir initrd -o initrd.img`,
		Setup: func(fs *flag.FlagSet) Runner {
			var o initramfs.Options
			var out, fromDir string
			var add, omit, progs, extra initramfsList
			var quiet bool
			fs.StringVar(&out, "o", "", "output file (required; - for standard output)")
			fs.StringVar(&fromDir, "from-dir", "", "pack this directory as the initramfs instead of building one")
			fs.StringVar(&o.Clonecd, "clonecd", "", "static clonecd binary for /init (default: this one)")
			fs.StringVar(&o.KernelVersion, "kernel-version", "", "kernel release whose modules to take (default: newest found)")
			fs.StringVar(&o.Golden, "golden", os.Getenv("CLONECD_GOLDEN"), "golden root whose /lib/modules and /lib/firmware are preferred")
			fs.StringVar(&o.Modules, "modules", "", "module tree /lib/modules/VERSION (default: golden root's, else the host's)")
			fs.StringVar(&o.Firmware, "firmware", "", "firmware tree (default: lib/firmware of the modules' root)")
			fs.StringVar(&o.Root, "root", "/", "root to take helper programs and their libraries from")
			fs.StringVar(&o.Busybox, "busybox", "", "static busybox for the rescue shell (default: found in --root or the host; none: embedded shell)")
			fs.Var(&add, "add-module", "extra modules: name, alias or glob on names or paths (repeatable, comma-separated)")
			fs.Var(&omit, "omit-module", "modules to leave out, with whatever needs them (repeatable, comma-separated)")
			fs.Var(&progs, "program", "helper programs instead of the default list (repeatable, comma-separated)")
			fs.Var(&extra, "file", "extra file or directory DEST=SRC (repeatable)")
			fs.BoolVar(&o.NoFirmware, "no-firmware", false, "leave out firmware")
			fs.BoolVar(&o.NoModules, "no-modules", false, "leave out kernel modules")
			fs.IntVar(&o.Level, "level", 6, "gzip level (1-9)")
			fs.BoolVar(&quiet, "q", false, "no progress or summary")
			return func(args []string) error {
				if len(args) > 0 {
					return UsageError("unexpected arguments %q", args)
				}
				if out == "" {
					return UsageError("-o FILE is required")
				}
				o.AddModules, o.OmitModules = add, omit
				if len(progs) > 0 {
					o.Programs = progs
				}
				if len(extra) > 0 {
					o.ExtraFiles = map[string]string{}
					for _, e := range extra {
						d, s, ok := strings.Cut(e, "=")
						if !ok || d == "" || s == "" {
							return UsageError("--file %q: want DEST=SRC", e)
						}
						o.ExtraFiles[d] = s
					}
				}
				return runInitramfs(o, out, fromDir, quiet)
			}
		},
	})
}

func runInitramfs(o initramfs.Options, out, fromDir string, quiet bool) error {
	var f *os.File
	tmp := ""
	if out == "-" {
		f = os.Stdout
		quiet = true
	} else {
		var err error
		f, err = os.CreateTemp(filepath.Dir(out), ".initramfs-*")
		if err != nil {
			return err
		}
		tmp = f.Name()
		defer os.Remove(tmp)
	}
	o.Progress = progress.New(Stderr, "initramfs", 0, quiet)
	bw := bufio.NewWriterSize(f, 1<<20)
	var s *initramfs.Summary
	var err error
	if fromDir != "" {
		s, err = initramfs.BuildDir(bw, fromDir, o)
	} else {
		s, err = initramfs.Build(bw, o)
	}
	if err == nil {
		err = bw.Flush()
	}
	if tmp != "" {
		if cerr := f.Close(); err == nil && cerr != nil {
			err = cerr
		}
		if err == nil {
			os.Chmod(tmp, 0o644)
			err = os.Rename(tmp, out)
		}
	}
	if err != nil {
		return err
	}
	if !quiet {
		fmt.Fprintf(Stdout, "%s: %s compressed (%s cpio), %d files\n", out, progress.Bytes(s.Compressed), progress.Bytes(s.Uncompressed), s.Files)
		if s.KernelVersion != "" {
			fmt.Fprintf(Stdout, "kernel %s: %d modules from %s, %d firmware files", s.KernelVersion, s.Modules, s.ModulesDir, s.Firmware)
			if len(s.FirmwareMiss) > 0 {
				fmt.Fprintf(Stdout, " (%d named but not found)", len(s.FirmwareMiss))
			}
			fmt.Fprintln(Stdout)
		}
		if fromDir == "" {
			fmt.Fprintf(Stdout, "programs: %s\n", strings.Join(s.Programs, " "))
			if len(s.Missing) > 0 {
				fmt.Fprintf(Stdout, "not found (skipped): %s\n", strings.Join(s.Missing, " "))
			}
			bb := s.Busybox
			if bb == "" {
				bb = "none (embedded shell)"
			}
			fmt.Fprintf(Stdout, "busybox: %s\n", bb)
		}
	}
	return nil
}
