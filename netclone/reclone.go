package netclone

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/clonecd/clonecd/fleet"
	"github.com/clonecd/clonecd/progress"
	"github.com/clonecd/clonecd/trust"
)

// RamcloneMarker is what `clonecd ramclone --reboot` prints before it
// reboots; reclone treats a connection cut after it as success.
const RamcloneMarker = "clonecd ramclone: rebooting"

// DefaultRsh runs the remote command in batch mode (no password
// prompts) and checks host keys strictly whatever ssh_config says (a
// node whose key changed is refused, not trusted). The remote shell gets
// "--", the node and the command after these words.
const DefaultRsh = "ssh -o BatchMode=yes -o ConnectTimeout=10 -o StrictHostKeyChecking=yes"

// DefaultCommand is run on each node.
const DefaultCommand = "clonecd ramclone --reboot"

// GigabitRate is what one image stream gets from a 1 GbE master, in
// bytes per second (~94% of 125 MB/s after TCP/IP overhead).
const GigabitRate = 117_000_000

// DefaultDelay is the pause between reclone starts for an image of size
// bytes: the time one image takes on a 1 GbE link, between 1 s and 60 s,
// so that the master's link takes nodes in about as fast as they start.
func DefaultDelay(size int64) time.Duration {
	d := time.Duration(float64(size) / GigabitRate * float64(time.Second))
	d = d.Round(100 * time.Millisecond)
	return min(max(d, time.Second), time.Minute)
}

// Recloner reclones nodes over ssh and follows them on the server.
type Recloner struct {
	Source      StateSource
	Rsh         []string      // the remote shell; the node name and Command follow
	Command     string        // remote command ("" = DefaultCommand)
	Delay       time.Duration // between starts
	Parallel    int           // nodes in flight at most (<= 0: no cap)
	Timeout     time.Duration // per node, from start to done (0: 30m)
	RshTimeout  time.Duration // for the ssh command (0: 2m)
	Poll        time.Duration // state polling (0: 1s)
	Grace       time.Duration // how long a failed node may take to start again by itself (0: none)
	SkipCurrent bool          // leave nodes already on the served version
	Version     string        // clone this version instead of current (canary)
	Force       bool          // clone Version even if it is marked bad
	// Credential, when set, gives each node its credential: the remote
	// command gets " --credential -" and the node's "NAME:TOKEN" on its
	// standard input (ssh has checked the node's host key), which
	// `clonecd ramclone` keeps for the cloner (CredentialInitrd).
	Credential func(node string) (trust.Credential, error)
	Out        io.Writer // progress and events
	Live       bool      // redraw a live block (terminal) instead of event lines

	outMu    sync.Mutex // serialises writes to Out
	mu       sync.Mutex
	inflight map[string]*flight
	finished int
	failed   int
	total    int
	starts   []time.Time // start times, for tests and the report
}

type flight struct {
	start time.Time
	state fleet.State
}

// Result is one node's outcome.
type Result struct {
	Node     string        `json:"node"`
	Result   string        `json:"result"` // done, failed at STEP, unreachable, skipped, timeout
	OK       bool          `json:"ok"`
	Version  string        `json:"version,omitempty"`
	Duration time.Duration `json:"duration"`
	Start    time.Time     `json:"start,omitzero"`
	Error    string        `json:"error,omitempty"`
}

// Starts returns when each node was started, in order.
func (r *Recloner) Starts() []time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]time.Time(nil), r.starts...)
}

func (r *Recloner) printf(format string, a ...any) {
	if r.Out != nil && !r.Live {
		r.outMu.Lock()
		fmt.Fprintf(r.Out, format, a...)
		r.outMu.Unlock()
	}
}

// Check asks the source once, before any node is touched, for the
// version the nodes will get (Version, else current): it fails when the
// server cannot be reached, is no clonecd server, has no such version, or
// Version is marked bad (unless Force).
func (r *Recloner) Check(ctx context.Context) (*VersionInfo, error) {
	if r.Source == nil {
		return nil, errors.New("netclone.Recloner: no state source")
	}
	vi, err := r.Source.Version(ctx, r.Version)
	if err != nil {
		return nil, err
	}
	if vi.Bad && !r.Force {
		reason := ""
		if vi.BadReason != "" {
			reason = " (" + fleet.Clean(vi.BadReason, 200) + ")"
		}
		return nil, fmt.Errorf("%w: version %s is marked bad%s; reclone it with --force to clone it anyway", ErrBadVersion, vi.Version, reason)
	}
	return vi, nil
}

// Run reclones nodes, staggered by Delay, at most Parallel at once, and
// returns one result per node in the order given. Failed nodes do not stop
// the others. Check runs first: a server or version that is wrong for
// every node fails Run before any node is touched.
func (r *Recloner) Run(ctx context.Context, nodes []string) ([]Result, error) {
	for _, n := range nodes {
		if err := fleet.ValidName(n); err != nil {
			return nil, err
		}
	}
	vi, err := r.Check(ctx)
	if err != nil {
		return nil, err
	}
	if len(r.Rsh) == 0 {
		r.Rsh = strings.Fields(DefaultRsh)
	}
	if r.Command == "" {
		r.Command = DefaultCommand
	}
	if r.Timeout <= 0 {
		r.Timeout = 30 * time.Minute
	}
	if r.RshTimeout <= 0 {
		r.RshTimeout = 2 * time.Minute
	}
	if r.Poll <= 0 {
		r.Poll = time.Second
	}
	if r.Out == nil {
		r.Out = io.Discard
	}
	current := vi.Version
	r.inflight = map[string]*flight{}
	r.total = len(nodes)
	results := make([]Result, len(nodes))
	par := r.Parallel
	if par <= 0 {
		par = len(nodes)
	}
	sem := make(chan struct{}, max(par, 1))
	var wg sync.WaitGroup
	stopLive := r.startLive()
	defer stopLive()
	var last time.Time
	for i, node := range nodes {
		if r.SkipCurrent {
			if st, err := r.Source.Get(ctx, node); err == nil && st.State == fleet.Done && st.Version == current {
				results[i] = Result{Node: node, Result: "skipped", OK: true, Version: st.Version}
				r.printf("%s: skipped, already on %s\n", node, st.Version)
				r.mu.Lock()
				r.finished++
				r.mu.Unlock()
				continue
			}
		}
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			results[i] = Result{Node: node, Result: "not started", Error: ctx.Err().Error()}
			continue
		}
		if !last.IsZero() {
			if wait := time.Until(last.Add(r.Delay)); wait > 0 {
				t := time.NewTimer(wait)
				select {
				case <-t.C:
				case <-ctx.Done():
				}
				t.Stop()
			}
		}
		if ctx.Err() != nil {
			<-sem
			results[i] = Result{Node: node, Result: "not started", Error: ctx.Err().Error()}
			continue
		}
		last = time.Now()
		r.mu.Lock()
		r.starts = append(r.starts, last)
		r.inflight[node] = &flight{start: last, state: fleet.State{Node: node, State: fleet.Waiting}}
		r.mu.Unlock()
		wg.Add(1)
		go func(i int, node string) {
			defer wg.Done()
			defer func() { <-sem }()
			res := r.one(ctx, node)
			results[i] = res
			r.mu.Lock()
			delete(r.inflight, node)
			r.finished++
			if !res.OK {
				r.failed++
			}
			r.mu.Unlock()
			r.printf("%s: finished: %s after %s\n", node, res.Result, res.Duration.Round(time.Second))
		}(i, node)
	}
	wg.Wait()
	return results, nil
}

func (r *Recloner) one(ctx context.Context, node string) Result {
	start := time.Now()
	res := Result{Node: node, Start: start}
	fail := func(result string, err error) Result {
		res.Result, res.Duration = result, time.Since(start)
		if err != nil {
			res.Error = err.Error()
		}
		return res
	}
	if err := r.Source.Assign(ctx, node, r.Version, r.Force); err != nil {
		return fail("failed at assign", err)
	}
	if _, err := r.Source.Set(ctx, fleet.State{Node: node, State: fleet.Waiting, Detail: "reclone requested"}); err != nil {
		return fail("failed at server", err)
	}
	r.printf("%s: started\n", node)
	out, err := r.rsh(ctx, node)
	if err != nil {
		result := "failed at ramclone"
		var ee *exec.ExitError
		if errors.As(err, &ee) && ee.ExitCode() == 255 || errors.Is(err, context.DeadlineExceeded) {
			result = "unreachable"
		}
		msg := fleet.Clean(lastLine(out), 500)
		if msg == "" {
			msg = err.Error()
		}
		r.Source.Set(ctx, fleet.State{Node: node, State: fleet.Failed, Step: "reclone", Error: result + ": " + msg})
		return fail(result, errors.New(msg))
	}
	tick := time.NewTicker(r.Poll)
	defer tick.Stop()
	deadline := time.NewTimer(r.Timeout)
	defer deadline.Stop()
	var failedAt time.Time // when the node was first seen failed
	for {
		st, err := r.Source.Get(ctx, node)
		if err == nil {
			changed := false
			r.mu.Lock()
			if f := r.inflight[node]; f != nil {
				changed = f.state.Summary() != st.Summary()
				f.state = st
			}
			r.mu.Unlock()
			if changed {
				r.printf("%s: %s\n", node, st.Summary())
			}
			switch st.State {
			case fleet.Done:
				res.Result, res.OK, res.Version, res.Duration = "done", true, st.Version, time.Since(start)
				return res
			case fleet.Failed:
				// A cloner that tries again reports cloning within Grace.
				if failedAt.IsZero() {
					failedAt = time.Now()
				}
				if time.Since(failedAt) >= r.Grace {
					res.Version = st.Version
					return fail(st.Summary(), errors.New(fleet.Clean(st.Error, 500)))
				}
			default:
				failedAt = time.Time{}
			}
		}
		select {
		case <-ctx.Done():
			return fail("interrupted", ctx.Err())
		case <-deadline.C:
			return fail("timeout", fmt.Errorf("no result after %s", r.Timeout))
		case <-tick.C:
		}
	}
}

// rsh runs the remote command; a cut connection after RamcloneMarker
// counts as success (the node rebooted under us).
func (r *Recloner) rsh(ctx context.Context, node string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, r.RshTimeout)
	defer cancel()
	command := r.Command
	var stdin io.Reader
	if r.Credential != nil {
		c, err := r.Credential(node)
		if err != nil {
			return "", err
		}
		command += " --credential -"
		stdin = strings.NewReader(c.String() + "\n")
	}
	args := append(append([]string{}, r.Rsh[1:]...), "--", node, command)
	cmd := exec.CommandContext(ctx, r.Rsh[0], args...)
	cmd.Stdin = stdin
	var buf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &buf, &buf
	err := cmd.Run()
	out := buf.String()
	if err != nil && strings.Contains(out, RamcloneMarker) {
		return out, nil
	}
	if err != nil && ctx.Err() != nil {
		return out, fmt.Errorf("%s: no answer in %s: %w", strings.Join(r.Rsh, " "), r.RshTimeout, context.DeadlineExceeded)
	}
	return out, err
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}

// startLive redraws the in-flight nodes and an overall bar on a terminal.
func (r *Recloner) startLive() func() {
	if !r.Live || r.Out == nil {
		return func() {}
	}
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		drawn := 0
		t := time.NewTicker(500 * time.Millisecond)
		defer t.Stop()
		for {
			var stop bool
			select {
			case <-done:
				stop = true
			case <-t.C:
			}
			block := r.liveBlock()
			r.outMu.Lock()
			if drawn > 0 {
				fmt.Fprintf(r.Out, "\033[%dA\033[J", drawn)
			}
			fmt.Fprint(r.Out, block)
			r.outMu.Unlock()
			drawn = strings.Count(block, "\n")
			if stop {
				return
			}
		}
	}()
	return func() { close(done); <-finished }
}

func (r *Recloner) liveBlock() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var b strings.Builder
	names := make([]string, 0, len(r.inflight))
	for n := range r.inflight {
		names = append(names, n)
	}
	sort.Slice(names, func(i, j int) bool { return fleet.NodeLess(names[i], names[j]) })
	for _, n := range names {
		f := r.inflight[n]
		fmt.Fprintf(&b, "  %-12s %-24s %s\n", n, f.state.Summary(), time.Since(f.start).Round(time.Second))
	}
	const width = 30
	filled := 0
	if r.total > 0 {
		filled = r.finished * width / r.total
	}
	fmt.Fprintf(&b, "[%s%s] %d/%d finished, %d in flight, %d failed\n",
		strings.Repeat("#", filled), strings.Repeat(" ", width-filled), r.finished, r.total, len(r.inflight), r.failed)
	return b.String()
}

// WriteTable prints the final table: node, result, duration, version.
func WriteTable(w io.Writer, results []Result) {
	fmt.Fprintf(w, "%-14s %-26s %10s  %s\n", "NODE", "RESULT", "DURATION", "VERSION")
	ok := 0
	for _, r := range results {
		d := "-"
		if r.Duration > 0 {
			d = r.Duration.Round(time.Second).String()
		}
		v := r.Version
		if v == "" {
			v = "-"
		}
		line := fmt.Sprintf("%-14s %-26s %10s  %s", r.Node, r.Result, d, v)
		if !r.OK && r.Error != "" {
			line += "  (" + oneLine(r.Error) + ")"
		}
		fmt.Fprintln(w, line)
		if r.OK {
			ok++
		}
	}
	fmt.Fprintf(w, "%d of %d nodes ok, %d failed\n", ok, len(results), len(results)-ok)
}

// oneLine makes s one printable line of at most 100 bytes.
func oneLine(s string) string {
	s = fleet.Clean(strings.TrimSpace(s), 0)
	if len(s) > 100 {
		s = fleet.Clean(s, 97) + "..."
	}
	return s
}

// UseLive reports whether w should get the live display.
func UseLive(w io.Writer) bool { return progress.IsTerminal(w) }
