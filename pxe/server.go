package pxe

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4/server4"
	"pack.ag/tftp"
)

// Config is what `clonecd serve --pxe` passes in (cli/pxe.go).
type Config struct {
	// Interface is the cluster network interface; DHCP listens only there.
	Interface string
	// ServerIP is this server's address on Interface, given to clients
	// as the TFTP server (siaddr, option 54); nil: Interface's first IPv4
	// address.
	ServerIP net.IP
	// Range makes this the network's DHCP server, leasing addresses from
	// it; nil: proxyDHCP beside the site's DHCP server (no addresses).
	Range *Range
	// Router and DNS go into full-DHCP answers (optional).
	Router net.IP
	DNS    []net.IP
	// LeaseTime of full-DHCP leases (0: one hour).
	LeaseTime time.Duration

	// BootURL is the HTTP server Handler is mounted on, as nodes reach it
	// (http://10.0.0.1:8080); ImageServer is the cloner's clonecd.server=
	// ("": BootURL).
	BootURL     string
	ImageServer string
	// BootDir holds the boot files (BootFiles, copied by CopyBootFiles).
	BootDir string
	// BootFS, when not nil, is opened at every request instead of
	// BootDir: `clonecd serve` serves the current version's boot files,
	// so a publish or a rollback takes effect at the next boot.
	BootFS func() fs.FS
	// Media opens a version's medium (medium's names: isolinux/vmlinuz,
	// isolinux/initrd.img) and returns the version it resolved; "" is the
	// current version.
	Media func(version string) (fs.FS, string, error)
	// Policy decides who gets the cloner.
	Policy Policy
	// SecureBoot gives UEFI PXE clients Debian's signed chain (shim,
	// GRUB, the version's kernel, which must be Debian-signed) instead of
	// iPXE. It also boots with Secure Boot off.
	SecureBoot bool

	// Args are extra kernel arguments for every cloner. Placeholder for
	// the trust round: the trusted key or the server's pin go here.
	Args []string
	// Credential returns a node's credential as one kernel argument
	// ("": none). Placeholder for the trust round.
	Credential func(node string) (string, error)

	// Logf gets one line per decision and per error; nil: silent.
	Logf func(format string, a ...any)
	// TFTPSinglePort answers every TFTP transfer from ServerIP:69 instead
	// of a port of its own. A transfer's own port is bound to no address,
	// so the kernel picks its source address by route; on a master with
	// two addresses in the cluster's subnet that can be the wrong one, and
	// firmware ignores the answer ("PXE-E18: Server response timeout").
	// Single-port mode also passes firewalls that allow only port 69.
	TFTPSinglePort bool
}

// Range is a full-DHCP address pool, both ends included, with its netmask.
type Range struct {
	Start, End netip.Addr
	Mask       net.IPMask
}

// ParseRange reads --pxe-range START-END[/PREFIX] (PREFIX default 24).
func ParseRange(s string) (*Range, error) {
	prefix := "24"
	if i := strings.IndexByte(s, '/'); i >= 0 {
		s, prefix = s[:i], s[i+1:]
	}
	a, b, ok := strings.Cut(s, "-")
	if !ok {
		return nil, fmt.Errorf("DHCP range %q: want START-END[/PREFIX], e.g. 10.0.0.100-10.0.0.199/24", s)
	}
	start, err := netip.ParseAddr(a)
	if err != nil || !start.Is4() {
		return nil, fmt.Errorf("DHCP range %q: %q is not an IPv4 address", s, a)
	}
	end, err := netip.ParseAddr(b)
	if err != nil || !end.Is4() {
		return nil, fmt.Errorf("DHCP range %q: %q is not an IPv4 address", s, b)
	}
	if end.Less(start) {
		return nil, fmt.Errorf("DHCP range %q: ends before it starts", s)
	}
	p, err := netip.ParsePrefix(start.String() + "/" + prefix)
	if err != nil || p.Bits() < 8 || p.Bits() > 30 {
		return nil, fmt.Errorf("DHCP range %q: prefix /%s: want 8 to 30", s, prefix)
	}
	if !p.Masked().Contains(end) {
		return nil, fmt.Errorf("DHCP range %q: %s and %s are not in one /%d network", s, start, end, p.Bits())
	}
	return &Range{Start: start, End: end, Mask: net.CIDRMask(p.Bits(), 32)}, nil
}

// Server is the PXE side of `clonecd serve`.
type Server struct {
	cfg Config

	leasesMu sync.Mutex // guards leases
	leases   *pool

	clientsMu sync.Mutex // guards clients: each MAC's last DHCP request, for stage 2
	clients   map[string]Client
}

// New checks cfg and returns a server; Serve starts it.
func New(cfg Config) (*Server, error) {
	if cfg.Policy == nil || cfg.Media == nil {
		return nil, errors.New("pxe: Config needs a Policy and Media")
	}
	if cfg.Interface == "" {
		return nil, errors.New("pxe: no interface (--pxe-interface IF)")
	}
	if cfg.ServerIP == nil {
		ip, err := InterfaceIPv4(cfg.Interface)
		if err != nil {
			return nil, err
		}
		cfg.ServerIP = ip
	}
	cfg.ServerIP = cfg.ServerIP.To4()
	if cfg.BootURL == "" {
		return nil, errors.New("pxe: no BootURL (the HTTP server nodes fetch stage 2 from)")
	}
	cfg.BootURL = strings.TrimSuffix(cfg.BootURL, "/")
	if cfg.ImageServer == "" {
		cfg.ImageServer = cfg.BootURL
	}
	if cfg.LeaseTime <= 0 {
		cfg.LeaseTime = time.Hour
	}
	s := &Server{cfg: cfg, clients: map[string]Client{}}
	if cfg.Range != nil {
		s.leases = newPool(*cfg.Range, netip.AddrFrom4([4]byte(cfg.ServerIP)))
	}
	return s, nil
}

// InterfaceIPv4 is the first IPv4 address of the interface.
func InterfaceIPv4(name string) (net.IP, error) {
	ifi, err := net.InterfaceByName(name)
	if err != nil {
		return nil, fmt.Errorf("interface %s: %w", name, err)
	}
	addrs, err := ifi.Addrs()
	if err != nil {
		return nil, fmt.Errorf("interface %s: %w", name, err)
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && n.IP.To4() != nil {
			return n.IP.To4(), nil
		}
	}
	return nil, fmt.Errorf("interface %s has no IPv4 address", name)
}

func (s *Server) logf(format string, a ...any) {
	if s.cfg.Logf != nil {
		s.cfg.Logf(format, a...)
	}
}

// Serve answers DHCP on Interface (port 67, and 4011 in proxy mode) and
// TFTP on ServerIP:69 until ctx ends. The HTTP side is Handler, mounted by
// the caller.
func (s *Server) Serve(ctx context.Context) error {
	ports := []int{67}
	if s.cfg.Range == nil {
		ports = append(ports, 4011)
	}
	var closers []func() error
	errs := make(chan error, len(ports)+1)
	defer func() {
		for _, c := range closers {
			c()
		}
	}()
	for _, port := range ports {
		srv, err := server4.NewServer(s.cfg.Interface, &net.UDPAddr{Port: port}, s.handleDHCP)
		if err != nil {
			return fmt.Errorf("DHCP on %s port %d: %w", s.cfg.Interface, port, err)
		}
		closers = append(closers, srv.Close)
		go func() { errs <- srv.Serve() }()
	}
	opts := []tftp.ServerOpt{}
	if s.cfg.TFTPSinglePort {
		opts = append(opts, tftp.ServerSinglePort(true))
	}
	ts, err := tftp.NewServer(net.JoinHostPort(s.cfg.ServerIP.String(), "69"), opts...)
	if err != nil {
		return fmt.Errorf("TFTP: %w", err)
	}
	ts.ReadHandler(tftpHandler{s})
	closers = append(closers, ts.Close)
	go func() { errs <- ts.ListenAndServe() }()
	mode := "proxyDHCP"
	if s.cfg.Range != nil {
		mode = fmt.Sprintf("DHCP %s-%s", s.cfg.Range.Start, s.cfg.Range.End)
	}
	s.logf("pxe: %s on %s, TFTP on %s:69, stage 2 at %s%s", mode, s.cfg.Interface, s.cfg.ServerIP, s.cfg.BootURL, Prefix)
	select {
	case <-ctx.Done():
		return nil
	case err := <-errs:
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
}

// decide asks the policy about c and resolves the version to clone.
func (s *Server) decide(c Client) (Boot, error) {
	d, err := s.cfg.Policy.Decide(c)
	if err != nil {
		return Boot{}, err
	}
	b := Boot{Client: c, Decision: d}
	if d.Action == Clone {
		_, v, err := s.cfg.Media(d.Version)
		if err != nil {
			return Boot{}, fmt.Errorf("version %q for %s: %w", d.Version, c.MAC, err)
		}
		b.Version = v
	}
	return b, nil
}

func (s *Server) remember(c Client) {
	s.clientsMu.Lock()
	s.clients[c.MAC.String()] = c
	s.clientsMu.Unlock()
}

// lastClient is MAC's last DHCP request, or a UEFI client with only the
// MAC when this server has not seen one (stage 2 from before a restart).
func (s *Server) lastClient(mac net.HardwareAddr) Client {
	s.clientsMu.Lock()
	defer s.clientsMu.Unlock()
	if c, ok := s.clients[mac.String()]; ok {
		c.Seen = time.Now()
		return c
	}
	return Client{MAC: mac, Arch: 7, Seen: time.Now()}
}

func (s *Server) bootFS() fs.FS {
	if s.cfg.BootFS != nil {
		return s.cfg.BootFS()
	}
	return os.DirFS(s.cfg.BootDir)
}
