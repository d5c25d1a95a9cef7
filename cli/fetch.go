package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/clonecd/clonecd/medium"
	"github.com/clonecd/clonecd/netclone"
	"github.com/clonecd/clonecd/progress"
	"github.com/clonecd/clonecd/trust"
)

type fetchFlags struct {
	server                urlFlag
	node                  nodeFlag
	version               versionFlag
	output, logFile, dir  string
	trust                 []string
	retries, attempts     int
	limitRate             rateFlag
	report, quiet, asJSON bool
	access                accessFlags
	sw                    swarmFetchFlags
}

func fetchCmd(out Output) *cobra.Command {
	f := &fetchFlags{}
	c := &cobra.Command{
		Use:   "fetch [flags]",
		Short: "download the served image as the network cloner does (resume, sha256, report)",
		Long: `Streams the version's image (node.cpio.gz, or node.cpio.zst for a zstd
version) from clonecd serve exactly as the network cloner does:
a dropped connection resumes with Range/If-Range after a backoff (up to
--retries failures in a row), the sha256 is checked against the image's
.sha256 and a mismatch downloads again (up to --attempts).
The download is written beside FILE and replaces it only once its sha256
matched: a failed fetch leaves FILE as it was. Without -o FILE is the
image's name in the current directory; a .gz FILE for a zstd version (or
.zst for gzip) is refused before the download.
With --report it reports to the server as node --node would (state,
progress, result, log), which makes it a stand-in for a node in tests.
The file is written mode 0600: the image holds the golden node's secrets.

--trust FILE.pub|DIR checks the version as a cloner that trusts those keys
does: MANIFEST's signature first, then every other file it lists (layout,
ks.cfg, nodes, clonecd.conf, kernel, initrd), then the image against the
signed sha256 as it arrives. A file that differs from what the master
signed is refused with its name, even when the server's .sha256 matches
it; the output file is left as it was.

` + accessHelp + ` With --dir, fetch presents the admin's credential (the
node's with --node).

` + swarmFetchHelp,
		Example: `  clonecd fetch --server https://10.0.0.1:8443 -o /tmp/node.cpio.gz
  clonecd fetch --server https://10.0.0.1:8443 --trust /root/.clonecd/clonecd.key.pub -o node.cpio.gz
  clonecd fetch --server https://master:8443 --version 1.19 -o old.cpio.gz
  clonecd fetch --server https://master:8443 --node s001 --report -o /dev/null
  clonecd fetch --server https://master:8443 --credential s001.cred --tls-pin sha256//q0P0vTLXDCxC9dHdZ8ocEfkhd9tu2yvWjDCbzBnmC2Q= -o node.cpio.gz
  clonecd fetch --server https://master:8443 --limit-rate 10M --json -o node.cpio.gz | jq .sha256`,
		Args: noArgs,
		RunE: func(c *cobra.Command, args []string) error { return runFetch(c.Context(), out, f, args) },
	}
	fl := c.Flags()
	fl.Var(&f.server, "server", "server `URL` (default $CLONECD_SERVER)")
	fl.Var(&f.node, "node", "node `NAME` sent to the server")
	fl.StringVarP(&f.output, "output", "o", "", "output `FILE` (\"-\": standard output; default: the image's name, "+medium.ImageGzip+" or "+medium.ImageZstd+")")
	fl.Var(&f.version, "version", "fetch this version, MAJOR.MINOR, instead of the current one")
	fl.BoolVar(&f.report, "report", false, "report state and log to the server as node --node")
	fl.StringVar(&f.logFile, "log", "", "log `FILE` (uploaded with --report)")
	intVarP(fl, &f.retries, "retries", "", 10, 1, 1000, "failed attempts in a row before giving up, 1-1000")
	intVarP(fl, &f.attempts, "attempts", "", 3, 1, 100, "whole downloads when the sha256 does not match, 1-100")
	fl.BoolVarP(&f.quiet, "quiet", "q", false, "no progress meter and messages")
	fl.Var(&f.limitRate, "limit-rate", "at most this many bytes per second, like 500k or 10M (0: no limit)")
	fl.BoolVar(&f.asJSON, "json", false, "print the result as JSON")
	fl.StringArrayVar(&f.trust, "trust", nil, "check the version against the public key `FILE.pub`, or every *.pub in a DIR (repeatable)")
	fl.StringVar(&f.dir, "dir", defaultStore(), "the server's image `DIR` on this machine: its secret and certificate ($CLONECD_STORE)")
	f.access.define(fl)
	f.sw.define(fl)
	return c
}

// fetchResult is fetch --json's output.
type fetchResult struct {
	Output   string      `json:"output"`
	Image    string      `json:"image"` // the image's medium name: node.cpio.gz or node.cpio.zst
	Version  string      `json:"version"`
	Bytes    int64       `json:"bytes"`
	SHA256   string      `json:"sha256"`
	Trust    string      `json:"trust,omitempty"` // "signed by key ID" or "UNSIGNED", with --trust
	Attempts int         `json:"attempts"`
	Resumes  int         `json:"resumes"`
	Seconds  float64     `json:"seconds"`
	Swarm    *fetchSwarm `json:"swarm,omitempty"` // with --swarm, when the image came from the swarm
}

func runFetch(ctx context.Context, out Output, f *fetchFlags, _ []string) error {
	server, err := serverURL(f.server)
	if err != nil {
		return err
	}
	if server == "" {
		return UsageError("--server URL is required (or set CLONECD_SERVER)")
	}
	if f.report && f.node == "" {
		return UsageError("--report needs --node")
	}
	if f.asJSON && f.output == "-" {
		return UsageError("--json and -o - both want standard output")
	}
	user := trust.AdminUser
	if f.node != "" {
		user = string(f.node)
	}
	acc, err := f.access.access(string(server), f.dir, user)
	if err != nil {
		return err
	}
	verifier, err := loadTrust(f.trust)
	if err != nil {
		return err
	}
	// Standard output and devices (/dev/null) are written as the stream
	// arrives; a file is replaced only once the whole image matched its
	// sha256 (netclone.FetchFile).
	var direct io.WriteCloser
	switch fi, err := os.Stat(f.output); {
	case f.output == "-":
		direct = nopCloser{out.Stdout}
	case err == nil && !fi.Mode().IsRegular() && !fi.IsDir():
		if direct, err = os.OpenFile(f.output, os.O_WRONLY, 0); err != nil {
			return err
		}
		defer direct.Close()
	case f.output == "": // the version's image name, in the current directory
	default:
		if err := checkOutput(f.output); err != nil {
			return err
		}
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	quiet := f.quiet || f.output == "-"
	var meter *progress.Meter
	var counted int64
	o := netclone.FetchOptions{
		MediaOptions: netclone.MediaOptions{Access: acc, Node: string(f.node), Version: string(f.version), Retries: f.retries},
		Report:       f.report, LogFile: f.logFile, Attempts: f.attempts, LimitRate: int64(f.limitRate), Trust: verifier,
	}
	if o.Swarm, err = f.sw.options(); err != nil {
		return err
	}
	if !f.quiet {
		o.Logf = logLine(out.Stderr)
	}
	o.Progress = func(done, total int64) {
		if meter == nil || done < counted { // the first attempt, or a new one
			label := "fetch image"
			if meter != nil {
				label += " (again)"
			}
			meter, counted = progress.New(out.Stderr, label, total, quiet), 0
		}
		meter.Add(done-counted, 0)
		counted = done
	}
	var res *netclone.FetchResult
	if direct != nil {
		opened := false
		o.Open = func() (io.Writer, error) {
			if opened {
				return nil, errors.New("cannot download again to standard output or a device")
			}
			opened = true
			return direct, nil
		}
		res, err = netclone.Fetch(ctx, string(server), o)
	} else {
		res, err = netclone.FetchFile(ctx, string(server), f.output, o)
	}
	if meter != nil {
		meter.Done()
	}
	if err != nil {
		return err
	}
	if res.Path != "" {
		f.output = res.Path
	}
	r := fetchResult{Output: f.output, Image: res.Image, Version: res.Version, Bytes: res.Bytes, SHA256: res.SHA256, Trust: res.Trust,
		Attempts: res.Attempts, Resumes: res.Resumes, Seconds: res.Elapsed.Seconds(), Swarm: swarmJSON(res.Swarm)}
	if f.asJSON {
		return writeJSON(out, r)
	}
	if !f.quiet {
		sum := short(res.SHA256)
		if res.SHA256 == "" {
			sum = "(none on server)"
		}
		if res.Trust != "" {
			sum += ", " + res.Trust
		}
		fmt.Fprintf(out.Stderr, "clonecd fetch: %s version %s, %s in %s (%s/s), sha256 %s, %d resumes, %d attempts\n",
			f.output, res.Version, progress.Bytes(res.Bytes), res.Elapsed.Round(time.Millisecond),
			progress.Bytes(int64(float64(res.Bytes)/max(res.Elapsed.Seconds(), 1e-3))), sum, res.Resumes, res.Attempts)
	}
	return nil
}

// serverURL is the --server flag, else $CLONECD_SERVER checked as the
// flag would be.
func serverURL(flag urlFlag) (urlFlag, error) {
	if flag != "" {
		return flag, nil
	}
	env := os.Getenv("CLONECD_SERVER")
	if env == "" {
		return "", nil
	}
	if err := checkServerURL(env); err != nil {
		return "", UsageError("CLONECD_SERVER=%q: %v", env, err)
	}
	return urlFlag(env), nil
}

// logLine prints the cloner's log lines; on a terminal the progress
// meter's line is cleared first.
func logLine(w io.Writer) func(string, ...any) {
	prefix := ""
	if progress.IsTerminal(w) {
		prefix = "\r\033[K"
	}
	return func(format string, a ...any) { fmt.Fprintf(w, prefix+format+"\n", a...) }
}

type nopCloser struct{ io.Writer }

func (nopCloser) Close() error { return nil }
