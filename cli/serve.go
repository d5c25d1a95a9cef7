package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/clonecd/clonecd/netclone"
	"github.com/clonecd/clonecd/progress"
)

// defaultStore is the image directory `serve`, `status` and `reclone`
// use without --dir: $CLONECD_STORE, else Medusa's /root/clone_image.
func defaultStore() string {
	if d := os.Getenv("CLONECD_STORE"); d != "" {
		return d
	}
	return "/root/clone_image"
}

func init() {
	Register(&Command{
		Name:    "serve",
		Args:    "[--dir DIR] [--listen ADDR] [--max-streams N]",
		Summary: "serve the current image to network cloners and collect their reports",
		Help: `Serves the image directory's current version (DIR/current, or DIR itself
when it is a flat directory: node.cpio.gz, node.cpio.gz.sha256, node.sfdisk,
CLONE_CD_VERSION, isolinux/vmlinuz, isolinux/initrd.img) over HTTP with
Range requests and strong ETags (from node.cpio.gz.sha256), so a dropped
transfer resumes and any HTTP cache can sit in between. Other versions are
at /v/VERSION/FILE (canaries: clonecd reclone --version V).

Admission control: at most --max-streams GETs of node.cpio.gz are served
at once; further nodes wait in line (first come, first served) with their
connection open and show as "waiting" in clonecd status.

Nodes report their steps, progress, result and /tmp/clone.log; they are
kept in DIR/nodes/NODE/{state.json,clone.log} (see clonecd status).

Examples:
  clonecd serve                                  # /root/clone_image on :8080
  clonecd serve --dir /srv/clone --listen 10.0.0.1:8080 --max-streams 8
  curl -r 0-99 http://master:8080/node.cpio.gz | xxd | head`,
		Setup: func(fs *flag.FlagSet) Runner {
			dir := fs.String("dir", defaultStore(), "image directory (env CLONECD_STORE)")
			listen := fs.String("listen", ":8080", "address to listen on")
			streams := fs.Int("max-streams", 4, "image streams served at once; more nodes wait their turn")
			quiet := fs.Bool("q", false, "do not log requests")
			return func(args []string) error {
				if len(args) > 0 {
					return UsageError("unexpected arguments %q", args)
				}
				if *streams < 1 {
					return UsageError("--max-streams must be at least 1")
				}
				return serve(*dir, *listen, *streams, *quiet)
			}
		},
	})
	Register(&Command{
		Name:    "fetch",
		Args:    "[--server URL] [--node NAME] [-o FILE]",
		Summary: "download the served image as the network cloner does (resume, sha256, report)",
		Help: `Streams node.cpio.gz from clonecd serve exactly as the network cloner does:
a dropped connection resumes with Range/If-Range after a backoff (up to
--retries failures in a row), the sha256 is checked against
node.cpio.gz.sha256 and a mismatch downloads again (up to --attempts).
With --report it reports to the server as node --node would (state,
progress, result, log), which makes it a stand-in for a node in tests.

Examples:
  clonecd fetch --server http://master:8080 -o /tmp/node.cpio.gz
  clonecd fetch --server http://master:8080 --version 1.19 -o old.cpio.gz
  clonecd fetch --server http://master:8080 --node s001 --report -o /dev/null`,
		Setup: func(fs *flag.FlagSet) Runner {
			server := fs.String("server", os.Getenv("CLONECD_SERVER"), "server URL (env CLONECD_SERVER)")
			node := fs.String("node", "", "node name sent to the server")
			out := fs.String("o", netclone.ImageFile, "output file (- for standard output)")
			version := fs.String("version", "", "fetch this version instead of the current one")
			report := fs.Bool("report", false, "report state and log to the server as node --node")
			logFile := fs.String("log", "", "log file (uploaded with --report)")
			retries := fs.Int("retries", 10, "failed attempts in a row before giving up")
			attempts := fs.Int("attempts", 3, "whole downloads when the sha256 does not match")
			quiet := fs.Bool("q", false, "no progress meter")
			rate := fs.Int64("limit-rate", 0, "at most this many bytes per second (0: no limit)")
			return func(args []string) error {
				if len(args) > 0 {
					return UsageError("unexpected arguments %q", args)
				}
				limitRate = *rate
				if *server == "" {
					return UsageError("--server URL is required")
				}
				if *report && *node == "" {
					return UsageError("--report needs --node")
				}
				return fetch(*server, *node, *out, *version, *logFile, *report, *retries, *attempts, *quiet)
			}
		},
	})
}

func serve(dir, listen string, streams int, quiet bool) error {
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		return fmt.Errorf("image directory %s: not a directory", dir)
	}
	cur := netclone.CurrentDir(dir)
	v, err := netclone.ReadVersion(cur)
	if err != nil {
		return fmt.Errorf("no current version in %s: %w", dir, err)
	}
	if _, err := os.Stat(cur + "/" + netclone.ImageFile); err != nil {
		return fmt.Errorf("no image in %s: %w", cur, err)
	}
	srv := netclone.NewServer(dir, streams)
	if !quiet {
		srv.Logger = log.New(Stderr, "clonecd serve: ", log.LstdFlags)
	}
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return err
	}
	fmt.Fprintf(Stdout, "clonecd serve: %s (version %s) on http://%s, at most %d image streams\n", dir, v, ln.Addr(), streams)
	hs := &http.Server{Handler: srv, ReadHeaderTimeout: 30 * time.Second}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		hs.Shutdown(sctx)
	}()
	if err := hs.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	st := srv.Stats()
	fmt.Fprintf(Stdout, "clonecd serve: stopped; %d image streams served, at most %d at once\n", st.Served, st.Peak)
	return nil
}

func fetch(server, node, out, version, logFile string, report bool, retries, attempts int, quiet bool) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var meter *progress.Meter
	var counted int64
	o := netclone.FetchOptions{
		MediaOptions: netclone.MediaOptions{Node: node, Version: version, Retries: retries},
		Report:       report, LogFile: logFile, Attempts: attempts,
		Logf: func(format string, a ...any) {
			if !quiet {
				fmt.Fprintf(Stderr, "\n"+format+"\n", a...)
			}
		},
	}
	var f *os.File
	o.Open = func() (io.Writer, error) {
		if out == "-" {
			if f != nil {
				return nil, errors.New("cannot retry a download to standard output")
			}
			f = os.Stdout
			return f, nil
		}
		if f != nil {
			f.Close()
		}
		var err error
		f, err = os.Create(out)
		if err != nil || limitRate <= 0 {
			return f, err
		}
		return &paceWriter{w: f, rate: limitRate, start: time.Now()}, nil
	}
	o.Progress = func(done, total int64) {
		if meter == nil {
			meter = progress.New(Stderr, "fetch "+netclone.ImageFile, total, quiet || out == "-")
		}
		if done < counted { // a new attempt
			meter = progress.New(Stderr, "fetch "+netclone.ImageFile+" (again)", total, quiet || out == "-")
			counted = 0
		}
		meter.Add(done-counted, 0)
		counted = done
	}
	res, err := netclone.Fetch(ctx, server, o)
	if f != nil && f != os.Stdout {
		if cerr := f.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("writing %s: %w", out, cerr)
		}
	}
	if meter != nil {
		meter.Done()
	}
	if err != nil {
		return err
	}
	if !quiet {
		fmt.Fprintf(Stderr, "clonecd fetch: %s version %s, %s in %s (%s/s), sha256 %s, %d resumes, %d attempts\n",
			out, res.Version, progress.Bytes(res.Bytes), res.Elapsed.Round(time.Millisecond),
			progress.Bytes(int64(float64(res.Bytes)/max(res.Elapsed.Seconds(), 1e-3))), short(res.SHA256), res.Resumes, res.Attempts)
	}
	return nil
}

func short(s string) string {
	if len(s) > 12 {
		return s[:12]
	}
	if s == "" {
		return "(none on server)"
	}
	return s
}

// limitRate is fetch --limit-rate.
var limitRate int64

// paceWriter holds writes to rate bytes per second.
type paceWriter struct {
	w     io.Writer
	rate  int64
	n     int64
	start time.Time
}

func (p *paceWriter) Write(b []byte) (int, error) {
	n, err := p.w.Write(b)
	p.n += int64(n)
	if ahead := time.Duration(p.n*int64(time.Second)/p.rate) - time.Since(p.start); ahead > 0 {
		time.Sleep(ahead)
	}
	return n, err
}
