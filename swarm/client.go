package swarm

import (
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
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
// docs/swarm.md. With the whole queue fitting, a reservation never
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
	// Transport, when not nil, sends the webseed requests and the
	// node's announces (made here, not by the library, whose tracker
	// client does not check the server's certificate): the caller's
	// TLS settings, such as the server's pin. nil: the library's
	// clients.
	Transport http.RoundTripper
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
	if o.Transport != nil {
		cfg.WebTransport = headerTransport{o.Transport, o.Header}
	} else if o.Header != nil {
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
		if o.Transport == nil {
			spec.Trackers = [][]string{{o.Tracker}}
		}
	}
	tt, _, err := cl.AddTorrentSpec(spec)
	if err != nil {
		return nil, err
	}
	<-tt.GotInfo()
	return tt, nil
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
