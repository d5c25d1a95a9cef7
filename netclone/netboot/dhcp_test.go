package netboot

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"golang.org/x/sys/unix"
)

// TestDHCPMalformedFrames is the regression test of security review item
// 12 (GO-2026-6237): the cloner's DHCP client (Up: u-root's dhclient on
// insomniacslk's nclient4, whose BroadcastRawUDPConn reads every IPv4
// frame of the link) took the DHCP length as the IPv4 payload less a UDP
// header, so a frame whose IPv4 total length left fewer than 8 payload
// bytes made it negative and panicked the receive loop; in the network
// cloner that is PID 1, so any host on the segment could crash every node
// looking for a lease. In a namespace of its own the cloner's DHCP runs
// while, just before the real server's first offer, the far end of the
// veth sends it one hostile frame (to its MAC and to broadcast) from an
// AF_PACKET socket; it must still take the lease, within a bound. A
// second AF_PACKET socket on the cloner's side checks that the frames
// arrived as sent.
func TestDHCPMalformedFrames(t *testing.T) {
	lab := newDHCPLab(t)
	in := newInjector(t, lab)
	lab.serveDHCP(t, in.beforeOffer)

	// Each row is one IPv4 packet, from the server's address and port 67
	// to 255.255.255.255 port 68: all that the client's socket lets
	// through, so that it is parsed.
	type row struct {
		name   string
		packet func(offer *dhcpv4.DHCPv4) []byte
	}
	var rows []row
	for payload := 0; payload <= udpHeaderLen; payload++ {
		rows = append(rows, row{fmt.Sprintf("IPv4 payload of %d bytes", payload), func(offer *dhcpv4.DHCPv4) []byte {
			// The UDP header is there, but past the end the IPv4 header
			// says up to 7 bytes; 8 is the boundary, an empty datagram.
			return hostileIPv4(offer, 5, ipv4HeaderLen+payload, udpHeaderLen, nil)
		}})
	}
	rows = append(rows,
		row{"IPv4 header length beyond the frame", func(offer *dhcpv4.DHCPv4) []byte {
			return hostileIPv4(offer, 15, ipv4HeaderLen+udpHeaderLen, udpHeaderLen, nil)
		}},
		row{"IPv4 header length below the minimum", func(offer *dhcpv4.DHCPv4) []byte {
			return hostileIPv4(offer, 2, ipv4HeaderLen+udpHeaderLen, udpHeaderLen, nil)
		}},
		row{"IPv4 total length beyond the frame", func(offer *dhcpv4.DHCPv4) []byte {
			return hostileIPv4(offer, 5, 1500, udpHeaderLen, nil)
		}},
		row{"UDP length beyond the payload", func(offer *dhcpv4.DHCPv4) []byte {
			body := []byte{1, 1, 6, 0}
			return hostileIPv4(offer, 5, ipv4HeaderLen+udpHeaderLen+len(body), 1400, body)
		}},
		row{"the offer cut in its fixed header", func(offer *dhcpv4.DHCPv4) []byte {
			body := offer.ToBytes()[:100] // its transaction ID, the client's
			return hostileIPv4(offer, 5, ipv4HeaderLen+udpHeaderLen+len(body), udpHeaderLen+len(body), body)
		}},
		row{"the offer cut in its options", func(offer *dhcpv4.DHCPv4) []byte {
			body := offer.ToBytes()[:240+3] // the magic cookie, then half an option
			return hostileIPv4(offer, 5, ipv4HeaderLen+udpHeaderLen+len(body), udpHeaderLen+len(body), body)
		}},
	)

	want := fmt.Sprintf("LEASE eth0 %s.50/24 s042.cluster", lab.subnet)
	for _, tc := range rows {
		t.Run(tc.name, func(t *testing.T) {
			capture := capture(t, lab.ns)
			in.arm(tc.packet)
			out, err := lab.cloner(t, "up", 30*time.Second)
			sent, sendErr := in.disarm()
			if err != nil || bytes.Contains(out, []byte("panic:")) {
				t.Fatalf("%s: the cloner's DHCP died or found no lease: %v\n%s", tc.name, err, out)
			}
			if !strings.Contains(string(out), want) {
				t.Fatalf("%s: the cloner's DHCP output:\n%s\nwant %s", tc.name, out, want)
			}
			if sendErr != nil || len(sent) != 2 {
				t.Fatalf("%s: %d hostile frames sent from %s (%v); want 2, to the cloner's MAC and to broadcast", tc.name, len(sent), lab.host, sendErr)
			}
			got := map[string]int{}
			for _, f := range capture.frames(t) {
				got[string(f)]++
			}
			for _, f := range sent {
				if got[string(f)] != 1 {
					t.Errorf("%s: eth0 in %s received the hostile frame to %s %d times; want once", tc.name, lab.ns, net.HardwareAddr(f[:6]), got[string(f)])
				}
			}
		})
	}
}

const (
	ipv4HeaderLen = 20
	udpHeaderLen  = 8
	ethHeaderLen  = 14
	ethMinLen     = 60 // a shorter frame is padded, as NICs pad it
)

// hostileIPv4 is a 20-byte IPv4 header, an 8-byte UDP header and body,
// from offer's server (port 67) to 255.255.255.255 port 68, whose IPv4
// header length field (in 32-bit words), total length and UDP length are
// ihl, total and udpLen whatever the bytes there. Its header checksum is
// right, so that only those fields are hostile.
func hostileIPv4(offer *dhcpv4.DHCPv4, ihl, total, udpLen int, body []byte) []byte {
	p := make([]byte, ipv4HeaderLen+udpHeaderLen+len(body))
	p[0] = 4<<4 | byte(ihl)
	binary.BigEndian.PutUint16(p[2:], uint16(total))
	p[8] = 64 // TTL
	p[9] = unix.IPPROTO_UDP
	copy(p[12:16], offer.ServerIPAddr.To4())
	copy(p[16:20], net.IPv4bcast.To4())
	var sum uint32
	for i := 0; i < ipv4HeaderLen; i += 2 {
		sum += uint32(binary.BigEndian.Uint16(p[i:]))
	}
	for sum > 0xffff {
		sum = sum>>16 + sum&0xffff
	}
	binary.BigEndian.PutUint16(p[10:], ^uint16(sum))
	u := p[ipv4HeaderLen:]
	binary.BigEndian.PutUint16(u[0:], dhcpv4.ServerPort)
	binary.BigEndian.PutUint16(u[2:], dhcpv4.ClientPort)
	binary.BigEndian.PutUint16(u[4:], uint16(udpLen))
	copy(u[udpHeaderLen:], body)
	return p
}

// injector sends the hostile frames from the host end of the veth, just
// before the DHCP server's first offer once armed: the cloner's client
// then reads them before the offer, and before the acknowledgement it
// waits for after it.
type injector struct {
	fd      int
	ifindex int
	src     net.HardwareAddr   // the host end's
	dsts    []net.HardwareAddr // the cloner's MAC, broadcast
	mu      sync.Mutex
	packet  func(offer *dhcpv4.DHCPv4) []byte // nil once sent
	sent    [][]byte
	err     error
}

func newInjector(t *testing.T, lab *dhcpLab) *injector {
	t.Helper()
	fd, ifi, err := packetSocket(lab.host, 0) // sends only
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	return &injector{fd: fd, ifindex: ifi.Index, src: ifi.HardwareAddr, dsts: []net.HardwareAddr{lab.clientMAC(t), {0xff, 0xff, 0xff, 0xff, 0xff, 0xff}}}
}

// arm makes the next offer preceded by packet, in an Ethernet frame to the
// cloner's MAC and in one to broadcast.
func (in *injector) arm(packet func(offer *dhcpv4.DHCPv4) []byte) {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.packet, in.sent, in.err = packet, nil, nil
}

// disarm returns the frames sent since arm, and the first error sending.
func (in *injector) disarm() ([][]byte, error) {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.packet = nil
	return in.sent, in.err
}

// beforeOffer is the DHCP server's hook.
func (in *injector) beforeOffer(offer *dhcpv4.DHCPv4) {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.packet == nil {
		return
	}
	p := in.packet(offer)
	in.packet = nil
	for _, dst := range in.dsts {
		f := make([]byte, max(ethHeaderLen+len(p), ethMinLen))
		copy(f, dst)
		copy(f[6:], in.src)
		binary.BigEndian.PutUint16(f[12:], unix.ETH_P_IP)
		copy(f[ethHeaderLen:], p)
		var addr [8]byte
		copy(addr[:], dst)
		err := unix.Sendto(in.fd, f, 0, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_IP), Ifindex: in.ifindex, Halen: 6, Addr: addr})
		if err != nil {
			if in.err == nil {
				in.err = fmt.Errorf("sending to %s: %w", dst, err)
			}
			continue
		}
		in.sent = append(in.sent, f)
	}
}

// packetCapture is an AF_PACKET socket on eth0 in a namespace that
// receives every frame of the link.
type packetCapture struct{ fd int }

// capture opens it, before the cloner starts, in the namespace ns, and
// closes it when the test ends.
func capture(t *testing.T, ns string) *packetCapture {
	t.Helper()
	var fd int
	err := inNetns(ns, func() (err error) {
		fd, _, err = packetSocket("eth0", unix.ETH_P_ALL)
		return err
	})
	if err != nil {
		t.Fatalf("capture in network namespace %s: %v", ns, err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	return &packetCapture{fd}
}

// frames returns the frames the link received (or sent) since capture,
// all of which are queued by the time the cloner has its lease.
func (c *packetCapture) frames(t *testing.T) [][]byte {
	t.Helper()
	var out [][]byte
	buf := make([]byte, 1<<16)
	for {
		n, _, err := unix.Recvfrom(c.fd, buf, unix.MSG_DONTWAIT)
		if err == unix.EAGAIN {
			return out
		}
		if err == unix.ENETDOWN {
			continue // bound while eth0 was down (the cloner brings it up): said once, frames follow
		}
		if err != nil {
			t.Fatalf("reading the capture: %v", err)
		}
		out = append(out, bytes.Clone(buf[:n]))
	}
}

// packetSocket is an AF_PACKET raw socket bound to the link ifname (in
// the calling thread's network namespace) for the Ethernet protocol proto
// (0: none, to send only).
func packetSocket(ifname string, proto uint16) (int, *net.Interface, error) {
	ifi, err := net.InterfaceByName(ifname)
	if err != nil {
		return -1, nil, err
	}
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, int(htons(proto)))
	if err != nil {
		return -1, nil, fmt.Errorf("AF_PACKET socket on %s: %w", ifname, err)
	}
	if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(proto), Ifindex: ifi.Index}); err != nil {
		unix.Close(fd)
		return -1, nil, fmt.Errorf("binding an AF_PACKET socket to %s: %w", ifname, err)
	}
	return fd, ifi, nil
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// inNetns runs f on an OS thread moved into the network namespace ns
// (ip netns add's): what f opens stays there. The thread is never
// unlocked, so it ends with f and no other goroutine runs in ns.
func inNetns(ns string, f func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		h, err := os.Open(filepath.Join("/run/netns", ns))
		if err != nil {
			errc <- err
			return
		}
		defer h.Close()
		if err := unix.Setns(int(h.Fd()), unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("entering network namespace %s: %w", ns, err)
			return
		}
		errc <- f()
	}()
	return <-errc
}
