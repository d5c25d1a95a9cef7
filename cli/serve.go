package cli

import (
	"context"
	"fmt"
	"log"
	"net"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/clonecd/clonecd/netclone"
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
kept in DIR/nodes/NODE/{state.json,clone.log} (see clonecd status).`,
		Example: `  clonecd serve                                  # /root/clone_image on 127.0.0.1:8080
  clonecd serve --dir /srv/clone --listen 10.0.0.1:8080 --max-streams 8
  curl -r 0-99 http://master:8080/node.cpio.gz | xxd | head`,
		Args: noArgs,
		RunE: func(c *cobra.Command, args []string) error { return runServe(c.Context(), out, f, args) },
	}
	fl := c.Flags()
	fl.StringVar(&f.dir, "dir", defaultStore(), "image `DIR` ($CLONECD_STORE)")
	fl.Var(&f.listen, "listen", "address to listen on; 0.0.0.0:PORT for every interface")
	intVarP(fl, &f.maxStreams, "max-streams", "", 4, 1, 4096, "image streams served at once, 1-4096; more nodes wait their turn")
	fl.BoolVarP(&f.quiet, "quiet", "q", false, "do not log requests")
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
	o := netclone.ServerOptions{MaxStreams: f.maxStreams}
	if !f.quiet {
		o.Logger = log.New(out.Stderr, "clonecd serve: ", log.LstdFlags)
	}
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
