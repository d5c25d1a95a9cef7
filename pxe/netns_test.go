package pxe

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/dhcpv4/nclient4"
	"pack.ag/tftp"
)

// TestProxyBesideDnsmasq: on a real bridge in the test's namespace,
// Debian's dnsmasq gives addresses (no boot file) and this package is the
// proxyDHCP on a veth beside it. A client socket on a third port of the
// bridge broadcasts DISCOVERs as the firmware does and collects every
// answer: a marked UEFI client gets dnsmasq's address offer and our offer
// (no address, PXEClient, snponly.efi); an unmarked one and the cloner's
// own DHCP get dnsmasq's offer only. Then the PXE boot-server request on
// 4011, the boot file over TFTP and stage 2 over HTTP, all on the bridge.
func TestProxyBesideDnsmasq(t *testing.T) {
	t.Parallel()
	l, iface := clientLab(t)
	if l == nil {
		return
	}
	bootDir := filepath.Join(l.dir, "boot")
	os.MkdirAll(bootDir, 0o755)
	efi := bytes.Repeat([]byte("snponly.efi "), 30000) // 360 KB: many TFTP blocks
	os.WriteFile(filepath.Join(bootDir, FileUEFI), efi, 0o644)
	l.policy = &DirPolicy{Dir: filepath.Join(l.dir, "hosts"), Names: func(mac string) string { return labNodes[mac] }}
	if err := l.policy.Mark(mustMAC(t, "52:54:00:7e:00:01"), "", ""); err != nil {
		t.Fatal(err)
	}
	srv, err := New(Config{Interface: iface, ServerIP: net.ParseIP(l.ip), BootURL: "http://" + l.ip + ":8080",
		BootDir: bootDir, Media: testMedia, Policy: l.policy, Logf: func(f string, a ...any) { t.Logf(f, a...) }})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ctx) }()
	defer func() { cancel(); <-errc }()
	ln, err := net.Listen("tcp", l.ip+":8080")
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: srv.Handler()}
	go hs.Serve(ln)
	defer hs.Close()
	defer func() {
		if t.Failed() {
			t.Logf("lab log:\n%s", l.logText())
		}
	}()

	offers := func(mac string, k kind) map[string]*dhcpv4.DHCPv4 { return dhcpOffers(t, "cB", mac, k) }
	site, proxy := labSubnet+".1", labSubnet+".2"
	// Wait for dnsmasq (and the proxy's sockets) on a loaded machine: a
	// marked client gets both answers once both are up.
	for deadline := time.Now().Add(time.Minute); ; {
		got := offers("52:54:00:7e:00:01", uefiPXE)
		if got[site] != nil && got[proxy] != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no answer from dnsmasq and the proxy within a minute: %v", got)
		}
	}
	for _, tt := range []struct {
		name, mac string
		k         kind
		proxyFile string // "": no answer from the proxy
	}{
		{"marked UEFI", "52:54:00:7e:00:01", uefiPXE, FileUEFI},
		{"unmarked UEFI", "52:54:00:7e:00:02", uefiPXE, ""},
		{"marked BIOS iPXE", "52:54:00:7e:00:01", biosIPXE, "http://" + proxy + ":8080/pxe/node/52:54:00:7e:00:01.ipxe?fw=bios"},
		{"the cloner", "52:54:00:7e:00:01", cloner, ""},
	} {
		got := offers(tt.mac, tt.k)
		s := got[site]
		if s == nil || s.YourIPAddr.Equal(net.IPv4zero) || s.BootFileName != "" {
			t.Errorf("%s: dnsmasq's offer = %v; want an address and no boot file", tt.name, s)
		}
		p := got[proxy]
		switch {
		case tt.proxyFile == "" && p != nil:
			t.Errorf("%s: the proxy answered %q; want silence", tt.name, p.BootFileName)
		case tt.proxyFile != "" && p == nil:
			t.Errorf("%s: no proxy offer; want boot file %q", tt.name, tt.proxyFile)
		case p != nil && (p.BootFileName != tt.proxyFile || !p.YourIPAddr.Equal(net.IPv4zero) || p.ClassIdentifier() != "PXEClient"):
			t.Errorf("%s: proxy offer file %q yiaddr %s class %q; want %q, 0.0.0.0, PXEClient", tt.name, p.BootFileName, p.YourIPAddr, p.ClassIdentifier(), tt.proxyFile)
		}
	}

	// TFTP and stage 2 (from this namespace: the handlers, the ports and
	// the proxy's address; the 4011 answer is TestReply's).
	tc, err := tftp.NewClient(tftp.ClientBlocksize(1024))
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name string
		want []byte
	}{
		{FileUEFI, efi},
		{"grub/grub.cfg", []byte(GrubBootstrap)},
		{"v/9.9/vmlinuz", nil}, // testMedia has only 1.20
		{"v/1.20/vmlinuz", []byte("KERNEL-1.20")},
		{"/v/1.20/initrd.img", []byte("INITRD-1.20")},
		{"../../etc/passwd", nil},
	} {
		resp, err := tc.Get("tftp://" + proxy + "/" + strings.TrimPrefix(tt.name, "/"))
		var got []byte
		if err == nil {
			got, err = io.ReadAll(resp)
		}
		if tt.want == nil {
			if err == nil {
				t.Errorf("TFTP %s = %d bytes; want not found", tt.name, len(got))
			}
			continue
		}
		if err != nil || !bytes.Equal(got, tt.want) {
			t.Errorf("TFTP %s = %d bytes, %v; want %d bytes", tt.name, len(got), err, len(tt.want))
		}
	}
	resp, err := tc.Get("tftp://" + proxy + "/grub/node/52:54:00:7e:00:01")
	if err == nil {
		b, _ := io.ReadAll(resp)
		if !strings.Contains(string(b), "linux (tftp,"+proxy+")/v/1.20/vmlinuz") || !strings.Contains(string(b), "clonecd.hostname=pxe01") {
			t.Errorf("TFTP grub/node/MAC:\n%s", b)
		}
	} else {
		t.Errorf("TFTP grub/node/MAC: %v", err)
	}
	hr, err := http.Get("http://" + proxy + ":8080/pxe/node/52:54:00:7e:00:01.ipxe")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(hr.Body)
	hr.Body.Close()
	if !strings.Contains(string(b), "clonecd.mode=net") {
		t.Errorf("stage 2 over the bridge:\n%s", b)
	}
	hosts, _ := l.policy.Hosts()
	if len(hosts) != 2 {
		t.Errorf("hosts after the DISCOVERs: %+v; want the marked one and the unmarked one", hosts)
	}
}

// dhcpOffers broadcasts a DISCOVER as mac (of kind k) from port (a veth
// in the lab's bridge) and returns every server's answer by its server
// identifier. nclient4 sends from 0.0.0.0 through a packet socket, as
// firmware does: a UDP socket here would take br0's address as its
// source, and the bridge would drop that as a martian.
func dhcpOffers(t *testing.T, port, mac string, k kind) map[string]*dhcpv4.DHCPv4 {
	t.Helper()
	hw := mustMAC(t, mac)
	c, err := nclient4.New(port, nclient4.WithHWAddr(hw), nclient4.WithTimeout(4*time.Second), nclient4.WithRetry(1))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	m := request(t, mac, k, dhcpv4.MessageTypeDiscover)
	got := map[string]*dhcpv4.DHCPv4{}
	c.SendAndRead(context.Background(), nclient4.DefaultServers, m, func(r *dhcpv4.DHCPv4) bool {
		got[r.ServerIdentifier().String()] = r
		return false // keep listening: every server's answer counts
	})
	return got
}
