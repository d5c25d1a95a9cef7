package netclone

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/clonecd/clonecd/fleet"
	"github.com/clonecd/clonecd/versions"
)

// ops is what a Server adds for its operators: the fleet page's model and
// event stream, /metrics, the structured log, and the reclones the page
// starts. Node changes reach it through the node store's OnChange hook
// (this server's writes) and the refresh below (other processes' writes:
// reclone --dir, publish, promote).
type ops struct {
	s       *Server
	log     *slog.Logger
	metrics *metrics
	served  byVersion // bytes of files this master served over HTTP (reqlog.go)

	stop     chan struct{} // closed when the server shuts down
	stopOnce sync.Once

	// subsMu guards subs: one channel per event stream, signalled (not
	// blocking) when something changed.
	subsMu sync.Mutex
	subs   map[chan struct{}]struct{}

	// ratesMu guards rates: each cloning node's image rate, from its
	// progress reports.
	ratesMu sync.Mutex
	rates   map[string]rate

	// ovMu guards the cached overview and the versions it was built from.
	ovMu     sync.Mutex
	ov       *Overview
	ovAt     time.Time
	ovDirty  bool
	vers     []versions.Entry
	versMark string
	versAt   time.Time

	// jobsMu guards jobs: the nodes being recloned from the page, and
	// how to stop each run.
	jobsMu sync.Mutex
	jobs   map[string]context.CancelFunc
}

// How fresh the overview is kept: a change this server writes shows at
// once; one another process writes (reclone --dir, publish) within
// refreshEvery.
const (
	refreshEvery  = 2 * time.Second
	versionsEvery = 10 * time.Second // re-read versions at least this often
)

func newOps(s *Server) *ops {
	o := &ops{s: s, log: s.o.Logger, stop: make(chan struct{}), subs: map[chan struct{}]struct{}{},
		rates: map[string]rate{}, jobs: map[string]context.CancelFunc{}}
	if o.log == nil {
		o.log = slog.New(slog.DiscardHandler)
	}
	o.metrics = newMetrics(o)
	return o
}

// shutdown ends the event streams (http.Server.Shutdown waits for them)
// and the reclones the page started.
func (o *ops) shutdown() {
	o.stopOnce.Do(func() {
		close(o.stop)
		o.jobsMu.Lock()
		for _, cancel := range o.jobs {
			cancel()
		}
		o.jobsMu.Unlock()
	})
}

// watch logs the version changes other processes make (publish, promote,
// rollback) and keeps the event streams told, until ctx is done.
func (o *ops) watch(ctx context.Context) {
	o.versions() // the first read logs nothing
	t := time.NewTicker(refreshEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			o.shutdown()
			return
		case <-o.stop:
			return
		case <-t.C:
			if o.versionsStale() {
				o.versions()
				o.notify()
			}
		}
	}
}

// nodeChanged is the node store's OnChange hook: metrics, rate, the
// event log line, and the event streams.
func (o *ops) nodeChanged(old, cur fleet.State) {
	o.metrics.nodeChanged(old, cur)
	o.updateRate(old, cur)
	if old.State != cur.State || old.Step != cur.Step {
		attrs := []any{"node", cur.Node, "state", cur.State, "op", cur.Operation()}
		if cur.Step != "" {
			attrs = append(attrs, "step", cur.Step)
		}
		if cur.Version != "" {
			attrs = append(attrs, "version", cur.Version)
		}
		if cur.Attempt > 1 {
			attrs = append(attrs, "attempt", cur.Attempt)
		}
		level := slog.LevelInfo
		if cur.State == fleet.Failed {
			level = slog.LevelWarn
			attrs = append(attrs, "error", cur.Error)
		}
		o.log.Log(context.Background(), level, "node", attrs...)
	}
	o.touch()
	if o.s.o.Changed != nil {
		o.s.o.Changed(old, cur)
	}
}

// touch marks the overview stale and wakes the event streams.
func (o *ops) touch() {
	o.ovMu.Lock()
	o.ovDirty = true
	o.ovMu.Unlock()
	o.notify()
}

func (o *ops) notify() {
	o.subsMu.Lock()
	defer o.subsMu.Unlock()
	for ch := range o.subs {
		select {
		case ch <- struct{}{}:
		default: // already signalled
		}
	}
}

// maxStreams bounds the event streams open at once; past it a page
// polls instead.
const maxEventStreams = 64

func (o *ops) subscribe() (chan struct{}, bool) {
	o.subsMu.Lock()
	defer o.subsMu.Unlock()
	if len(o.subs) >= maxEventStreams {
		return nil, false
	}
	ch := make(chan struct{}, 1)
	o.subs[ch] = struct{}{}
	return ch, true
}

func (o *ops) unsubscribe(ch chan struct{}) {
	o.subsMu.Lock()
	delete(o.subs, ch)
	o.subsMu.Unlock()
}

// rate is a node's image rate: an average of its last progress reports.
type rate struct {
	bps float64
	at  time.Time
}

// rateFresh is how long a rate stays shown without a new report.
const rateFresh = 10 * time.Second

func (o *ops) updateRate(old, cur fleet.State) {
	o.ratesMu.Lock()
	defer o.ratesMu.Unlock()
	if cur.State != fleet.Cloning {
		delete(o.rates, cur.Node)
		return
	}
	dt := cur.When.Sub(old.When).Seconds()
	if old.State != fleet.Cloning || cur.Done <= old.Done || cur.Total != old.Total || dt <= 0 {
		return
	}
	bps := float64(cur.Done-old.Done) / dt
	if r, ok := o.rates[cur.Node]; ok && cur.When.Sub(r.at) < rateFresh {
		bps = (r.bps + bps) / 2
	}
	o.rates[cur.Node] = rate{bps, cur.When}
}

// rateOf is node's rate in bytes per second, or 0 when unknown or old.
func (o *ops) rateOf(node string, now time.Time) float64 {
	o.ratesMu.Lock()
	defer o.ratesMu.Unlock()
	r, ok := o.rates[node]
	if !ok || now.Sub(r.at) > rateFresh {
		return 0
	}
	return r.bps
}
