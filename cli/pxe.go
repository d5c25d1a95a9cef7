package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/clonecd/clonecd/clone"
	"github.com/clonecd/clonecd/fleet"
	"github.com/clonecd/clonecd/medium"
	"github.com/clonecd/clonecd/netclone"
	"github.com/clonecd/clonecd/netclone/netboot"
	"github.com/clonecd/clonecd/pxe"
	"github.com/clonecd/clonecd/trust"
	"github.com/clonecd/clonecd/versions"
)

// pxeHostsDir is where serve --pxe keeps what it knows of each MAC
// (pxe.DirPolicy: install or local, new, vendor class, times) and
// reclone --pxe marks nodes: STORE/pxe/hosts.
func pxeHostsDir(store string) string { return filepath.Join(store, "pxe", "hosts") }

// pxeFlags are serve's network boot flags.
type pxeFlags struct {
	on, pxeNew, secureBoot, singlePort bool
	iface                              string
	rng                                rangeFlag
	httpPort                           int
}

func (f *pxeFlags) define(fl *pflag.FlagSet) {
	fl.BoolVar(&f.on, "pxe", false, "also answer network boots (PXE, UEFI HTTP boot) of the nodes marked with clonecd reclone --pxe")
	fl.StringVar(&f.iface, "pxe-interface", "", "cluster network `INTERFACE` of --pxe (default: the one holding the --listen address)")
	fl.Var(&f.rng, "pxe-range", "be the network's DHCP server, leasing `START-END[/PREFIX]` (default: proxyDHCP beside the site's DHCP server)")
	fl.BoolVar(&f.pxeNew, "pxe-new", false, "give the cloner to MACs --pxe never saw before too")
	fl.BoolVar(&f.secureBoot, "pxe-secure-boot", false, "give UEFI PXE clients Debian's signed shim and GRUB instead of iPXE (Secure Boot)")
	intVarP(fl, &f.httpPort, "pxe-http-port", "", 8069, 1, 65535, "port of --pxe's plain-HTTP stage 2 on the interface's address (iPXE has no HTTPS), 1-65535")
	fl.BoolVar(&f.singlePort, "pxe-tftp-single-port", false, "answer every TFTP transfer from port 69 (masters with two addresses in the subnet, firewalls)")
}

// check refuses --pxe-* without --pxe.
func (f *pxeFlags) check(fl *pflag.FlagSet) error {
	if f.on {
		return nil
	}
	for _, n := range []string{"pxe-interface", "pxe-range", "pxe-new", "pxe-secure-boot", "pxe-http-port", "pxe-tftp-single-port"} {
		if fl.Changed(n) {
			return UsageError("--%s needs --pxe", n)
		}
	}
	return nil
}

// rangeFlag is --pxe-range START-END[/PREFIX].
type rangeFlag struct{ r *pxe.Range }

func (r *rangeFlag) String() string {
	if r.r == nil {
		return ""
	}
	ones, _ := r.r.Mask.Size()
	return fmt.Sprintf("%s-%s/%d", r.r.Start, r.r.End, ones)
}
func (r *rangeFlag) Type() string { return "RANGE" }
func (r *rangeFlag) Set(s string) error {
	rng, err := pxe.ParseRange(s)
	if err != nil {
		return err
	}
	r.r = rng
	return nil
}

// pxeServe is serve's network boot side: package pxe's DHCP and TFTP
// servers and its stage 2 on a plain-HTTP listener of its own.
type pxeServe struct {
	srv    *pxe.Server
	policy *pxe.DirPolicy
	http   *http.Server
	ln     net.Listener
	log    io.Writer
}

// newPXE prepares --pxe before serve starts anything: the interface and
// its address, the stage-2 listener, the policy; it hooks the fleet
// page's newcomers and the done reports into o. image is the image
// server's address (ln.Addr()), scheme its scheme, pin its TLS pin.
func newPXE(out Output, store *versions.Store, f *pxeFlags, listen net.Addr, scheme, pin string, o *netclone.ServerOptions) (*pxeServe, error) {
	if !f.on {
		return nil, nil
	}
	tcp, _ := listen.(*net.TCPAddr)
	iface := f.iface
	if iface == "" {
		if tcp == nil || tcp.IP.IsUnspecified() || tcp.IP.IsLoopback() {
			return nil, UsageError("--pxe: the image server listens on %s: name the cluster interface with --pxe-interface IF", listen)
		}
		name, err := interfaceOf(tcp.IP)
		if err != nil {
			return nil, err
		}
		iface = name
	}
	ip, err := pxe.InterfaceIPv4(iface)
	if err != nil {
		return nil, err
	}
	host := ip.String()
	if tcp != nil && !tcp.IP.IsUnspecified() {
		host = tcp.IP.String()
	}
	image := scheme + "://" + net.JoinHostPort(host, strconv.Itoa(tcp.Port))
	names := nodesByMAC(store)
	p := &pxe.DirPolicy{Dir: pxeHostsDir(store.Dir), New: f.pxeNew, Names: names}
	secret, err := store.Secret()
	if err != nil {
		return nil, err
	}
	cfg := pxe.Config{Interface: iface, ServerIP: ip, BootURL: "http://" + net.JoinHostPort(ip.String(), strconv.Itoa(f.httpPort)),
		ImageServer: image, Range: f.rng.r, SecureBoot: f.secureBoot, TFTPSinglePort: f.singlePort, Policy: p,
		Media: storeMedia(store), BootFS: bootFiles(store),
		Credential: func(node string) (string, error) {
			c, err := secret.Credential(node)
			if err != nil {
				return "", err
			}
			return netboot.CredentialArg + "=" + c.String(), nil
		},
		Logf: func(format string, a ...any) { fmt.Fprintf(out.Stderr, "clonecd serve: "+format+"\n", a...) }}
	if pin != "" {
		cfg.Args = []string{netboot.PinArg + "=" + pin}
	}
	srv, err := pxe.New(cfg)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", cfg.BootURL[len("http://"):])
	if err != nil {
		return nil, fmt.Errorf("--pxe stage 2: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle(pxe.Prefix, srv.Handler())
	o.Newcomers = func() []netclone.Newcomer { return newcomers(p, names) }
	o.Changed = func(old, cur fleet.State) {
		if cur.State == fleet.Done && old.State != fleet.Done && cur.Operation() == fleet.OpClone {
			if err := p.Cloned(cur.Node); err == nil {
				fmt.Fprintf(out.Stderr, "clonecd serve: pxe: %s cloned: its next network boot goes to its disk\n", cur.Node)
			}
		}
	}
	mode := "proxyDHCP beside the site's DHCP server"
	if f.rng.r != nil {
		mode = "DHCP server for " + f.rng.String()
	}
	fmt.Fprintf(out.Stdout, "clonecd serve: network boot on %s (%s), TFTP %s:69, stage 2 %s%s; cloners use %s\n",
		iface, mode, ip, cfg.BootURL, pxe.Prefix, image)
	return &pxeServe{srv: srv, policy: p, ln: ln, log: out.Stderr,
		http: &http.Server{Handler: mux, ReadHeaderTimeout: 30 * time.Second, IdleTimeout: time.Minute}}, nil
}

// start runs the PXE side until ctx ends; the context it returns ends
// also when the PXE side fails, and wait returns that failure.
func (s *pxeServe) start(ctx context.Context) (context.Context, func() error) {
	if s == nil {
		return ctx, func() error { return nil }
	}
	ctx, cancel := context.WithCancel(ctx)
	errc := make(chan error, 2)
	go func() { errc <- s.srv.Serve(ctx) }()
	go func() {
		if err := s.http.Serve(s.ln); !errors.Is(err, http.ErrServerClosed) {
			errc <- fmt.Errorf("--pxe stage 2: %w", err)
		}
	}()
	var failed error
	done := make(chan struct{})
	go func() {
		defer close(done)
		select {
		case err := <-errc:
			if err != nil && ctx.Err() == nil {
				failed = fmt.Errorf("--pxe: %w", err)
				fmt.Fprintf(s.log, "clonecd serve: %v; stopping\n", failed)
			}
		case <-ctx.Done():
		}
		cancel()
		s.http.Close()
	}()
	return ctx, func() error { cancel(); <-done; return failed }
}

// interfaceOf names the interface holding ip.
func interfaceOf(ip net.IP) (string, error) {
	ifs, err := net.Interfaces()
	if err != nil {
		return "", err
	}
	for _, ifi := range ifs {
		addrs, _ := ifi.Addrs()
		for _, a := range addrs {
			if n, ok := a.(*net.IPNet); ok && n.IP.Equal(ip) {
				return ifi.Name, nil
			}
		}
	}
	return "", fmt.Errorf("--pxe: no interface has the address %s: name it with --pxe-interface IF", ip)
}

// storeMedia opens a version of the store ("": the current one) for the
// PXE server's stage 2: the cloner's kernel and initramfs.
func storeMedia(store *versions.Store) func(string) (fs.FS, string, error) {
	return func(v string) (fs.FS, string, error) {
		e, err := store.Current()
		if v != "" {
			e, err = store.Get(v)
		}
		if err != nil {
			return nil, "", err
		}
		return entryFS{e}, e.Version, nil
	}
}

// entryFS is a version's files by their medium names (versions.Entry.Path).
type entryFS struct{ e *versions.Entry }

func (f entryFS) Open(name string) (fs.File, error) {
	if !fs.ValidPath(name) {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrInvalid}
	}
	return os.Open(f.e.Path(name))
}

// bootFiles is the current version's boot programs (medium.BootDir).
func bootFiles(store *versions.Store) func() fs.FS {
	return func() fs.FS {
		e, err := store.Current()
		if err != nil {
			return errFS{err}
		}
		return os.DirFS(e.Path(medium.BootDir))
	}
}

type errFS struct{ err error }

func (f errFS) Open(string) (fs.File, error) { return nil, f.err }

// nodesByMAC names a MAC from the current version's nodes table, read
// afresh at every call ("": no name).
func nodesByMAC(store *versions.Store) func(string) string {
	return func(mac string) string {
		nodes, err := readNodes(store, "")
		if err != nil {
			return ""
		}
		for _, n := range nodes {
			if strings.EqualFold(n.MAC, mac) {
				return n.Hostname
			}
		}
		return ""
	}
}

// readNodes is version v's nodes table ("": the current version's).
func readNodes(store *versions.Store, v string) ([]clone.Node, error) {
	e, err := store.Current()
	if v != "" {
		e, err = store.Get(v)
	}
	if err != nil {
		return nil, err
	}
	fh, err := os.Open(e.Path(medium.Nodes))
	if err != nil {
		return nil, err
	}
	defer fh.Close()
	nodes, err := clone.ParseNodes(fh)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", e.Path(medium.Nodes), err)
	}
	return nodes, nil
}

// newcomers are the MACs PXE saw that the nodes table does not name.
func newcomers(p *pxe.DirPolicy, names func(string) string) []netclone.Newcomer {
	hosts, err := p.Hosts()
	if err != nil {
		return nil
	}
	var out []netclone.Newcomer
	for _, h := range hosts {
		if h.New && names(h.MAC) == "" {
			out = append(out, netclone.Newcomer{MAC: h.MAC, Vendor: h.Vendor, Firmware: h.Firmware, FirstSeen: h.FirstSeen, LastSeen: h.LastSeen})
		}
	}
	return out
}

// pxeBootFiles adds the network boot programs the master has (package
// pxe's BootFiles, from Debian's ipxe, shim-signed and
// grub-efi-amd64-signed) to the files publish copies into the version,
// and says on w which packages are missing.
func pxeBootFiles(files map[string]string, w io.Writer) {
	var missing []string
	for _, b := range pxe.BootFiles {
		if _, err := os.Stat(b.Source); err != nil {
			if !slices.Contains(missing, b.Package) {
				missing = append(missing, b.Package)
			}
			continue
		}
		files[medium.BootDir+"/"+b.Name] = b.Source
	}
	if len(missing) > 0 {
		fmt.Fprintf(w, "publish: no network boot files of %s (install them for clonecd serve --pxe)\n", strings.Join(missing, ", "))
	}
}

// printNewcomers is status's list of the machines serve --pxe saw that
// no nodes table names (only when every node is listed), ready to be
// named: from the server's fleet overview (--server), else from --dir.
func printNewcomers(ctx context.Context, w io.Writer, f *statusFlags, nodes []string) error {
	server, err := serverURL(f.server)
	if err != nil || len(nodes) > 0 {
		return err
	}
	var list []netclone.Newcomer
	if server != "" {
		if list, err = fetchNewcomers(ctx, string(server), f); err != nil {
			return err
		}
	} else {
		store, err := versions.Open(f.dir)
		if err != nil {
			return nil // status read the node store; no store, no PXE hosts
		}
		list = newcomers(&pxe.DirPolicy{Dir: pxeHostsDir(store.Dir)}, nodesByMAC(store))
	}
	for i, n := range list {
		if i == 0 {
			fmt.Fprintf(w, "\nnew machines that asked to boot over the network (name them in the nodes table):\n")
		}
		h := pxe.Host{MAC: n.MAC, New: true, State: pxe.HostLocal, Vendor: n.Vendor, Firmware: n.Firmware, FirstSeen: n.FirstSeen.Local()}
		fmt.Fprintf(w, "  %s  %s\n", printable(n.MAC), printable(h.Summary()))
	}
	return nil
}

// fetchNewcomers reads the newcomers of the server's fleet overview
// (GET /api/fleet) with the admin's access.
func fetchNewcomers(ctx context.Context, server string, f *statusFlags) ([]netclone.Newcomer, error) {
	a, err := f.access.access(server, f.dir, trust.AdminUser)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, server+"/api/fleet", nil)
	if err != nil {
		return nil, err
	}
	if a.Credential.User != "" {
		req.SetBasicAuth(a.Credential.User, a.Credential.Token)
	}
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: a.TLS}, Timeout: time.Minute}
	resp, err := c.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s/api/fleet: %s", server, resp.Status)
	}
	var ov netclone.Overview
	if err := json.NewDecoder(io.LimitReader(resp.Body, 16<<20)).Decode(&ov); err != nil {
		return nil, fmt.Errorf("%s/api/fleet: %w", server, err)
	}
	return ov.Newcomers, nil
}
