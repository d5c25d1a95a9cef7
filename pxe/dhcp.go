package pxe

import (
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
)

// handleDHCP is server4's handler: one reply (or none) per request.
func (s *Server) handleDHCP(conn net.PacketConn, peer net.Addr, m *dhcpv4.DHCPv4) {
	port := 67
	if a, ok := conn.LocalAddr().(*net.UDPAddr); ok {
		port = a.Port
	}
	r, err := s.Reply(m, port)
	if err != nil {
		s.logf("pxe: DHCP %s from %s: %v", m.MessageType(), m.ClientHWAddr, err)
		return
	}
	if r == nil {
		return
	}
	to := peer
	if u, ok := peer.(*net.UDPAddr); ok && u.IP.Equal(net.IPv4bcast) && port == 67 {
		to = &net.UDPAddr{IP: net.IPv4bcast, Port: 68}
	}
	if _, err := conn.WriteTo(r.ToBytes(), to); err != nil {
		s.logf("pxe: DHCP %s to %s: %v", r.MessageType(), m.ClientHWAddr, err)
	}
}

// Reply is the answer to request m received on port (67, or 4011 for a
// PXE boot-server request), or nil for none.
//
// Proxy mode (no Range) answers only network boots (PXEClient,
// HTTPClient, iPXE): an offer with no address (yiaddr 0), our address as
// option 54 and siaddr, option 60 PXEClient or HTTPClient, for PXEClient
// option 43 with discovery control 8 (boot from this answer's file), and
// the boot file. A boot-server request on 4011 gets the same as an ACK.
// Full mode leases addresses from Range to every client (the cloner's own
// "PXE UROOT" request too) and adds the boot file for network boots.
// Either way a UEFI client that must boot its disk gets no boot file:
// the firmware then moves on to the disk.
func (s *Server) Reply(m *dhcpv4.DHCPv4, port int) (*dhcpv4.DHCPv4, error) {
	if m.OpCode != dhcpv4.OpcodeBootRequest || len(m.ClientHWAddr) != 6 {
		return nil, nil
	}
	c := ClientFrom(m)
	mt := m.MessageType()
	var boot string
	var b Boot
	if c.Booting() {
		if !c.Supported() {
			s.logf("pxe: %s: no boot files for client arch %d", c, uint16(c.Arch))
		} else {
			s.remember(c)
			var err error
			if b, err = s.decide(c); err != nil {
				return nil, err
			}
			boot = s.bootFile(b)
			s.logf("pxe: DHCP %s from %s: %s (%s), boot file %q", mt, c, b.Decision.Action, b.Decision.Why, boot)
		}
	}
	if s.cfg.Range == nil {
		return s.proxyReply(m, c, mt, port, boot)
	}
	return s.fullReply(m, c, mt, boot)
}

// bootFile is the boot file or URL for a decided boot; "" for a UEFI
// client that must boot its disk.
func (s *Server) bootFile(b Boot) string {
	c := b.Client
	if b.Decision.Action != Clone && c.Firmware() == UEFI {
		return ""
	}
	switch {
	case c.IPXE():
		return s.cfg.BootURL + Prefix + "node/" + c.MAC.String() + ".ipxe?fw=" + c.Firmware().String()
	case c.HTTPBoot():
		return s.cfg.BootURL + Prefix + "boot/" + FileUEFI
	case c.Firmware() == BIOS:
		return FileBIOS
	case s.cfg.SecureBoot:
		return FileShim
	}
	return FileUEFI
}

func (s *Server) bootModifiers(c Client, boot string, proxy bool) []dhcpv4.Modifier {
	mods := []dhcpv4.Modifier{dhcpv4.WithServerIP(s.cfg.ServerIP)}
	if c.HTTPBoot() {
		mods = append(mods, dhcpv4.WithOption(dhcpv4.OptClassIdentifier("HTTPClient")))
	} else if proxy {
		mods = append(mods, dhcpv4.WithOption(dhcpv4.OptClassIdentifier("PXEClient")),
			// PXE vendor options: discovery control (6) = 8: boot from
			// the file named in this answer, no boot server discovery.
			dhcpv4.WithGeneric(dhcpv4.OptionVendorSpecificInformation, []byte{6, 1, 8, 255}))
	}
	mods = append(mods, func(d *dhcpv4.DHCPv4) { d.BootFileName = boot })
	if len(boot) < 128 {
		return mods
	}
	// A URL longer than the file field goes in option 67 only.
	return append(mods, func(d *dhcpv4.DHCPv4) { d.BootFileName = "" }, dhcpv4.WithOption(dhcpv4.OptBootFileName(boot)))
}

func (s *Server) proxyReply(m *dhcpv4.DHCPv4, c Client, mt dhcpv4.MessageType, port int, boot string) (*dhcpv4.DHCPv4, error) {
	if boot == "" {
		return nil, nil
	}
	var t dhcpv4.MessageType
	switch {
	case mt == dhcpv4.MessageTypeDiscover && port == 67:
		t = dhcpv4.MessageTypeOffer
	case mt == dhcpv4.MessageTypeRequest && port == 4011:
		t = dhcpv4.MessageTypeAck
	case mt == dhcpv4.MessageTypeInform:
		t = dhcpv4.MessageTypeAck
	default:
		// a REQUEST on 67 is for the site's DHCP server
		return nil, nil
	}
	mods := []dhcpv4.Modifier{dhcpv4.WithMessageType(t), dhcpv4.WithYourIP(net.IPv4zero),
		dhcpv4.WithOption(dhcpv4.OptServerIdentifier(s.cfg.ServerIP)),
		dhcpv4.WithOptionCopied(m, dhcpv4.OptionClientMachineIdentifier)}
	mods = append(mods, s.bootModifiers(c, boot, true)...)
	return dhcpv4.NewReplyFromRequest(m, mods...)
}

func (s *Server) fullReply(m *dhcpv4.DHCPv4, c Client, mt dhcpv4.MessageType, boot string) (*dhcpv4.DHCPv4, error) {
	mac := c.MAC.String()
	var t dhcpv4.MessageType
	var ip netip.Addr
	s.leasesMu.Lock()
	switch mt {
	case dhcpv4.MessageTypeDiscover:
		var err error
		ip, err = s.leases.offer(mac, addrOf(m.RequestedIPAddress()))
		if err != nil {
			s.leasesMu.Unlock()
			return nil, err
		}
		t = dhcpv4.MessageTypeOffer
	case dhcpv4.MessageTypeRequest:
		if sid := m.ServerIdentifier(); sid != nil && !sid.Equal(s.cfg.ServerIP) {
			s.leasesMu.Unlock()
			return nil, nil // the client chose another server
		}
		want := addrOf(m.RequestedIPAddress())
		if !want.IsValid() {
			want = addrOf(m.ClientIPAddr)
		}
		if s.leases.take(mac, want, s.cfg.LeaseTime) {
			ip, t = want, dhcpv4.MessageTypeAck
		} else {
			t = dhcpv4.MessageTypeNak
		}
	case dhcpv4.MessageTypeRelease, dhcpv4.MessageTypeDecline:
		s.leases.release(mac)
		s.leasesMu.Unlock()
		return nil, nil
	default:
		s.leasesMu.Unlock()
		return nil, nil
	}
	s.leasesMu.Unlock()
	mods := []dhcpv4.Modifier{dhcpv4.WithMessageType(t), dhcpv4.WithOption(dhcpv4.OptServerIdentifier(s.cfg.ServerIP))}
	if t == dhcpv4.MessageTypeNak {
		return dhcpv4.NewReplyFromRequest(m, mods...)
	}
	mods = append(mods, dhcpv4.WithYourIP(ip.AsSlice()), dhcpv4.WithNetmask(s.cfg.Range.Mask),
		dhcpv4.WithLeaseTime(uint32(s.cfg.LeaseTime/time.Second)))
	if s.cfg.Router != nil {
		mods = append(mods, dhcpv4.WithRouter(s.cfg.Router))
	}
	if len(s.cfg.DNS) > 0 {
		mods = append(mods, dhcpv4.WithDNS(s.cfg.DNS...))
	}
	if boot != "" {
		mods = append(mods, s.bootModifiers(c, boot, false)...)
	}
	return dhcpv4.NewReplyFromRequest(m, mods...)
}

func addrOf(ip net.IP) netip.Addr {
	if ip4 := ip.To4(); ip4 != nil && !ip4.Equal(net.IPv4zero) {
		return netip.AddrFrom4([4]byte(ip4))
	}
	return netip.Addr{}
}

// pool is the full-DHCP leases: one address per MAC, kept (in memory)
// after it expires until another MAC needs it.
type pool struct {
	r      Range
	server netip.Addr
	byMAC  map[string]netip.Addr
	byAddr map[netip.Addr]lease
}

type lease struct {
	mac     string
	expires time.Time
}

func newPool(r Range, server netip.Addr) *pool {
	return &pool{r: r, server: server, byMAC: map[string]netip.Addr{}, byAddr: map[netip.Addr]lease{}}
}

func (p *pool) inRange(a netip.Addr) bool {
	return a.IsValid() && a.Is4() && !a.Less(p.r.Start) && !p.r.End.Less(a) && a != p.server
}

func (p *pool) free(a netip.Addr, mac string) bool {
	l, ok := p.byAddr[a]
	return !ok || l.mac == mac || time.Now().After(l.expires) && p.byMAC[l.mac] != a
}

// offer picks mac's address: its lease, else the one it asks for if free,
// else the first free one.
func (p *pool) offer(mac string, want netip.Addr) (netip.Addr, error) {
	if a, ok := p.byMAC[mac]; ok {
		return a, nil
	}
	if p.inRange(want) && p.free(want, mac) {
		return want, nil
	}
	for a := p.r.Start; !p.r.End.Less(a); a = a.Next() {
		if p.inRange(a) && p.free(a, mac) {
			return a, nil
		}
	}
	// every address has a holder: reuse the longest expired one
	var oldest netip.Addr
	var when time.Time
	for a, l := range p.byAddr {
		if time.Now().After(l.expires) && (!oldest.IsValid() || l.expires.Before(when)) {
			oldest, when = a, l.expires
		}
	}
	if !oldest.IsValid() {
		return netip.Addr{}, fmt.Errorf("DHCP range %s-%s is full", p.r.Start, p.r.End)
	}
	delete(p.byMAC, p.byAddr[oldest].mac)
	delete(p.byAddr, oldest)
	return oldest, nil
}

// take leases a to mac if a is in the range and not someone else's.
func (p *pool) take(mac string, a netip.Addr, d time.Duration) bool {
	if !p.inRange(a) {
		return false
	}
	if l, ok := p.byAddr[a]; ok && l.mac != mac && time.Now().Before(l.expires) {
		return false
	}
	if old, ok := p.byMAC[mac]; ok && old != a {
		delete(p.byAddr, old)
	}
	if l, ok := p.byAddr[a]; ok && l.mac != mac {
		delete(p.byMAC, l.mac)
	}
	p.byMAC[mac] = a
	p.byAddr[a] = lease{mac: mac, expires: time.Now().Add(d)}
	return true
}

func (p *pool) release(mac string) {
	if a, ok := p.byMAC[mac]; ok {
		delete(p.byMAC, mac)
		delete(p.byAddr, a)
	}
}
