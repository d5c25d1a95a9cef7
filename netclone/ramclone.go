package netclone

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"

	"github.com/clonecd/clonecd/fleet"
)

// RamcloneEntry is the boot entry id of the network cloner on a node
// (GRUB `menuentry 'ramclone' --id ramclone`, or an extlinux label).
const RamcloneEntry = "ramclone"

// RamcloneOptions says where the node's boot files are.
type RamcloneOptions struct {
	BootDir  string // the node's /boot ("" = /boot)
	Hostname string // recorded as clonecd_hostname in grubenv ("" = this host's name)
	Sticky   bool   // GRUB: every boot is the cloner until a clone succeeds (grub-set-default)
	// Run runs a tool (nil: exec); a --dry-run passes one that only prints.
	Run func(name string, args ...string) ([]byte, error)
}

// Ramclone makes the next boot of this node the network cloner: GRUB
// (grub-reboot ramclone, the `lilo -R ramclone` of Medusa; with Sticky
// grub-set-default, which a successful clone replaces with a fresh root),
// or extlinux (extlinux --once=ramclone). It returns a description of
// what it did. A one-shot entry is enough for a clone that is cut short:
// before it formats the root, the network cloner writes the node's
// /boot/grub back onto it with the same UUID and grubenv
// saved_entry=ramclone, and makes the normal entry the default only once
// the clone has succeeded (package clone, safety.go).
func Ramclone(o RamcloneOptions) (string, error) {
	if o.BootDir == "" {
		o.BootDir = "/boot"
	}
	run := o.Run
	if run == nil {
		run = func(name string, args ...string) ([]byte, error) {
			return exec.Command(name, args...).CombinedOutput()
		}
	}
	grubCfg := filepath.Join(o.BootDir, "grub", "grub.cfg")
	if cfg, err := os.ReadFile(grubCfg); err == nil {
		if !grubHasEntry(cfg) {
			return "", fmt.Errorf("%s has no menuentry with --id %s: was this node cloned by clonecd (and update-grub run)? ", grubCfg, RamcloneEntry)
		}
		if !bytes.Contains(cfg, []byte("load_env")) || !bytes.Contains(cfg, []byte("next_entry")) {
			return "", fmt.Errorf("%s does not use the GRUB environment (next_entry): set GRUB_DEFAULT=saved in /etc/default/grub and run update-grub", grubCfg)
		}
		env := filepath.Join(o.BootDir, "grub", "grubenv")
		var name string
		var args []string
		tool, key := "grub-reboot", "next_entry"
		if o.Sticky {
			tool, key = "grub-set-default", "saved_entry"
		}
		if p, err := exec.LookPath(tool); err == nil && o.BootDir == "/boot" {
			name, args = p, []string{RamcloneEntry}
		} else if p, err := exec.LookPath("grub-editenv"); err == nil {
			// What grub-reboot/grub-set-default do, for any boot directory.
			name, args = p, []string{env, "set", key + "=" + RamcloneEntry}
			if _, err := os.Stat(env); errors.Is(err, os.ErrNotExist) {
				if out, err := run(p, env, "create"); err != nil {
					return "", fmt.Errorf("grub-editenv %s create: %v: %s", env, err, out)
				}
			}
		} else {
			return "", fmt.Errorf("neither %s nor grub-editenv found (package grub2-common / grub-common)", tool)
		}
		if out, err := run(name, args...); err != nil {
			return "", fmt.Errorf("%s %v: %v: %s", name, args, err, bytes.TrimSpace(out))
		}
		// The node's name for the cloner: a ramclone entry may pass
		// clonecd.hostname=${clonecd_hostname} (GRUB expands it).
		if h, err := os.Hostname(); err == nil && o.Hostname == "" {
			o.Hostname = h
		}
		if p, err := exec.LookPath("grub-editenv"); err == nil && fleet.ValidName(o.Hostname) == nil {
			run(p, env, "set", "clonecd_hostname="+o.Hostname)
		}
		how := "next boot"
		if o.Sticky {
			how = "every boot until a clone succeeds"
		}
		return fmt.Sprintf("grub: %s is %q (%s %s=%s in %s)", how, RamcloneEntry, filepath.Base(name), key, RamcloneEntry, env), nil
	}
	for _, d := range []string{"extlinux", "syslinux", ""} {
		dir := filepath.Join(o.BootDir, d)
		for _, f := range []string{"extlinux.conf", "syslinux.cfg"} {
			cfg, err := os.ReadFile(filepath.Join(dir, f))
			if err != nil {
				continue
			}
			if !regexp.MustCompile(`(?mi)^\s*label\s+` + RamcloneEntry + `\s*$`).Match(cfg) {
				return "", fmt.Errorf("%s has no `label %s`", filepath.Join(dir, f), RamcloneEntry)
			}
			if out, err := run("extlinux", "--once="+RamcloneEntry, dir); err != nil {
				return "", fmt.Errorf("extlinux --once=%s %s: %v: %s", RamcloneEntry, dir, err, bytes.TrimSpace(out))
			}
			return fmt.Sprintf("extlinux: next boot is %q (extlinux --once in %s)", RamcloneEntry, dir), nil
		}
	}
	return "", fmt.Errorf("no boot loader configuration under %s (grub/grub.cfg or extlinux.conf)", o.BootDir)
}

var grubEntryRE = regexp.MustCompile(`(?m)^\s*menuentry\s.*--id[ =]'?"?` + RamcloneEntry + `\b`)

func grubHasEntry(cfg []byte) bool { return grubEntryRE.Match(cfg) }

// Reboot reboots the node the way its init wants (systemctl, else reboot).
func Reboot() error {
	for _, c := range [][]string{{"systemctl", "reboot"}, {"reboot"}, {"shutdown", "-r", "now"}} {
		if p, err := exec.LookPath(c[0]); err == nil {
			if out, err := exec.Command(p, c[1:]...).CombinedOutput(); err != nil {
				return fmt.Errorf("%v: %v: %s", c, err, bytes.TrimSpace(out))
			}
			return nil
		}
	}
	return errors.New("no systemctl, reboot or shutdown found")
}
