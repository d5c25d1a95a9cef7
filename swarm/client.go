package swarm

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/anacrolix/torrent"
	"github.com/anacrolix/torrent/metainfo"
	"golang.org/x/time/rate"
)

// allocLimit is MaxAllocPeerRequestDataPerConn for every client made
// here: the data of a peer's whole request queue (the 1,024 requests
// anacrolix/torrent lets a peer queue, localClientReqq in client.go, of
// 16 KiB each). In v1.59.1 a connection serves its peer's queued
// requests one at a time in map order, and waits for the chosen
// request's reservation under this limit; the data of the reservations
// already granted is read by that same goroutine only, so once it picks
// a request that does not fit, nothing is ever released and the upload
// to that peer stops for good. The default (1 MiB, 64 requests) stalls
// as soon as a peer queues more than 64 requests: see TestAllocStall and
// docs/readme-swarm.md. With the whole queue fitting, a reservation never
// waits; memory stays bounded by the queue (at most 16 MiB a connection,
// only while the peer's socket is slower than the disk).
const allocLimit = 1024 * 16 << 10

// DefaultNodeConns is a node's MaxConns when Options.MaxConns is 0: the
// library's 50 cost 32 nodes fetching together twice the CPU (2.8 s
// against 1.4 s a node for 64 MiB) and three times the wall time, and
// made the master send 4.7 images instead of 2.5.
const DefaultNodeConns = 10

// DefaultWebSeedAfter is Options.WebSeedAfter's default.
const DefaultWebSeedAfter = 15 * time.Second

// DefaultReadahead is the Reader's readahead when Options.Readahead is 0:
// the pieces this far past the read position are fetched first, the
// rest rarest first. Short, so that nodes started together do not all
// ask for the same pieces (16 nodes together: the master sent 2.7
// images with 4 MiB, 3.4 with 32 MiB).
const DefaultReadahead = 4 << 20

// Options are the settings of a node (Open) and of a Seeder.
type Options struct {
	// Dir holds the image while it streams and while the node seeds (the
	// file Dir/NAME, NAME the torrent's file name); the caller removes it.
	// On the network cloner this is a tmpfs: the image costs its size in
	// RAM until Close.
	Dir string
	// WebSeeds are URLs of the image served with Range (the server's
	// /v/VERSION/node.cpio.gz, or a rack's cache), added to the torrent's
	// own url-list. A swarm with no peer yet still completes from them.
	WebSeeds []string
	// WebSeedAfter is how long a node with peers to ask (Tracker or
	// Peers) waits without the image growing before it turns to the
	// webseeds: they are the fallback, so that the master's link carries
	// the image about once and the nodes trade the rest. 0:
	// DefaultWebSeedAfter; negative: use them from the start.
	WebSeedAfter time.Duration
	// Tracker is the announce URL of the server's Tracker
	// (http://server:8080/swarm/announce); "": none, peers come from
	// Peers only.
	Tracker string
	// Peers are host:port addresses of peers known up front.
	Peers []string
	// Listen is the address other peers connect to (host:port); "": every
	// address, a free port (announced to the Tracker).
	Listen string
	// Readahead in bytes for Node.Reader; 0: DefaultReadahead.
	Readahead int64
	// PEX lets peers tell each other about more peers (BEP 11).
	PEX bool
	// MaxConns caps the peers connected at once; 0: DefaultNodeConns for
	// a node, DefaultSeederConns for the master's Seeder (few, so that the
	// nodes trade among themselves instead of all asking the master).
	MaxConns int
	// UploadRate caps the bytes a second sent to peers; 0: no cap.
	UploadRate int64
	// Header is added to every webseed and tracker request (the node's
	// credentials: Authorization); nil: none.
	Header http.Header
	// Logf receives the library's warnings and errors; nil: dropped.
	Logf func(format string, a ...any)
}

// newClient makes a LAN-only client: no DHT, no uTP, no UPnP, no WebRTC,
// no encryption (the image's secrets are protected by the server's
// credentials on HTTP; peers in the same swarm already hold the image).
func newClient(o Options) (*torrent.Client, error) { return newClientLimit(o, allocLimit) }

// newClientLimit is newClient with another MaxAllocPeerRequestDataPerConn
// (TestAllocStall shows the library's default stall).
func newClientLimit(o Options, limit int) (*torrent.Client, error) {
	cfg := torrent.NewDefaultClientConfig()
	cfg.NoDHT = true
	cfg.DisableUTP = true
	cfg.NoDefaultPortForwarding = true
	cfg.DisableWebtorrent = true
	cfg.DisablePEX = !o.PEX
	cfg.Seed = true
	cfg.DataDir = o.Dir
	// Every torrent brings its storage; the library's default would open
	// a completion database (bbolt) in DataDir, or the current directory.
	cfg.DefaultStorage = noStorage{}
	cfg.MaxAllocPeerRequestDataPerConn = limit
	cfg.DisableAcceptRateLimiting = true
	cfg.HeaderObfuscationPolicy = torrent.HeaderObfuscationPolicy{}
	cfg.ListenPort = 0
	if o.Listen != "" {
		host, port, err := splitListen(o.Listen)
		if err != nil {
			return nil, err
		}
		cfg.ListenHost = func(string) string { return host }
		cfg.ListenPort = port
		if ip, err := netip.ParseAddr(host); err == nil {
			// One address: listen (and dial) on its family only.
			cfg.DisableIPv6 = ip.Unmap().Is4()
			cfg.DisableIPv4 = !ip.Unmap().Is4()
		}
	}
	if o.MaxConns > 0 {
		cfg.EstablishedConnsPerTorrent = o.MaxConns
	}
	if o.UploadRate > 0 {
		cfg.UploadRateLimiter = rate.NewLimiter(rate.Limit(o.UploadRate), 256<<10)
	}
	if o.Header != nil {
		base := http.DefaultTransport.(*http.Transport).Clone()
		cfg.WebTransport = headerTransport{base, o.Header}
		cfg.HttpRequestDirector = func(r *http.Request) error {
			addHeader(r, o.Header)
			return nil
		}
	}
	cfg.Slogger = slog.New(slog.DiscardHandler)
	if o.Logf != nil {
		cfg.Slogger = slog.New(slog.NewTextHandler(logfWriter(o.Logf), &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	return torrent.NewClient(cfg)
}

// headerTransport adds a header to every request it sends.
type headerTransport struct {
	base   http.RoundTripper
	header http.Header
}

func (t headerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	addHeader(r, t.header)
	return t.base.RoundTrip(r)
}

func addHeader(r *http.Request, h http.Header) {
	for k, vs := range h {
		for _, v := range vs {
			r.Header.Add(k, v)
		}
	}
}

// logfWriter adapts Logf to the io.Writer a slog handler writes to.
type logfWriter func(format string, a ...any)

func (f logfWriter) Write(b []byte) (int, error) {
	f("swarm: %s", strings.TrimRight(string(b), "\n"))
	return len(b), nil
}

// addTorrent adds t with its data in store.
func addTorrent(cl *torrent.Client, t *Torrent, store fileStore, o Options) (*torrent.Torrent, error) {
	spec := &torrent.TorrentSpec{
		AddTorrentOpts: torrent.AddTorrentOpts{
			InfoHash:  metainfo.NewHashFromHex(t.InfoHash),
			InfoBytes: t.mi.InfoBytes,
			Storage:   store,
		},
		DisplayName: t.Name,
		PeerAddrs:   o.Peers,
	}
	for _, u := range o.WebSeeds {
		if err := validWebSeed(u); err != nil {
			return nil, err
		}
	}
	if o.Tracker != "" {
		if err := validWebSeed(o.Tracker); err != nil {
			return nil, fmt.Errorf("tracker: %w", err)
		}
		spec.Trackers = [][]string{{o.Tracker}}
	}
	tt, _, err := cl.AddTorrentSpec(spec)
	if err != nil {
		return nil, err
	}
	<-tt.GotInfo()
	return tt, nil
}

// Node is a node's share of a swarm: it streams the image and seeds it.
type Node struct {
	cl        *torrent.Client
	t         *torrent.Torrent
	tor       *Torrent
	path      string
	readahead int64
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
	n := &Node{cl: cl, t: tt, tor: t, path: path, readahead: ra}
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
	return errors.Join(n.cl.Close()...)
}

// splitListen splits host:port (port a number, 0: any free port).
func splitListen(addr string) (string, int, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, fmt.Errorf("listen address %q: %w", addr, err)
	}
	p, err := strconv.ParseUint(port, 10, 16)
	if err != nil {
		return "", 0, fmt.Errorf("listen address %q: port: want 0 to 65535", addr)
	}
	return host, int(p), nil
}
