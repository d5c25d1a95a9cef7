package cli

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/clonecd/clonecd/netclone"
	"github.com/clonecd/clonecd/trust"
)

type ramcloneFlags struct {
	bootDir, credential    string
	reboot, sticky, dryRun bool
}

func ramcloneCmd(out Output) *cobra.Command {
	f := &ramcloneFlags{}
	c := &cobra.Command{
		Use:   "ramclone [flags]",
		Short: "on a cloned node: boot the network cloner next (Medusa's lilo -R ramclone)",
		Long: `Sets a one-shot boot of the node's "ramclone" entry, which the clone put
on the node's own disk (/boot/clonecd/vmlinuz, /boot/clonecd/initrd.img,
kernel arguments clonecd.mode=net clonecd.server=URL): grub-reboot ramclone
for GRUB (GRUB_DEFAULT=saved), extlinux --once=ramclone for extlinux.
--reboot then reboots; it prints "` + netclone.RamcloneMarker + `" first,
which clonecd reclone waits for.

--sticky makes every boot the cloner (grub-set-default ramclone) until a
clone succeeds; the new root then boots by default again.

--credential FILE (or - for standard input: what clonecd reclone sends
over ssh) keeps the node's NAME:TOKEN for the cloner, as
/boot/` + netclone.CredentialInitrd + ` (0600), an extra initramfs the
ramclone entry loads after the cloner's.`,
		Example: `  clonecd ramclone --reboot
  ssh s001 clonecd ramclone --reboot
  clonecd token s001 | ssh s001 clonecd ramclone --credential - --reboot
  clonecd ramclone --boot-dir /mnt/boot --dry-run`,
		Args: noArgs,
		RunE: func(c *cobra.Command, args []string) error { return runRamclone(c.Context(), out, f, args) },
	}
	fl := c.Flags()
	fl.BoolVar(&f.reboot, "reboot", false, "reboot after setting the next boot")
	fl.BoolVar(&f.sticky, "sticky", false, "GRUB: boot the cloner until a clone succeeds")
	fl.StringVar(&f.bootDir, "boot-dir", "/boot", "the node's boot `DIR`")
	fl.BoolVarP(&f.dryRun, "dry-run", "n", false, "print the commands instead of running them")
	fl.StringVar(&f.credential, "credential", "", "keep this node's credential `FILE` (NAME:TOKEN; - reads standard input) for the cloner")
	return c
}

func runRamclone(_ context.Context, out Output, f *ramcloneFlags, _ []string) error {
	o := netclone.RamcloneOptions{BootDir: f.bootDir, Sticky: f.sticky}
	if f.credential != "" {
		c, err := readCredential(out, f.credential)
		if err != nil {
			return err
		}
		if f.dryRun {
			fmt.Fprintf(out.Stdout, "would write %s's credential to %s\n", c.User, filepath.Join(f.bootDir, netclone.CredentialInitrd))
		} else if err := netclone.WriteCredential(f.bootDir, c); err != nil {
			return err
		}
	}
	if f.dryRun {
		o.Run = func(name string, args ...string) ([]byte, error) {
			fmt.Fprintf(out.Stdout, "would run: %s %s\n", name, strings.Join(args, " "))
			return nil, nil
		}
	}
	what, err := netclone.Ramclone(o)
	if err != nil {
		return err
	}
	fmt.Fprintf(out.Stdout, "clonecd ramclone: %s\n", what)
	switch {
	case !f.reboot:
		return nil
	case f.dryRun:
		fmt.Fprintln(out.Stdout, "would reboot")
		return nil
	}
	fmt.Fprintln(out.Stdout, netclone.RamcloneMarker)
	return netclone.Reboot()
}

// readCredential reads NAME:TOKEN from a credential file (0600), or from
// standard input for "-".
func readCredential(out Output, file string) (trust.Credential, error) {
	if file != "-" {
		return trust.LoadCredential(file)
	}
	b, err := io.ReadAll(io.LimitReader(out.Stdin, 512))
	if err != nil {
		return trust.Credential{}, err
	}
	c, err := trust.ParseCredential(string(b))
	if err != nil {
		return trust.Credential{}, fmt.Errorf("standard input: %w", err)
	}
	return c, nil
}
