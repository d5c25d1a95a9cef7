package cli

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/clonecd/clonecd/netclone"
	"github.com/clonecd/clonecd/trust"
	"github.com/clonecd/clonecd/versions"
)

// defaultListen is where serve listens without --listen: this machine
// only. Nodes reach the master on its cluster address, which the admin
// names (--listen 10.0.0.1:8080), or on every interface when asked
// explicitly (--listen 0.0.0.0:8080).
const defaultListen = "127.0.0.1:8080"

// defaultStore is the image directory serve, status and reclone use
// without --dir: $CLONECD_STORE, else Medusa's /root/clone_image.
func defaultStore() string {
	if d := os.Getenv("CLONECD_STORE"); d != "" {
		return d
	}
	return "/root/clone_image"
}

type serveFlags struct {
	dir             string
	listen          listenFlag
	maxStreams      int
	quiet           bool
	logFormat       string
	rsh             string
	tlsCert, tlsKey string
	tlsHosts        hostsFlag
	plainHTTP       bool
	pxe             pxeFlags
	sw              swarmServeFlags
}

func serveCmd(out Output) *cobra.Command {
	f := &serveFlags{listen: defaultListen}
	c := &cobra.Command{
		Use:   "serve [flags]",
		Short: "serve the current image to network cloners and collect their reports",
		Long: `Serves the image directory's current version (DIR/current, or DIR itself
when it is a flat directory: node.cpio.gz (node.cpio.zst for a zstd
version), its .sha256, node.sfdisk,
CLONE_CD_VERSION, MANIFEST, MANIFEST.minisig, isolinux/vmlinuz,
isolinux/initrd.img) over HTTPS with Range requests and strong ETags (from
node.cpio.gz.sha256), so a dropped transfer resumes. Other versions are at
/v/VERSION/FILE (canaries: clonecd reclone --version V).

Every request needs a credential (401 otherwise): a node's token lets it
read and write its own state and log (403 for another node's), the
admin's does everything (assign). Tokens derive from DIR/auth.secret
(0600, made on first start): clonecd token NODE prints one. A node is
known by its credential, whatever it says.

HTTPS with --tls-cert/--tls-key, else a self-signed certificate kept in
DIR/tls.pem (0600, made on first start for the listen address and
--tls-host names). Its pin, printed at start, is what clonecd build
--tls-pin and the clients' --tls-pin take; the pin is of the key, so a
certificate re-issued for a new address keeps it. Plain HTTP (the image
and every credential readable on the wire) only with --plain-http.

Listens on ` + defaultListen + ` (this machine only) unless --listen names the
address the nodes reach, such as the master's cluster address; every
interface (0.0.0.0:8443 or [::]:8443) must be asked for explicitly.

Admission control: at most --max-streams GETs of node.cpio.gz are served
at once; further nodes wait in line (first come, first served) with their
connection open and show as "waiting" in clonecd status.

Nodes report their steps, progress, result and /tmp/clone.log; they are
kept in DIR/nodes/NODE/{state.json,clone.log,history} (see clonecd status).

The fleet page is at / (open http://ADDRESS/ in a browser): every node
with its state, step, progress, version, rate, last error and log, the
versions and the image streams, live. It is read-only; /admin/ adds the
actions (promote, rollback, mark bad or good, assign, and reclone when
--rsh is given: the server then runs the remote shell itself, as
clonecd reclone does). Prometheus metrics are at /metrics.

Network boot (--pxe): bare nodes boot the cloner from the network. On
the cluster interface (--pxe-interface, default the one holding the
--listen address) serve answers PXE and UEFI HTTP boot as a proxyDHCP
beside the site's DHCP server (UDP 67 and 4011: no addresses, only the
boot file), or as the network's DHCP server with --pxe-range
START-END[/PREFIX]; TFTP on port 69 gives iPXE (undionly.kpxe for BIOS,
snponly.efi for UEFI; with --pxe-secure-boot Debian's signed shim and
GRUB), and stage 2 (an iPXE script booting the version's cloner kernel
and initramfs with this server's URL, TLS pin and the node's credential)
is plain HTTP on --pxe-http-port, because iPXE has no HTTPS. The boot
files are the current version's (clonecd publish copies them from the
master's ipxe, shim-signed and grub-efi-amd64-signed). Only nodes marked
with clonecd reclone --pxe get the cloner (and, with --pxe-new, MACs never
seen); every other network boot goes to the node's disk, and a node
whose clone is done is unmarked. Machines the nodes table does not name
are listed as new by clonecd status and the fleet page. What it knows of
each MAC is in DIR/pxe/hosts.

One line is logged on standard error per request and per event (node
state changes, version changes, admission decisions, the page's
actions): key=value text, or JSON with --log-format json; --quiet logs
the events only.

` + swarmHelp,
		Example: `  clonecd serve                                  # /root/clone_image on 127.0.0.1:8080
  clonecd serve --dir /srv/clone --listen 10.0.0.1:8443 --max-streams 8
  clonecd serve --listen 10.0.0.1:8443 --tls-cert /etc/ssl/master.pem --tls-key /etc/ssl/private/master.key
  clonecd serve --listen 10.0.0.1:8443 --log-format json --rsh "ssh -o BatchMode=yes"
  clonecd serve --listen 10.0.0.1:8443 --pxe                       # proxyDHCP beside the site's DHCP server
  clonecd serve --listen 10.0.0.1:8443 --pxe --pxe-range 10.0.0.100-10.0.0.199/24
  curl --pinnedpubkey sha256//q0P0vTLXDCxC9dHdZ8ocEfkhd9tu2yvWjDCbzBnmC2Q= -k -u "$(clonecd token s001)" -r 0-99 https://10.0.0.1:8443/node.cpio.gz | xxd | head`,
		Args: noArgs,
		RunE: func(c *cobra.Command, args []string) error { return runServe(c.Context(), out, f, args) },
	}
	fl := c.Flags()
	fl.StringVar(&f.dir, "dir", defaultStore(), "image `DIR` ($CLONECD_STORE)")
	fl.Var(&f.listen, "listen", "address to listen on; 0.0.0.0:PORT for every interface")
	intVarP(fl, &f.maxStreams, "max-streams", "", 4, 1, 4096, "image streams served at once, 1-4096; more nodes wait their turn")
	fl.BoolVarP(&f.quiet, "quiet", "q", false, "do not log requests (events still are)")
	oneOfVar(fl, &f.logFormat, "log-format", "text", []string{"text", "json"}, "log lines as key=value text or as JSON")
	fl.StringVar(&f.rsh, "rsh", "", "remote shell the fleet page's reclone runs, e.g. \"ssh -o BatchMode=yes\" (default: none; the page shows the command)")
	fl.StringVar(&f.tlsCert, "tls-cert", "", "TLS certificate `FILE` (PEM; with --tls-key); default: DIR/tls.pem, self-signed")
	fl.StringVar(&f.tlsKey, "tls-key", "", "TLS private key `FILE` (PEM) of --tls-cert")
	fl.Var(&f.tlsHosts, "tls-host", "more `NAMES` (host names, addresses) for the self-signed certificate (comma-separated, repeatable)")
	fl.BoolVar(&f.plainHTTP, "plain-http", false, "serve plain HTTP: images, tokens and reports unencrypted on the network")
	f.pxe.define(fl)
	c.PreRunE = func(c *cobra.Command, _ []string) error { return f.pxe.check(c.Flags()) }
	f.sw.define(fl)
	return c
}

func runServe(ctx context.Context, out Output, f *serveFlags, _ []string) error {
	store, err := versions.Open(f.dir)
	if err != nil {
		return err
	}
	cur, err := store.Current()
	if err != nil {
		return err
	}
	switch {
	case (f.tlsCert == "") != (f.tlsKey == ""):
		return UsageError("--tls-cert and --tls-key go together")
	case f.plainHTTP && (f.tlsCert != "" || len(f.tlsHosts) > 0):
		return UsageError("--plain-http excludes --tls-cert and --tls-host")
	}
	secret, err := store.Secret()
	if err != nil {
		return err
	}
	o := netclone.ServerOptions{MaxStreams: f.maxStreams, Secret: secret, NoRequestLog: f.quiet,
		Logger: serveLogger(out.Stderr, f.logFormat), Rsh: strings.Fields(f.rsh)}
	pin, scheme := "", "https"
	if f.plainHTTP {
		scheme = "http"
	} else if o.TLS, pin, err = serverTLS(store, f); err != nil {
		return err
	}
	if f.sw.on {
		stopSwarm, err := startSwarm(ctx, store, f, &o, out.Stderr)
		if err != nil {
			return err
		}
		defer stopSwarm()
	}
	ln, err := net.Listen("tcp", string(f.listen))
	if err != nil {
		return err
	}
	px, err := newPXE(out, store, &f.pxe, ln.Addr(), scheme, pin, &o)
	if err != nil {
		ln.Close()
		return err
	}
	srv := netclone.NewServer(store, o)
	if ip := ln.Addr().(*net.TCPAddr).IP; ip.IsUnspecified() {
		fmt.Fprintf(out.Stderr, "clonecd serve: listening on every interface (%s)\n", ln.Addr())
	}
	if f.plainHTTP {
		fmt.Fprintf(out.Stderr, "clonecd serve: WARNING: --plain-http: the image (root's password hash, private keys), every credential and every report cross the network UNENCRYPTED; anyone on the path reads the image and replays a credential\n")
	}
	fmt.Fprintf(out.Stdout, "clonecd serve: %s (version %s) on %s://%s, at most %d image streams\n", store.Dir, cur.Version, scheme, ln.Addr(), f.maxStreams)
	if pin != "" {
		fmt.Fprintf(out.Stdout, "clonecd serve: TLS pin %s (clonecd build --tls-pin; clients' --tls-pin)\n", pin)
	}
	fmt.Fprintf(out.Stdout, "clonecd serve: every request needs a credential: clonecd token NODE, clonecd token admin\n")
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, pxeWait := px.start(ctx)
	if err := srv.Serve(ctx, ln); err != nil {
		pxeWait()
		return err
	}
	if err := pxeWait(); err != nil {
		return err
	}
	st := srv.Stats()
	fmt.Fprintf(out.Stdout, "clonecd serve: stopped; %d image streams served, at most %d at once\n", st.Served, st.Peak)
	return nil
}

// serverTLS is serve's TLS: --tls-cert/--tls-key, else the store's
// self-signed certificate for the listen address and --tls-host names.
func serverTLS(store *versions.Store, f *serveFlags) (*tls.Config, string, error) {
	var cert tls.Certificate
	var pin string
	var err error
	if f.tlsCert != "" {
		cert, pin, err = trust.LoadServerCert(f.tlsCert, f.tlsKey)
	} else {
		hosts := append([]string(nil), f.tlsHosts...)
		if host, _, err := net.SplitHostPort(string(f.listen)); err == nil {
			if ip := net.ParseIP(host); ip == nil || !ip.IsUnspecified() {
				hosts = append(hosts, host)
			}
		}
		cert, pin, err = store.ServerCert(hosts)
	}
	if err != nil {
		return nil, "", err
	}
	return trust.ServerTLSConfig(cert), pin, nil
}

// serveLogger writes serve's log lines: key=value text or JSON.
func serveLogger(w io.Writer, format string) *slog.Logger {
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, nil))
	}
	return slog.New(slog.NewTextHandler(w, nil))
}
