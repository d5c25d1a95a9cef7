package clone

import (
	"bufio"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"sort"
	"strings"

	"github.com/clonecd/clonecd/partition"
)

// Node is one line of the identity table: MAC HOSTNAME [ADDRESS/PREFIX [GATEWAY]].
type Node struct {
	MAC, Hostname, Address, Gateway string
	Line                            int
}

// ParseNodes reads an identity table; # starts a comment.
func ParseNodes(r io.Reader) ([]Node, error) {
	var out []Node
	sc := bufio.NewScanner(r)
	for ln := 1; sc.Scan(); ln++ {
		l := sc.Text()
		if i := strings.IndexByte(l, '#'); i >= 0 {
			l = l[:i]
		}
		f := strings.Fields(l)
		if len(f) == 0 {
			continue
		}
		if len(f) < 2 || len(f) > 4 {
			return nil, fmt.Errorf("line %d: want MAC HOSTNAME [ADDRESS/PREFIX [GATEWAY]], got %q", ln, strings.TrimSpace(l))
		}
		hw, err := net.ParseMAC(f[0])
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", ln, err)
		}
		if err := checkHostname(f[1]); err != nil {
			return nil, fmt.Errorf("line %d: %w", ln, err)
		}
		n := Node{MAC: hw.String(), Hostname: f[1], Line: ln}
		if len(f) > 2 {
			if _, _, err := net.ParseCIDR(f[2]); err != nil {
				return nil, fmt.Errorf("line %d: address %q: %w", ln, f[2], err)
			}
			n.Address = f[2]
		}
		if len(f) > 3 {
			if net.ParseIP(f[3]) == nil {
				return nil, fmt.Errorf("line %d: gateway %q is not an IP address", ln, f[3])
			}
			n.Gateway = f[3]
		}
		out = append(out, n)
	}
	return out, sc.Err()
}

func checkHostname(h string) error {
	if h == "" || len(h) > 63 {
		return fmt.Errorf("hostname %q: want 1 to 63 characters", h)
	}
	for i, c := range h {
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' && i > 0 && i < len(h)-1
		if !ok {
			return fmt.Errorf("hostname %q: only letters, digits and inner hyphens", h)
		}
	}
	return nil
}

// LocalMACs lists the MAC addresses of this machine's interfaces but lo.
func LocalMACs(sysRoot string) []string {
	des, _ := os.ReadDir(sysPath(sysRoot, "class", "net"))
	var out []string
	for _, d := range des {
		if d.Name() == "lo" {
			continue
		}
		a := readSys(sysRoot, "class", "net", d.Name(), "address")
		if hw, err := net.ParseMAC(a); err == nil && a != "00:00:00:00:00:00" {
			out = append(out, hw.String())
		}
	}
	sort.Strings(out)
	return out
}

// ChooseHostname picks the node's name: given, else the nodes table by
// MAC, else DHCP's, else node-<mac>.
func ChooseHostname(given string, nodes []Node, macs []string, dhcp string) (name, why string) {
	if given != "" {
		return given, "given"
	}
	for _, m := range macs {
		for _, n := range nodes {
			if strings.EqualFold(n.MAC, m) {
				return n.Hostname, fmt.Sprintf("nodes table line %d (MAC %s)", n.Line, m)
			}
		}
	}
	if dhcp != "" {
		return dhcp, "DHCP"
	}
	if len(macs) > 0 {
		return "node-" + strings.ReplaceAll(macs[0], ":", ""), "MAC " + macs[0]
	}
	b := make([]byte, 3)
	rand.Read(b)
	return "node-" + hex.EncodeToString(b), "random"
}

// identity makes the unpacked root this node: hostname, hosts, ssh host
// keys and machine-id (the node's own when it had them, keep.go), fstab
// by the new UUIDs, resume, clonecd-version, then the kickstart %post
// scripts.
func (r *run) identity() error {
	root := r.newRoot
	name := r.hostname
	r.logf("identity: hostname %s (%s)", name, r.hostnameWhy)
	if err := writeIn(root, "etc/hostname", []byte(name+"\n"), 0o644); err != nil {
		return err
	}
	hosts, err := readIn(root, "etc/hosts")
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("/etc/hosts of the new root: %w", err)
	}
	if err := writeIn(root, "etc/hosts", []byte(SetHosts(string(hosts), name)), 0o644); err != nil {
		return err
	}
	if err := r.hostKeys(); err != nil {
		return err
	}
	// UUIDs of the new filesystems
	for _, p := range r.fitted.Parts {
		if p.FS == "" {
			continue
		}
		dev := partition.PartDevice(r.disk, p.Number)
		info, err := partition.ProbeFS(dev)
		if err != nil {
			return fmt.Errorf("reading the UUID of %s: %w", dev, err)
		}
		r.fsinfo[p.Number] = info
		r.uuids[p.Number] = info.UUID
	}
	old, err := readIn(root, "etc/fstab")
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("/etc/fstab of the new root: %w", err)
	}
	fstab := Fstab(string(old), r.fitted.Parts, r.fsinfo)
	if err := writeIn(root, "etc/fstab", []byte(fstab), 0o644); err != nil {
		return err
	}
	r.logf("identity: /etc/fstab rewritten by UUID")
	if _, err := statIn(root, "etc/initramfs-tools/conf.d/resume"); err == nil {
		res := "RESUME=none\n"
		for _, p := range r.fitted.Parts {
			if p.FS == "swap" && r.uuids[p.Number] != "" {
				res = "RESUME=UUID=" + r.uuids[p.Number] + "\n"
				break
			}
		}
		if err := writeIn(root, "etc/initramfs-tools/conf.d/resume", []byte(res), 0o644); err != nil {
			return err
		}
		r.logf("identity: resume %s", strings.TrimSpace(res))
	}
	if err := writeIn(root, "etc/clonecd-version", []byte(r.version+"\n"), 0o644); err != nil {
		return err
	}
	return r.kickstartPost(name)
}

// newMachineID is a random machine-id in systemd's v4 UUID style.
func newMachineID() (string, error) {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return hex.EncodeToString(b), nil
}

// SetHosts returns hosts with its 127.0.1.1 line naming host (added after
// the localhost line when missing).
func SetHosts(hosts, host string) string {
	line := "127.0.1.1\t" + host
	var out []string
	done := false
	lines := strings.Split(strings.TrimRight(hosts, "\n"), "\n")
	if hosts == "" {
		lines = []string{"127.0.0.1\tlocalhost"}
	}
	for _, l := range lines {
		f := strings.Fields(l)
		if len(f) > 0 && f[0] == "127.0.1.1" {
			if !done {
				out = append(out, line)
				done = true
			}
			continue
		}
		out = append(out, l)
		if !done && len(f) > 0 && f[0] == "127.0.0.1" {
			out = append(out, line)
			done = true
		}
	}
	if !done {
		out = append(out, line)
	}
	return strings.Join(out, "\n") + "\n"
}

// Fstab returns the new /etc/fstab: the layout's filesystems and swap by
// UUID, then the old file's lines that name no block device (proc, tmpfs,
// NFS...).
func Fstab(old string, parts []partition.Part, info map[int]*partition.FSInfo) string {
	var b strings.Builder
	b.WriteString("# /etc/fstab written by clonecd for this node's new filesystems\n")
	b.WriteString("# <file system> <mount point> <type> <options> <dump> <pass>\n")
	mine := map[string]bool{}
	sorted := append([]partition.Part(nil), parts...)
	sort.SliceStable(sorted, func(i, j int) bool { return depth(sorted[i].Mount) < depth(sorted[j].Mount) })
	for _, p := range sorted {
		in := info[p.Number]
		if p.FS == "" || in == nil || in.UUID == "" {
			continue
		}
		src := "UUID=" + in.UUID
		switch {
		case p.FS == "swap":
			fmt.Fprintf(&b, "%s none swap sw 0 0\n", src)
		case p.Mount == "/":
			mine["/"] = true
			opts := "defaults"
			if strings.HasPrefix(p.FS, "ext") {
				opts = "errors=remount-ro"
			}
			fmt.Fprintf(&b, "%s / %s %s 0 1\n", src, mountFS(p.FS), opts)
		case strings.HasPrefix(p.Mount, "/"):
			mine[p.Mount] = true
			opts, pass := "defaults", 2
			if mountFS(p.FS) == "vfat" {
				opts, pass = "umask=0077", 1 // as Debian's installer
			}
			if p.FS == "xfs" {
				pass = 0
			}
			fmt.Fprintf(&b, "%s %s %s %s 0 %d\n", src, p.Mount, mountFS(p.FS), opts, pass)
		}
	}
	for _, l := range strings.Split(old, "\n") {
		f := strings.Fields(l)
		if len(f) < 3 || strings.HasPrefix(f[0], "#") {
			continue
		}
		if mine[f[1]] || f[2] == "swap" {
			continue
		}
		src := f[0]
		if strings.HasPrefix(src, "UUID=") || strings.HasPrefix(src, "LABEL=") || strings.HasPrefix(src, "PARTUUID=") ||
			strings.HasPrefix(src, "PARTLABEL=") || strings.HasPrefix(src, "/dev/") {
			continue
		}
		b.WriteString(l + "\n")
	}
	return b.String()
}
