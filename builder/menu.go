package builder

import (
	"fmt"
	"strings"

	"github.com/clonecd/clonecd/medium"
)

// Menu is the boot menu offered by isolinux (BIOS) and GRUB (UEFI): the
// entries clone (default), clone-net, shell and local, on the serial
// console too, with a short timeout so headless nodes clone by themselves.
type Menu struct {
	Version string
	Append  string // extra kernel arguments for every Linux entry (later keys win)
	Server  string // clonecd.server= for clone-net
	TLSPin  string // clonecd.tls-pin= for clone-net: the server's pin
	Timeout int    // seconds before the default entry boots (0: 3)
	// Credentials: every Linux entry loads medium.Credentials (the
	// nodes' tokens) after the initramfs.
	Credentials bool
}

// Console is the kernel console setting of every entry: the screen and the
// first serial port; the last one named is /dev/console.
const Console = "console=tty0 console=ttyS0,115200"

// The kernel and initramfs as the boot loaders name them: absolute on the
// ISO.
var kernelPath, initrdPath = "/" + medium.Kernel, "/" + medium.Initrd

// MenuEntry is one Linux boot entry; Local entries boot the hard disk.
type MenuEntry struct {
	Label, Help string
	Args        string // kernel command line
	Local       bool
}

// Entries lists the menu, default first.
func (m Menu) Entries() []MenuEntry {
	args := func(mode string, more ...string) string {
		a := []string{Console, "clonecd.mode=" + mode}
		a = append(a, more...)
		if s := strings.TrimSpace(m.Append); s != "" {
			a = append(a, s)
		}
		return strings.Join(a, " ")
	}
	var net []string
	if m.Server != "" {
		net = append(net, "clonecd.server="+m.Server)
	}
	if m.TLSPin != "" {
		net = append(net, "clonecd.tls-pin="+m.TLSPin)
	}
	return []MenuEntry{
		{Label: "clone", Help: "clone this machine from the CD (default)", Args: args("cd")},
		{Label: "clone-net", Help: "clone this machine from the network server", Args: args("net", net...)},
		{Label: "shell", Help: "rescue shell", Args: args("shell")},
		{Label: "local", Help: "boot the first hard disk", Local: true},
	}
}

// initrds are the initramfs files every Linux entry loads, in order (the
// kernel unpacks each over the one before).
func (m Menu) initrds() []string {
	if m.Credentials {
		return []string{initrdPath, "/" + medium.Credentials}
	}
	return []string{initrdPath}
}

func (m Menu) timeout() int {
	if m.Timeout <= 0 {
		return 3
	}
	return m.Timeout
}

func (m Menu) names() string {
	var n []string
	for i, e := range m.Entries() {
		if i == 0 {
			n = append(n, e.Label+" (default)")
		} else {
			n = append(n, e.Label)
		}
	}
	return strings.Join(n, ", ")
}

// Isolinux returns isolinux.cfg. Plain labels need no menu modules, only
// ldlinux.c32.
func (m Menu) Isolinux() string {
	var b strings.Builder
	fmt.Fprintf(&b, "serial 0 115200\n")
	fmt.Fprintf(&b, "# clonecd %s boot menu (isolinux, BIOS)\n", m.Version)
	fmt.Fprintf(&b, "prompt 1\ntimeout %d\ndefault %s\n", m.timeout()*10, m.Entries()[0].Label)
	b.WriteString("display boot.msg\n")
	for _, e := range m.Entries() {
		fmt.Fprintf(&b, "\nlabel %s\n", e.Label)
		if e.Local {
			fmt.Fprintf(&b, "  localboot 0x80\n")
			continue
		}
		fmt.Fprintf(&b, "  kernel %s\n  append initrd=%s %s\n", kernelPath, strings.Join(m.initrds(), ","), e.Args)
	}
	return b.String()
}

// IsolinuxMessage is isolinux/boot.msg, shown above the boot: prompt.
func (m Menu) IsolinuxMessage() string {
	return fmt.Sprintf("clonecd %s: type one of: %s; the default boots in %d s\n", m.Version, m.names(), m.timeout())
}

// Grub returns the grub.cfg embedded in the UEFI loader: it finds the
// clone media by its /CLONE_CD_VERSION and offers the same entries.
func (m Menu) Grub() string {
	var b strings.Builder
	fmt.Fprintf(&b, "# clonecd %s boot menu (GRUB, UEFI)\n", m.Version)
	b.WriteString("serial --unit=0 --speed=115200\nterminal_input serial console\nterminal_output serial console\n")
	b.WriteString("search --no-floppy --set=root --file /CLONE_CD_VERSION\n")
	fmt.Fprintf(&b, "set timeout=%d\nset default=%s\n", m.timeout(), m.Entries()[0].Label)
	fmt.Fprintf(&b, "echo 'clonecd %s: %s'\n", m.Version, m.names())
	for _, e := range m.Entries() {
		fmt.Fprintf(&b, "\nmenuentry '%s' --id %s {\n", e.Label, e.Label)
		if e.Local {
			b.WriteString("  exit\n}\n")
			continue
		}
		fmt.Fprintf(&b, "  echo 'Loading %s ...'\n  linux %s %s\n  initrd %s\n}\n", e.Label, kernelPath, e.Args, strings.Join(m.initrds(), " "))
	}
	return b.String()
}
