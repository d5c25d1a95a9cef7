package swarm

import (
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/anacrolix/torrent"
)

// Node is a node's share of a swarm: it streams the image and seeds it.
type Node struct {
	cl        *torrent.Client
	t         *torrent.Torrent
	tor       *Torrent
	path      string
	readahead int64
	stop      context.CancelFunc // ends the announcer
	announced chan struct{}      // closed when the announcer said stopped
}

// Open joins the swarm of t (from ParseTorrent, checked against the
// signed manifest) and starts fetching the image into o.Dir, in order
// from its start with the pieces further on fetched too (rarest first)
// so that peers hold different pieces to trade.
func Open(t *Torrent, o Options) (*Node, error) {
	if o.Dir == "" {
		return nil, errors.New("no directory for the image (Options.Dir)")
	}
	if o.MaxConns == 0 {
		o.MaxConns = DefaultNodeConns
	}
	if err := os.MkdirAll(o.Dir, 0o700); err != nil {
		return nil, err
	}
	path := filepath.Join(o.Dir, t.Name)
	cl, err := newClient(o)
	if err != nil {
		return nil, err
	}
	tt, err := addTorrent(cl, t, fileStore{path: path}, o)
	if err != nil {
		cl.Close()
		return nil, err
	}
	tt.DownloadAll()
	ra := o.Readahead
	if ra == 0 {
		ra = DefaultReadahead
	}
	n := &Node{cl: cl, t: tt, tor: t, path: path, readahead: ra, stop: func() {}}
	if o.Tracker != "" && o.Transport != nil {
		port, err := localPort(cl)
		if err != nil {
			cl.Close()
			return nil, err
		}
		logf := o.Logf
		if logf == nil {
			logf = func(string, ...any) {}
		}
		a := &announcer{c: &http.Client{Transport: o.Transport, Timeout: 30 * time.Second}, url: o.Tracker, t: tt,
			peerID: cl.PeerID(), port: port, header: o.Header, logf: logf}
		ctx, cancel := context.WithCancel(context.Background())
		n.stop, n.announced = cancel, make(chan struct{})
		go func() {
			defer close(n.announced)
			a.run(ctx, tt.Complete().On())
		}()
	}
	if seeds := append(append([]string(nil), t.WebSeeds...), o.WebSeeds...); len(seeds) > 0 {
		after := o.WebSeedAfter
		if after == 0 {
			after = DefaultWebSeedAfter
		}
		if after < 0 || o.Tracker == "" && len(o.Peers) == 0 {
			tt.AddWebSeeds(seeds)
		} else {
			go n.webSeedFallback(seeds, after)
		}
	}
	return n, nil
}

// webSeedFallback adds the webseeds once the image did not grow for
// after (or has not started to).
func (n *Node) webSeedFallback(seeds []string, after time.Duration) {
	tick := time.NewTicker(after / 5)
	defer tick.Stop()
	last, since := n.t.BytesCompleted(), time.Now()
	for {
		select {
		case <-n.cl.Closed():
			return
		case <-n.t.Complete().On():
			return
		case <-tick.C:
		}
		if c := n.t.BytesCompleted(); c != last {
			last, since = c, time.Now()
			continue
		}
		if time.Since(since) >= after {
			n.t.AddWebSeeds(seeds)
			return
		}
	}
}

// Reader streams the image from its first byte to its end; a Read
// returns only bytes of pieces whose SHA-1 matched the torrent. Reads
// stop with ctx's error when ctx ends.
func (n *Node) Reader(ctx context.Context) io.ReadCloser {
	r := n.t.NewReader()
	r.SetContext(ctx)
	r.SetReadahead(n.readahead)
	return r
}

// Path is the file holding the image (complete once Complete is true).
func (n *Node) Path() string { return n.path }

// Complete reports whether every piece is here and verified.
func (n *Node) Complete() bool { return n.t.Complete().Bool() }

// Addr is the address the node accepts peers on.
func (n *Node) Addr() string {
	if a := n.cl.ListenAddrs(); len(a) > 0 {
		return a[0].String()
	}
	return ""
}

// Seed serves the pieces to the other peers until ctx ends, d passes
// (0: no bound) or, when done is not nil, done reports true (asked every
// second: e.g. the server's scrape says no node needs the version).
func (n *Node) Seed(ctx context.Context, d time.Duration, done func() bool) error {
	if d > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, d)
		defer cancel()
	}
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			if errors.Is(ctx.Err(), context.DeadlineExceeded) && d > 0 {
				return nil
			}
			return ctx.Err()
		case <-tick.C:
			if done != nil && done() {
				return nil
			}
		}
	}
}

// Stats are a node's byte counts.
type Stats struct {
	FromWebSeeds int64 // useful image bytes from the webseeds (the master or a cache)
	FromPeers    int64 // useful image bytes from other nodes
	Uploaded     int64 // image bytes sent to other nodes
	Peers        int   // peers connected now
}

// Stats returns the node's byte counts so far.
func (n *Node) Stats() Stats { return stats(n.t) }

func stats(t *torrent.Torrent) Stats {
	s := t.Stats()
	return Stats{
		FromWebSeeds: s.WebSeeds.BytesReadUsefulData.Int64(),
		FromPeers:    s.PeerConns.BytesReadUsefulData.Int64(),
		Uploaded:     s.BytesWrittenData.Int64(),
		Peers:        s.ActivePeers,
	}
}

// Close leaves the swarm; the image file stays in Dir.
func (n *Node) Close() error {
	n.stop()
	if n.announced != nil {
		<-n.announced
	}
	return errors.Join(n.cl.Close()...)
}
