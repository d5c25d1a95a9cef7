package cli

import (
	"flag"
	"fmt"
	"strings"

	"github.com/clonecd/clonecd/netclone"
)

func init() {
	Register(&Command{
		Name:    "ramclone",
		Args:    "[--reboot] [--sticky] [--boot-dir DIR]",
		Summary: "on a cloned node: boot the network cloner next (Medusa's lilo -R ramclone)",
		Help: `Sets a one-shot boot of the node's "ramclone" entry, which the clone put
on the node's own disk (/boot/clonecd/vmlinuz, /boot/clonecd/initrd.img,
kernel arguments clonecd.mode=net clonecd.server=URL): grub-reboot ramclone
for GRUB (GRUB_DEFAULT=saved), extlinux --once=ramclone for extlinux.
--reboot then reboots; it prints "` + netclone.RamcloneMarker + `" first,
which clonecd reclone waits for.

--sticky makes every boot the cloner (grub-set-default ramclone) until a
clone succeeds; the new root then boots by default again.

Examples:
  clonecd ramclone --reboot
  ssh s001 clonecd ramclone --reboot
  clonecd ramclone --boot-dir /mnt/boot --dry-run`,
		Setup: func(fs *flag.FlagSet) Runner {
			reboot := fs.Bool("reboot", false, "reboot after setting the next boot")
			sticky := fs.Bool("sticky", false, "GRUB: boot the cloner until a clone succeeds")
			bootDir := fs.String("boot-dir", "/boot", "the node's boot directory")
			dry := fs.Bool("dry-run", false, "print the commands instead of running them")
			return func(args []string) error {
				if len(args) > 0 {
					return UsageError("unexpected arguments %q", args)
				}
				o := netclone.RamcloneOptions{BootDir: *bootDir, Sticky: *sticky}
				if *dry {
					o.Run = func(name string, args ...string) ([]byte, error) {
						fmt.Fprintf(Stdout, "would run: %s %s\n", name, strings.Join(args, " "))
						return nil, nil
					}
				}
				what, err := netclone.Ramclone(o)
				if err != nil {
					return err
				}
				fmt.Fprintf(Stdout, "clonecd ramclone: %s\n", what)
				if !*reboot {
					return nil
				}
				if *dry {
					fmt.Fprintln(Stdout, "would reboot")
					return nil
				}
				fmt.Fprintln(Stdout, netclone.RamcloneMarker)
				return netclone.Reboot()
			}
		},
	})
}
