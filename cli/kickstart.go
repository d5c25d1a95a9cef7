package cli

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/clonecd/clonecd/kickstart"
)

func init() {
	Register(&Command{
		Name:    "kickstart",
		Args:    "[flags] ks.cfg",
		Summary: "show what clonecd takes from a kickstart: layout, network, root password, timezone, %post",
		Help: `Parses a Red Hat kickstart (commands, %pre, %post, %packages and the other
sections, %include relative to the file, backslash continuations, comments,
shell quoting; RHEL 5 style files without %end too) and prints the disk
layout as a clonecd layout file (from clearpart, zerombr, ignoredisk,
part/partition, reqpart, bootloader, autopart --type=plain), the network
settings, the root password hash, the timezone and the %post scripts.
Warnings (unknown commands, options clonecd does not apply) go to stderr
with file and line; what clonecd cannot honour (logvol, volgroup, raid,
btrfs, encrypted partitions, autopart of LVM) fails naming the line.

The label is gpt when the kickstart says so (clearpart --disklabel=gpt),
asks for biosboot or /boot/efi, or --firmware uefi; else dos. swap
--recommended follows anaconda's rule for --ram MiB of memory (default
4096: the nodes' RAM is not known here).

clonecd build --kickstart ks.cfg takes the layout from it and puts ks.cfg
on the media; the cloner runs its %post scripts at the end of the
identity step.

examples:
  clonecd kickstart ks.cfg
  clonecd kickstart --layout-only -o node.sfdisk ks.cfg
  clonecd kickstart --firmware uefi --ram 16384 ks.cfg`,
		Setup: func(fs *flag.FlagSet) Runner {
			layoutOnly := fs.Bool("layout-only", false, "print only the layout file")
			out := fs.String("o", "", "write the layout file here (implies --layout-only on stdout: nothing printed)")
			ram := fs.Uint64("ram", kickstart.DefaultRAM, "MiB of RAM assumed for swap --recommended")
			firmware := fs.String("firmware", "bios", "firmware of the clones: bios or uefi (reqpart, label)")
			label := fs.String("label", "", "force the disk label: dos or gpt")
			fstype := fs.String("fstype", "ext4", "file system for part without --fstype")
			strict := fs.Bool("strict", false, "exit with status 1 when there are warnings")
			return func(args []string) error {
				if len(args) != 1 {
					return UsageError("want one kickstart file")
				}
				if *firmware != "bios" && *firmware != "uefi" {
					return UsageError("--firmware %q: want bios or uefi", *firmware)
				}
				if *label != "" && *label != "dos" && *label != "gpt" {
					return UsageError("--label %q: want dos or gpt", *label)
				}
				ks, err := kickstart.ParseFile(args[0], kickstart.Options{RAM: *ram, Firmware: *firmware, Label: *label, DefaultFS: *fstype})
				if err != nil {
					return err
				}
				layout, lerr := ks.Layout()
				for _, w := range ks.Warnings {
					fmt.Fprintf(Stderr, "%s: warning: %s\n", ksWhere(w), w.Msg)
				}
				var lb bytes.Buffer
				if lerr == nil {
					fmt.Fprintf(&lb, "# clonecd layout from %s\n", args[0])
					layout.WriteTo(&lb)
				}
				if *out != "" {
					if lerr != nil {
						return lerr
					}
					if err := os.WriteFile(*out, lb.Bytes(), 0o644); err != nil {
						return err
					}
				} else if *layoutOnly {
					if lerr != nil {
						return lerr
					}
					Stdout.Write(lb.Bytes())
				} else {
					printKickstart(ks, lb.String(), lerr)
				}
				if lerr != nil {
					return fmt.Errorf("no layout: %w", lerr)
				}
				if *strict && len(ks.Warnings) > 0 {
					return &ExitError{Code: 1, Err: fmt.Errorf("%d warnings (--strict)", len(ks.Warnings))}
				}
				return nil
			}
		},
	})
}

func ksWhere(w kickstart.Warning) string {
	s := w.String()
	return strings.TrimSuffix(s, ": "+w.Msg)
}

func printKickstart(ks *kickstart.Kickstart, layout string, lerr error) {
	w := Stdout
	fmt.Fprintln(w, "== layout")
	if lerr != nil {
		fmt.Fprintf(w, "(none: %v)\n", lerr)
	} else {
		fmt.Fprint(w, layout)
	}
	fmt.Fprintln(w, "\n== network")
	if len(ks.Network) == 0 {
		fmt.Fprintln(w, "(none: the golden node's configuration and the nodes table apply)")
	}
	for _, n := range ks.Network {
		var f []string
		add := func(k, v string) {
			if v != "" {
				f = append(f, k+"="+v)
			}
		}
		dev := n.Device
		if dev == "" {
			dev = "(first)"
		}
		add("device", dev)
		add("bootproto", n.BootProto)
		add("ip", n.IP)
		add("netmask", n.Netmask)
		add("gateway", n.Gateway)
		add("nameserver", strings.Join(n.Nameservers, ","))
		add("hostname", n.Hostname)
		add("onboot", n.OnBoot)
		add("ipv6", n.IPv6)
		add("mtu", n.MTU)
		if n.Activate {
			f = append(f, "activate")
		}
		if n.NoIPv6 {
			f = append(f, "noipv6")
		}
		f = append(f, n.Other...)
		fmt.Fprintf(w, "network %s\n", strings.Join(f, " "))
	}
	fmt.Fprintln(w, "\n== root password")
	switch r := ks.RootPW; {
	case r == nil:
		fmt.Fprintln(w, "(none: the golden node's)")
	case r.Password == "" && r.Lock:
		fmt.Fprintln(w, "locked")
	case r.IsCrypted:
		lock := ""
		if r.Lock {
			lock = " (locked)"
		}
		fmt.Fprintf(w, "%s%s\n", r.Password, lock)
	default:
		fmt.Fprintln(w, "plain text in the kickstart (not shown; use rootpw --iscrypted with a hash from openssl passwd -6)")
	}
	fmt.Fprintln(w, "\n== timezone")
	if t := ks.Timezone; t == nil {
		fmt.Fprintln(w, "(none)")
	} else {
		var f []string
		if t.UTC {
			f = append(f, "hardware clock UTC")
		}
		if t.NoNTP {
			f = append(f, "no NTP")
		}
		if len(t.NTPServers) > 0 {
			f = append(f, "NTP "+strings.Join(t.NTPServers, ","))
		}
		extra := ""
		if len(f) > 0 {
			extra = " (" + strings.Join(f, ", ") + ")"
		}
		fmt.Fprintf(w, "%s%s\n", t.Name, extra)
	}
	fmt.Fprintf(w, "\n== %%post scripts (%d)\n", len(ks.Post))
	for _, s := range ks.Post {
		hdr := "%post"
		if s.NoChroot {
			hdr += " --nochroot"
		}
		if s.Interpreter != "/bin/sh" {
			hdr += " --interpreter=" + s.Interpreter
		}
		if s.Log != "" {
			hdr += " --log=" + s.Log
		}
		if s.ErrorOnFail {
			hdr += " --erroronfail"
		}
		fmt.Fprintf(w, "%s\t# %s:%d\n%s%%end\n", hdr, s.File, s.Line, s.Body)
	}
}
