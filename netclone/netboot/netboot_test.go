package netboot

import (
	stdctx "context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/dhcpv4/server4"

	"github.com/clonecd/clonecd/bootenv"
	"github.com/clonecd/clonecd/fleet"
	"github.com/clonecd/clonecd/internal/testenv"
	"github.com/clonecd/clonecd/medium"
	"github.com/clonecd/clonecd/netclone"
	"github.com/clonecd/clonecd/trust"
	"github.com/clonecd/clonecd/versions"
)

// The test binary, run inside a network namespace with NETBOOT_HELPER=1,
// is the network cloner's start: DHCP, media, report.
func TestMain(m *testing.M) { os.Exit(testenv.GuardEtcOr(m, "NETBOOT_HELPER", helper)) }

// With NETBOOT_HELPER=up it is only the cloner's DHCP (Up, writing no
// resolv.conf), and prints the lease.
func helper() int {
	env := &bootenv.Env{Cmdline: bootenv.ParseCmdline(os.Getenv("CMDLINE")), Log: os.Stdout}
	if os.Getenv("NETBOOT_HELPER") == "up" {
		l, err := Up(stdctx.Background(), env.Cmdline, "", env.Logf)
		if err != nil {
			fmt.Println("FAIL", err)
			return 1
		}
		fmt.Printf("LEASE %s %s %s\n", l.Name, l.Addr, l.Hostname)
		return 0
	}
	src, err := Open(stdctx.Background(), env, os.Getenv("SERVER"))
	if err != nil {
		fmt.Println("FAIL", err)
		return 1
	}
	media, rep := src.Media, src.Reporter
	fmt.Printf("DHCP name %q\n", src.DHCPHostname)
	f, err := media.Open(medium.ImageGzip)
	if err != nil {
		fmt.Println("FAIL", err)
		return 1
	}
	rep.Step("unpack")
	h := sha256.New()
	n, err := io.Copy(h, f)
	f.Close()
	sfdisk, _ := fs.ReadFile(media, "node.sfdisk")
	rep.Done(err)
	if err != nil {
		fmt.Println("FAIL", err)
		return 1
	}
	fmt.Printf("OK %d bytes sha256 %s layout %q\n", n, hex.EncodeToString(h.Sum(nil)), strings.TrimSpace(string(sfdisk)))
	return 0
}

// TestNetbootDHCP: in a fresh network namespace with one link, the
// cloner's start gets a DHCP lease (from a real DHCPv4 server on the
// other end of the veth), takes its node name from the lease, streams the
// image from the server (HTTPS, pinned with clonecd.tls-pin=, the node's
// credential from clonecd.credential=) and reports done.
func TestNetbootDHCP(t *testing.T) {
	lab := newDHCPLab(t)
	lab.serveDHCP(t, nil)
	subnet := lab.subnet

	// Image server on the host end.
	dir := t.TempDir()
	data := []byte(strings.Repeat("clonecd image ", 100000))
	sum := sha256.Sum256(data)
	os.WriteFile(filepath.Join(dir, "node.cpio.gz"), data, 0o644)
	os.WriteFile(filepath.Join(dir, "node.cpio.gz.sha256"), []byte(hex.EncodeToString(sum[:])+"  node.cpio.gz\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "CLONE_CD_VERSION"), []byte("1.21\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "node.sfdisk"), []byte("label: gpt\n"), 0o644)
	ln, err := net.Listen("tcp", subnet+".1:0")
	if err != nil {
		t.Fatal(err)
	}
	store, err := versions.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	secret, err := store.Secret()
	if err != nil {
		t.Fatal(err)
	}
	cert, pin, err := store.ServerCert([]string{subnet + ".1"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := stdctx.WithCancel(stdctx.Background())
	defer cancel()
	go netclone.NewServer(store, netclone.ServerOptions{MaxStreams: 1, Secret: secret, TLS: trust.ServerTLSConfig(cert)}).Serve(ctx, ln)

	hw := lab.clientMAC(t).String()
	// dhcp is the name handed to the clone's identity step
	// (clone.NetSource.DHCPHostname): the lease's, whatever names the node.
	tests := []struct {
		name, cmdline, node, nodes, dhcp string
	}{
		{"dhcp", "console=ttyS0 clonecd.mode=net", "s042", "", "s042"},
		{"nodes table by MAC", "clonecd.mode=net", "n113", "# MAC HOSTNAME\n" + hw + " n113\n", "s042"},
		{"hostname on the command line", "clonecd.mode=net clonecd.hostname=canary1", "canary1", "", "s042"},
		{"static ip=", "ip=" + subnet + ".77::" + subnet + ".1:255.255.255.0:s077:eth0:off", "s077", "", "s077"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			os.Remove(filepath.Join(dir, "nodes.table"))
			if tc.nodes != "" {
				os.WriteFile(filepath.Join(dir, "nodes.table"), []byte(tc.nodes), 0o644)
			}
			c, _ := secret.Credential(tc.node)
			cmdline := tc.cmdline + " " + PinArg + "=" + pin + " " + CredentialArg + "=" + c.String()
			out, err := lab.cloner(t, "1", 3*time.Minute, "SERVER=https://"+ln.Addr().String(), "CMDLINE="+cmdline)
			if err != nil {
				t.Fatalf("cloner start in the namespace: %v\n%s", err, out)
			}
			want := fmt.Sprintf("OK %d bytes sha256 %s layout \"label: gpt\"", len(data), hex.EncodeToString(sum[:]))
			if !strings.Contains(string(out), want) {
				t.Fatalf("output:\n%s\nwant %s", out, want)
			}
			if want := fmt.Sprintf("DHCP name %q", tc.dhcp); !strings.Contains(string(out), want) {
				t.Errorf("output:\n%s\nwant %s", out, want)
			}
			st, err := store.Nodes(fleet.Limits{}).Get(tc.node)
			if err != nil || st.Summary() != "done" || st.Version != "1.21" {
				t.Fatalf("state of %s: %+v %v\n%s", tc.node, st, err, out)
			}
		})
	}
}

// dhcpLab is a network namespace of its own (ns) whose one link, eth0,
// is a veth whose peer, host, stays in the test's namespace with the
// address subnet.1/24: the segment a network cloner looks for a lease on.
type dhcpLab struct {
	ns, host, subnet string
}

var labSeq atomic.Int32

// newDHCPLab makes the namespace and the veth pair; both go when the test
// ends.
func newDHCPLab(t *testing.T) *dhcpLab {
	t.Helper()
	testenv.NeedRoot(t)
	testenv.NeedTools(t, "ip")
	id, seq := os.Getpid()%100000, labSeq.Add(1)
	l := &dhcpLab{ns: fmt.Sprintf("cdd%d-%d", id, seq), host: fmt.Sprintf("cdd%d-%dh", id, seq), subnet: fmt.Sprintf("10.214.%d", id%250)}
	testenv.Run(t, "ip", "netns", "add", l.ns)
	t.Cleanup(func() { testenv.Output("ip", "netns", "del", l.ns) })
	testenv.Run(t, "ip", "link", "add", l.host, "type", "veth", "peer", "name", "eth0", "netns", l.ns)
	t.Cleanup(func() { testenv.Output("ip", "link", "del", l.host) })
	testenv.Run(t, "ip", "addr", "add", l.subnet+".1/24", "dev", l.host)
	testenv.Run(t, "ip", "link", "set", l.host, "up")
	return l
}

// serveDHCP runs a real DHCPv4 server (insomniacslk's server4) on the host
// end until the test ends: it offers, then acknowledges, subnet.50/24
// named s042.cluster, with the host end as router. beforeOffer, if not
// nil, is called with each offer just before it is sent.
func (l *dhcpLab) serveDHCP(t *testing.T, beforeOffer func(offer *dhcpv4.DHCPv4)) {
	t.Helper()
	srvIP := net.ParseIP(l.subnet + ".1").To4()
	handler := func(conn net.PacketConn, peer net.Addr, m *dhcpv4.DHCPv4) {
		typ := dhcpv4.MessageTypeOffer
		if m.MessageType() == dhcpv4.MessageTypeRequest {
			typ = dhcpv4.MessageTypeAck
		} else if m.MessageType() != dhcpv4.MessageTypeDiscover {
			return
		}
		reply, err := dhcpv4.NewReplyFromRequest(m,
			dhcpv4.WithMessageType(typ), dhcpv4.WithYourIP(net.ParseIP(l.subnet+".50")),
			dhcpv4.WithServerIP(srvIP), dhcpv4.WithNetmask(net.CIDRMask(24, 32)),
			dhcpv4.WithRouter(srvIP), dhcpv4.WithLeaseTime(3600),
			dhcpv4.WithOption(dhcpv4.OptServerIdentifier(srvIP)),
			dhcpv4.WithOption(dhcpv4.OptHostName("s042.cluster")))
		if err != nil {
			t.Error(err)
			return
		}
		if typ == dhcpv4.MessageTypeOffer && beforeOffer != nil {
			beforeOffer(reply)
		}
		conn.WriteTo(reply.ToBytes(), &net.UDPAddr{IP: net.IPv4bcast, Port: dhcpv4.ClientPort})
	}
	ds, err := server4.NewServer(l.host, &net.UDPAddr{IP: net.IPv4zero, Port: dhcpv4.ServerPort}, handler)
	if err != nil {
		t.Fatalf("DHCP server on %s: %v", l.host, err)
	}
	go ds.Serve()
	t.Cleanup(func() { ds.Close() })
}

// clientMAC is eth0's MAC address, the cloner's.
func (l *dhcpLab) clientMAC(t *testing.T) net.HardwareAddr {
	t.Helper()
	f := strings.Fields(testenv.Run(t, "ip", "-n", l.ns, "-o", "link", "show", "eth0"))
	for i := range f[:len(f)-1] {
		if f[i] == "link/ether" {
			if mac, err := net.ParseMAC(f[i+1]); err == nil {
				return mac
			}
		}
	}
	t.Fatalf("no MAC address for eth0 in network namespace %s: %s", l.ns, strings.Join(f, " "))
	return nil
}

// cloner runs this test binary in the namespace as the helper
// (NETBOOT_HELPER=mode) with env added, from a fresh eth0 (no address),
// killed after timeout; it returns the helper's output.
func (l *dhcpLab) cloner(t *testing.T, mode string, timeout time.Duration, env ...string) ([]byte, error) {
	t.Helper()
	testenv.Output("ip", "-n", l.ns, "addr", "flush", "dev", "eth0")
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := stdctx.WithTimeout(stdctx.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "ip", "netns", "exec", l.ns, self, "-test.run=^$")
	cmd.Env = append(append(os.Environ(), "NETBOOT_HELPER="+mode), env...)
	cmd.WaitDelay = 5 * time.Second
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		err = fmt.Errorf("still running after %s: %w", timeout, err)
	}
	return out, err
}

// TestFindAccess: where the cloner finds the server's pin and its
// credential: clonecd.credential= first, then its one credential (the
// ramclone entry's), then a CD's table, where it takes its own line.
func TestFindAccess(t *testing.T) {
	secret, _ := trust.NewSecret()
	s001, _ := secret.Credential("s001")
	s002, _ := secret.Credential("s002")
	_, pin, err := trust.LoadOrCreateServerCert(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	write := func(root, file string, creds ...trust.Credential) {
		p := filepath.Join(root, file)
		os.MkdirAll(filepath.Dir(p), 0o755)
		var b strings.Builder
		for _, c := range creds {
			b.WriteString(c.String() + "\n")
		}
		if err := os.WriteFile(p, []byte(b.String()), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	empty, one, table, both := t.TempDir(), t.TempDir(), t.TempDir(), t.TempDir()
	write(one, trust.CredentialFile, s002)
	write(table, trust.CredentialsFile, s001, s002)
	write(both, trust.CredentialFile, s002)
	write(both, trust.CredentialsFile, s001)
	for _, tt := range []struct {
		name, root, cmdline, node string
		want                      trust.Credential
		err                       string
	}{
		{"nothing", empty, "", "s001", trust.Credential{}, ""},
		{"the command line first", both, CredentialArg + "=" + s001.String(), "s001", s001, ""},
		{"its own credential, whatever its name", one, "", "s001", s002, ""},
		{"its own before a table", both, "", "s001", s002, ""},
		{"its line of a table", table, "", "s002", s002, ""},
		{"not in the table", table, "", "s003", trust.Credential{}, "node s003 has no credential in /etc/clonecd/credentials"},
		{"a bad command line", empty, CredentialArg + "=-o:x", "s001", trust.Credential{}, CredentialArg},
	} {
		cmdline := bootenv.ParseCmdline(tt.cmdline + " " + PinArg + "=" + pin)
		a, creds, err := FindAccess(cmdline, tt.root)
		var c trust.Credential
		if err == nil {
			c, err = creds.For(tt.node)
		}
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("%s: %v; want an error saying %q", tt.name, err, tt.err)
			}
			continue
		}
		if err != nil || c != tt.want || a.TLS == nil {
			t.Errorf("%s: credential %v, TLS %v, %v; want %v and the pin", tt.name, c, a.TLS != nil, err, tt.want)
		}
	}
	if _, _, err := FindAccess(map[string]string{PinArg: "sha256//nope"}, empty); err == nil {
		t.Errorf("FindAccess(a bad pin) succeeded")
	}
}

// TestSwarmOptions: the swarm is on unless clonecd.swarm=0 (issue 13:
// the cloner uses it when the server offers it), clonecd.seed bounds the
// seeding; anything else is refused with the argument's name.
func TestSwarmOptions(t *testing.T) {
	for _, tt := range []struct {
		cmdline map[string]string
		on      bool
		seed    time.Duration
		err     string
	}{
		{map[string]string{}, true, 0, ""},
		{map[string]string{"clonecd.seed": "90s"}, true, 90 * time.Second, ""},
		{map[string]string{"clonecd.swarm": "0"}, false, 0, ""},
		{map[string]string{"clonecd.swarm": "off"}, false, 0, ""},
		{map[string]string{"clonecd.swarm": ""}, true, 0, ""},
		{map[string]string{"clonecd.swarm": "1"}, true, 0, ""},
		{map[string]string{"clonecd.swarm": "1", "clonecd.seed": "2m"}, true, 2 * time.Minute, ""},
		{map[string]string{"clonecd.swarm": "maybe"}, false, 0, "clonecd.swarm=maybe"},
		{map[string]string{"clonecd.swarm": "1", "clonecd.seed": "-1s"}, false, 0, "clonecd.seed=-1s"},
	} {
		o, err := SwarmOptions(tt.cmdline)
		switch {
		case tt.err != "":
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("SwarmOptions(%v) = %v; want an error naming %s", tt.cmdline, err, tt.err)
			}
		case err != nil || (o != nil) != tt.on || o != nil && o.Seed != tt.seed:
			t.Errorf("SwarmOptions(%v) = %+v, %v; want on %v, seed %s", tt.cmdline, o, err, tt.on, tt.seed)
		}
	}
}
