package netboot

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/u-root/u-root/pkg/dhclient"
	"github.com/vishvananda/netlink"

	"github.com/clonecd/clonecd/bootenv"
	"github.com/clonecd/clonecd/clone"
	"github.com/clonecd/clonecd/medium"
	"github.com/clonecd/clonecd/netclone"
	"github.com/clonecd/clonecd/trust"
)

// Link is the configured network link.
type Link struct {
	Name     string
	MAC      net.HardwareAddr
	Addr     *net.IPNet
	Gateway  net.IP
	Hostname string // from DHCP (or ip=), if any
	How      string // dhcp, static, none
}

// Open is clone.BootOptions.NetMedia: network up, then the media and the
// reporter for the server at serverURL (clonecd.server=), and the lease's
// host name for the identity step.
func Open(ctx context.Context, env *bootenv.Env, serverURL string) (*clone.NetSource, error) {
	logf := env.Logf
	if serverURL == "" {
		return nil, errors.New("no clonecd.server=URL on the kernel command line")
	}
	// Only the cloner as PID 1 owns /etc/resolv.conf; a test (or an admin
	// running this outside the initramfs) must not have its host's DNS
	// rewritten.
	resolv := ""
	if os.Getpid() == 1 {
		resolv = ResolvConf
	}
	l, err := Up(ctx, env.Cmdline, resolv, logf)
	if err != nil {
		return nil, err
	}
	acc, creds, err := FindAccess(env.Cmdline, "/")
	if err != nil {
		return nil, err
	}
	if acc.TLS == nil && strings.HasPrefix(serverURL, "https:") {
		logf("clonecd: no %s=: the server's certificate is checked against system roots", PinArg)
	}
	if creds.From != "" {
		logf("clonecd: credentials from %s", creds.From)
	}
	// The nodes table may name this node; then the media are opened for
	// the node, so that the server can pin a canary version for it.
	a0 := acc
	a0.Credential = creds.reader()
	m0, err := netclone.NewMedia(ctx, serverURL, netclone.MediaOptions{Access: a0, Logf: logf})
	if err != nil {
		return nil, err
	}
	node, why, err := NodeName(env.Cmdline, l, namesMedia(m0, trust.TrustDir, logf))
	if err != nil {
		return nil, err
	}
	if acc.Credential, err = creds.For(node); err != nil {
		return nil, err
	}
	if c := acc.Credential.User; c != "" && c != node {
		logf("clonecd: the credential is node %s's, so the server knows this node as %s", c, c)
		node, why = c, "its credential"
	}
	sw, err := SwarmOptions(env.Cmdline)
	if err != nil {
		return nil, err
	}
	m, err := netclone.NewMedia(ctx, serverURL, netclone.MediaOptions{Access: acc, Node: node, Logf: logf, Swarm: sw})
	if err != nil {
		return nil, err
	}
	logf("clonecd: network: %s %s via %s; node %s (%s); server %s serves version %s", l.Name, l.Addr, l.How, node, why, serverURL, m.Version)
	rep := netclone.NewReporter(serverURL, node)
	rep.Version, rep.LogFile, rep.Logf, rep.Access = m.Version, bootenv.LogPath, logf, acc
	if env.LogFile != nil {
		rep.LogFile = env.LogFile.Name()
	}
	if err := rep.Begin(); err != nil {
		logf("clonecd: report to %s: %v", serverURL, err)
	}
	return &clone.NetSource{Media: m, Reporter: rep, DHCPHostname: l.DHCPName()}, nil
}

// namesMedia is m as NodeName may read it: with the keys of trustDir, the
// nodes table only as the signed manifest says (trust.VerifiedFS), and
// no table at all when the version does not verify (the clone's setup
// step then refuses it, and reports that under the name chosen without
// the table).
func namesMedia(m *netclone.Media, trustDir string, logf func(string, ...any)) fs.FS {
	keys, err := trust.LoadTrustDir(trustDir)
	if err != nil {
		logf("clonecd: the cloner's trusted keys: %v: the server's %s is not used to choose the node's name", err, medium.Nodes)
		return nil
	}
	if len(keys.Keys()) == 0 {
		return m
	}
	man, _, err := keys.ReadManifest(m)
	if err == nil {
		if _, err = trust.ReadFile(m, man, medium.Nodes); errors.Is(err, fs.ErrNotExist) {
			err = nil // no table (or one the manifest does not list): none
		}
	}
	if err != nil {
		logf("clonecd: version %s: %v: the server's %s is not used to choose the node's name", m.Version, err, medium.Nodes)
		return nil
	}
	return trust.VerifiedFS(m, man)
}

// DHCPName is the lease's host name without its domain ("" if none).
func (l *Link) DHCPName() string {
	if l == nil {
		return ""
	}
	return strings.SplitN(l.Hostname, ".", 2)[0]
}

// NodeName is the name the node reports as, chosen as the clone chooses
// the hostname: clonecd.hostname= (the ramclone entry passes the node's
// name), else the server's nodes table by MAC, else the DHCP host name,
// else node-<mac>. Only a missing nodes table is no table: a server error
// reading it is an error, not a reason to report under another name.
func NodeName(cmdline map[string]string, l *Link, media fs.FS) (name, why string, err error) {
	var nodes []clone.Node
	if media != nil && cmdline["clonecd.hostname"] == "" {
		b, err := fs.ReadFile(media, medium.Nodes)
		switch {
		case err == nil:
			if nodes, err = clone.ParseNodes(strings.NewReader(string(b))); err != nil {
				return "", "", fmt.Errorf("the server's %s: %w", medium.Nodes, err)
			}
		case !errors.Is(err, fs.ErrNotExist):
			return "", "", fmt.Errorf("the server's %s: %w", medium.Nodes, err)
		}
	}
	var macs []string
	if l != nil && len(l.MAC) > 0 {
		macs = append(macs, l.MAC.String())
	}
	macs = append(macs, clone.LocalMACs("")...)
	name, why = clone.ChooseHostname(cmdline["clonecd.hostname"], nodes, macs, l.DHCPName())
	return name, why, nil
}

// ResolvConf is where the cloner (PID 1 in the initramfs) writes the
// lease's name servers.
const ResolvConf = "/etc/resolv.conf"

// Up configures the network from the kernel command line's ip= (static:
// ip=CLIENT:SERVER:GATEWAY:NETMASK:HOSTNAME:DEVICE:off; ip=off when the
// kernel did it) or by DHCP on every Ethernet link, taking the first
// lease. The lease's name servers are written to resolvConf, and nowhere
// when it is "".
func Up(ctx context.Context, cmdline map[string]string, resolvConf string, logf func(string, ...any)) (*Link, error) {
	if lo, err := netlink.LinkByName("lo"); err == nil {
		netlink.LinkSetUp(lo)
	}
	ipArg := cmdline["ip"]
	switch {
	case ipArg == "off" || ipArg == "none":
		return &Link{Name: "?", How: "none (ip=" + ipArg + ")"}, nil
	case ipArg != "" && ipArg != "dhcp" && ipArg != "on" && ipArg != "any" && !strings.HasPrefix(ipArg, ":"):
		return static(ipArg)
	}
	links, err := ethernetLinks(ctx, 30*time.Second)
	if err != nil {
		return nil, err
	}
	names := make([]string, len(links))
	for i, l := range links {
		names[i] = l.Attrs().Name
	}
	logf("clonecd: DHCP on %s", strings.Join(names, " "))
	log.SetOutput(io.Discard) // dhclient logs whole packets
	defer log.SetOutput(os.Stderr)
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	var last error
	for res := range dhclient.SendRequests(ctx, links, true, false, dhclient.Config{Timeout: 4 * time.Second, Retries: 6}, 20*time.Second) {
		if res.Err != nil {
			last = res.Err
			logf("clonecd: DHCP on %s: %v", res.Interface.Attrs().Name, res.Err)
			continue
		}
		if err := configure(res.Lease, resolvConf); err != nil {
			last = err
			logf("clonecd: DHCP on %s: configure: %v", res.Interface.Attrs().Name, err)
			continue
		}
		cancel() // the first lease wins
		msg, _ := res.Lease.Message()
		l := &Link{Name: res.Interface.Attrs().Name, MAC: res.Interface.Attrs().HardwareAddr, How: "dhcp"}
		if msg != nil {
			l.Addr = &net.IPNet{IP: msg.YourIPAddr, Mask: msg.SubnetMask()}
			l.Hostname = msg.HostName()
			if r := msg.Router(); len(r) > 0 {
				l.Gateway = r[0]
			}
		}
		return l, nil
	}
	if last == nil {
		last = errors.New("no answer")
	}
	return nil, fmt.Errorf("DHCP on %s: no lease: %w", strings.Join(names, ", "), last)
}

// configure puts the lease's address and routes on its link, as u-root's
// Packet4.Configure does, and writes its name servers only to resolvConf:
// u-root's own Configure always writes dhclient.ResolvConfPath, the
// host's /etc/resolv.conf.
func configure(lease dhclient.Lease, resolvConf string) error {
	p, ok := lease.(*dhclient.Packet4)
	if !ok {
		return fmt.Errorf("not an IPv4 lease: %v", lease)
	}
	ipnet := p.Lease()
	if ipnet == nil {
		return errors.New("the DHCP answer has no address")
	}
	link := p.Link()
	if err := netlink.AddrReplace(link, &netlink.Addr{IPNet: ipnet}); err != nil {
		return fmt.Errorf("address %s on %s: %w", ipnet, link.Attrs().Name, err)
	}
	msg, _ := p.Message()
	var routes []*netlink.Route
	if rs := msg.ClasslessStaticRoute(); rs != nil { // RFC 3442: they replace the Router option
		for _, r := range rs {
			nr := &netlink.Route{LinkIndex: link.Attrs().Index, Dst: r.Dest, Gw: r.Router}
			if nr.Gw == nil || nr.Gw.Equal(net.IPv4zero) {
				nr.Scope = netlink.SCOPE_LINK
			}
			routes = append(routes, nr)
		}
	} else if gw := msg.Router(); len(gw) > 0 {
		routes = append(routes, &netlink.Route{LinkIndex: link.Attrs().Index, Gw: gw[0]})
	}
	for _, r := range routes {
		if err := netlink.RouteReplace(r); err != nil {
			return fmt.Errorf("route %s on %s: %w", r, link.Attrs().Name, err)
		}
	}
	if resolvConf == "" {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(resolvConf), 0o755); err != nil {
		return err
	}
	ns, search, domain := p.GatherDNSSettings()
	return dhclient.WriteDNSSettings(ns, search, domain, resolvConf)
}

// ethernetLinks waits until there are Ethernet links (the NIC driver may
// still be loading).
func ethernetLinks(ctx context.Context, wait time.Duration) ([]netlink.Link, error) {
	deadline := time.Now().Add(wait)
	for {
		all, err := netlink.LinkList()
		if err != nil {
			return nil, fmt.Errorf("listing network links: %w", err)
		}
		var out []netlink.Link
		for _, l := range all {
			a := l.Attrs()
			if a.Name == "lo" || len(a.HardwareAddr) != 6 || l.Type() != "device" && l.Type() != "veth" {
				continue
			}
			out = append(out, l)
		}
		if len(out) > 0 {
			return out, nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return nil, fmt.Errorf("no Ethernet link after %s (NIC driver not loaded?)", wait)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// static applies ip=CLIENT:SERVER:GATEWAY:NETMASK:HOSTNAME:DEVICE:...
func static(arg string) (*Link, error) {
	f := strings.Split(arg, ":")
	for len(f) < 7 {
		f = append(f, "")
	}
	ip := net.ParseIP(f[0]).To4()
	if ip == nil {
		return nil, fmt.Errorf("ip=%s: bad client address %q", arg, f[0])
	}
	mask := net.IPMask(net.ParseIP(f[3]).To4())
	if f[3] == "" {
		mask = ip.DefaultMask()
	} else if net.ParseIP(f[3]).To4() == nil {
		return nil, fmt.Errorf("ip=%s: bad netmask %q", arg, f[3])
	}
	var link netlink.Link
	var err error
	if f[5] != "" {
		link, err = netlink.LinkByName(f[5])
	} else {
		var ls []netlink.Link
		ls, err = ethernetLinks(context.Background(), 30*time.Second)
		if err == nil {
			link = ls[0]
		}
	}
	if err != nil {
		return nil, fmt.Errorf("ip=%s: %w", arg, err)
	}
	if err := netlink.LinkSetUp(link); err != nil {
		return nil, fmt.Errorf("ip=%s: %s up: %w", arg, link.Attrs().Name, err)
	}
	l := &Link{Name: link.Attrs().Name, MAC: link.Attrs().HardwareAddr, Addr: &net.IPNet{IP: ip, Mask: mask}, Hostname: f[4], How: "static"}
	if err := netlink.AddrReplace(link, &netlink.Addr{IPNet: l.Addr}); err != nil {
		return nil, fmt.Errorf("ip=%s: address on %s: %w", arg, l.Name, err)
	}
	if gw := net.ParseIP(f[2]).To4(); gw != nil {
		l.Gateway = gw
		if err := netlink.RouteReplace(&netlink.Route{LinkIndex: link.Attrs().Index, Gw: gw}); err != nil {
			return nil, fmt.Errorf("ip=%s: default route via %s: %w", arg, gw, err)
		}
	}
	return l, nil
}
