package cli

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/clonecd/clonecd/internal/atomicfile"
	"github.com/clonecd/clonecd/kickstart"
)

type kickstartFlags struct {
	layoutOnly, strict              bool
	output, firmware, label, fstype string
	ram                             int
}

func kickstartCmd(out Output) *cobra.Command {
	f := &kickstartFlags{}
	c := &cobra.Command{
		Use:   "kickstart [flags] ks.cfg",
		Short: "show what clonecd takes from a kickstart: layout, network, root password, timezone, %post",
		Long: `Parses a Red Hat kickstart (commands, %pre, %post, %packages and the other
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

Exit status: 0 when the kickstart gives a layout, 1 with --strict when
there were warnings, 2 when it cannot be read or gives no layout.`,
		Example: `  clonecd kickstart ks.cfg
  clonecd kickstart --layout-only -o node.sfdisk ks.cfg
  clonecd kickstart --firmware uefi --ram 16384 ks.cfg`,
		Args: exactArgs(1, "one kickstart file"),
		RunE: func(c *cobra.Command, args []string) error { return runKickstart(c.Context(), out, f, args) },
	}
	fl := c.Flags()
	fl.BoolVar(&f.layoutOnly, "layout-only", false, "print only the layout file")
	fl.StringVarP(&f.output, "output", "o", "", "write the layout file to `FILE` (nothing is printed)")
	intVarP(fl, &f.ram, "ram", "", int(kickstart.DefaultRAM), 1, 1<<24, "`MiB` of RAM assumed for swap --recommended")
	oneOfVar(fl, &f.firmware, "firmware", "bios", []string{"bios", "uefi"}, "firmware of the clones: bios or uefi (reqpart, label)")
	oneOfVar(fl, &f.label, "label", "", []string{"dos", "gpt"}, "force the disk label: dos or gpt")
	fl.StringVar(&f.fstype, "fstype", "ext4", "file system for part without --fstype")
	fl.BoolVar(&f.strict, "strict", false, "exit with status 1 when there are warnings")
	return c
}

func runKickstart(_ context.Context, out Output, f *kickstartFlags, args []string) error {
	ks, err := kickstart.ParseFile(args[0], kickstart.Options{RAM: uint64(f.ram), Firmware: f.firmware, Label: f.label, DefaultFS: f.fstype})
	if err != nil {
		return err
	}
	layout, lerr := ks.Layout()
	for _, w := range ks.Warnings {
		fmt.Fprintf(out.Stderr, "%s: warning: %s\n", ksWhere(w), w.Msg)
	}
	var lb bytes.Buffer
	if lerr == nil {
		fmt.Fprintf(&lb, "# clonecd layout from %s\n", args[0])
		layout.WriteTo(&lb)
	}
	switch {
	case lerr != nil && (f.output != "" || f.layoutOnly):
		return lerr
	case f.output != "":
		if err := checkOutput(f.output); err != nil {
			return err
		}
		if err := atomicfile.WriteFile(f.output, lb.Bytes(), 0o644); err != nil {
			return err
		}
	case f.layoutOnly:
		out.Stdout.Write(lb.Bytes())
	default:
		printKickstart(out.Stdout, ks, lb.String(), lerr)
	}
	if lerr != nil {
		return fmt.Errorf("no layout: %w", lerr)
	}
	if f.strict && len(ks.Warnings) > 0 {
		return &ExitError{Code: exitNo, Err: fmt.Errorf("%d warnings (--strict)", len(ks.Warnings))}
	}
	return nil
}

func ksWhere(w kickstart.Warning) string {
	s := w.String()
	return strings.TrimSuffix(s, ": "+w.Msg)
}

func printKickstart(w io.Writer, ks *kickstart.Kickstart, layout string, lerr error) {
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
