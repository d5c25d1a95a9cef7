package cli

import (
	"context"
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
	_ "github.com/clonecd/clonecd/netclone/netboot" // clonecd.mode=net: registers clone.NetMedia
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
	dir        string
	listen     listenFlag
	maxStreams int
	quiet      bool
	logFormat  string
	rsh        string
}

func serveCmd(out Output) *cobra.Command {
	f := &serveFlags{listen: defaultListen}
	c := &cobra.Command{
		Use:   "serve [flags]",
		Short: "serve the current image to network cloners and collect their reports",
		Long: `Serves the image directory's current version (DIR/current, or DIR itself
when it is a flat directory: node.cpio.gz, node.cpio.gz.sha256, node.sfdisk,
CLONE_CD_VERSION, isolinux/vmlinuz, isolinux/initrd.img) over HTTP with
Range requests and strong ETags (from node.cpio.gz.sha256), so a dropped
transfer resumes and any HTTP cache can sit in between. Other versions are
at /v/VERSION/FILE (canaries: clonecd reclone --version V).

Listens on ` + defaultListen + ` (this machine only) unless --listen names the
address the nodes reach, such as the master's cluster address; every
interface (0.0.0.0:8080 or [::]:8080) must be asked for explicitly. Node
reports are not authenticated: listen on the cluster network only.

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

One line is logged on standard error per request and per event (node
state changes, version changes, admission decisions, the page's
actions): key=value text, or JSON with --log-format json; --quiet logs
the events only.`,
		Example: `  clonecd serve                                  # /root/clone_image on 127.0.0.1:8080
  clonecd serve --dir /srv/clone --listen 10.0.0.1:8080 --max-streams 8
  clonecd serve --listen 10.0.0.1:8080 --log-format json --rsh "ssh -o BatchMode=yes"
  curl -r 0-99 http://master:8080/node.cpio.gz | xxd | head`,
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
	o := netclone.ServerOptions{MaxStreams: f.maxStreams, NoRequestLog: f.quiet, Logger: serveLogger(out.Stderr, f.logFormat),
		Rsh: strings.Fields(f.rsh)}
	srv := netclone.NewServer(store, o)
	ln, err := net.Listen("tcp", string(f.listen))
	if err != nil {
		return err
	}
	if ip := ln.Addr().(*net.TCPAddr).IP; ip.IsUnspecified() {
		fmt.Fprintf(out.Stderr, "clonecd serve: listening on every interface (%s); node reports are not authenticated\n", ln.Addr())
	}
	fmt.Fprintf(out.Stdout, "clonecd serve: %s (version %s) on http://%s, at most %d image streams\n", store.Dir, cur.Version, ln.Addr(), f.maxStreams)
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := srv.Serve(ctx, ln); err != nil {
		return err
	}
	st := srv.Stats()
	fmt.Fprintf(out.Stdout, "clonecd serve: stopped; %d image streams served, at most %d at once\n", st.Served, st.Peak)
	return nil
}

// serveLogger writes serve's log lines: key=value text or JSON.
func serveLogger(w io.Writer, format string) *slog.Logger {
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, nil))
	}
	return slog.New(slog.NewTextHandler(w, nil))
}
