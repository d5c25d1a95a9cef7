package swarm

import (
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"maps"
	"math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/anacrolix/torrent/bencode"
)

// The tracker's wire format is BitTorrent's HTTP tracker protocol, so a
// node needs no code of ours to find its peers:
//
//	GET .../announce?info_hash=…&peer_id=…&port=P&uploaded=U&downloaded=D&left=L[&event=started|completed|stopped][&numwant=N]
//	-> d8:intervali60e8:completei3e10:incompletei5e5:peers<6 bytes an IPv4 peer>6:peers6<18 bytes an IPv6 peer>e
//	GET .../scrape?info_hash=…   (BEP 48)
//	-> d5:filesd20:<infohash>d8:completei3e10:downloadedi4e10:incompletei5eeee
//
// Peer lists are compact (BEP 23, BEP 7), at most numwant (default 50)
// peers picked at random, never the asking peer itself. A peer that
// stops announcing is forgotten after three intervals.

// AnnounceInterval is how often nodes announce (anacrolix/torrent does
// not announce more often than once a minute anyway).
const AnnounceInterval = time.Minute

// TrackerOptions are a Tracker's settings.
type TrackerOptions struct {
	// Allow reports whether the server serves the torrent of an infohash
	// (40 hex digits); announces for others get a failure. nil: any.
	Allow func(infoHash string) bool
	// Pending is the number of nodes that still need the version of an
	// infohash in the server's view (assigned, not done), whether they
	// announced yet or not: the announce and scrape answers' incomplete
	// is the larger of it and the peers still fetching, so a seeding node
	// does not stop before nodes that start late came. It is called with
	// the tracker locked: it must not call the Tracker. nil: 0.
	Pending func(infoHash string) int
	// Now is the clock; nil: time.Now.
	Now func() time.Time
}

// Tracker is the server's peer registry and its HTTP announce handler.
type Tracker struct {
	o TrackerOptions

	swarmsMu sync.Mutex
	swarms   map[[20]byte]map[netip.AddrPort]*trackedPeer
	// sent is, per infohash (hex), the bytes its announcing peers said
	// they uploaded, summed over time; PeerBytes is its sum, so the total
	// and the parts never disagree.
	sent map[string]int64
}

type trackedPeer struct {
	left, uploaded, downloaded int64
	completed                  bool // announced event=completed (or left=0)
	seen                       time.Time
	fixed                      bool // added by the caller (Add): never expires
}

// NewTracker returns an empty tracker.
func NewTracker(o TrackerOptions) *Tracker {
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Tracker{o: o, swarms: map[[20]byte]map[netip.AddrPort]*trackedPeer{}, sent: map[string]int64{}}
}

// Add registers a peer the caller knows (the master's Seeder: seed true)
// for infoHash; it is handed out until Remove. An unspecified address
// (0.0.0.0:6881) is handed out as the address each node reached the
// tracker on.
func (tr *Tracker) Add(infoHash, addr string, seed bool) error {
	ih, err := parseInfoHash(infoHash)
	if err != nil {
		return err
	}
	ap, err := netip.ParseAddrPort(addr)
	if err != nil {
		return fmt.Errorf("peer address %q: %w", addr, err)
	}
	left := int64(1)
	if seed {
		left = 0
	}
	tr.swarmsMu.Lock()
	defer tr.swarmsMu.Unlock()
	tr.swarm(ih)[netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())] = &trackedPeer{left: left, completed: seed, seen: tr.o.Now(), fixed: true}
	return nil
}

// PeerBytes is the image bytes the announcing peers (the nodes, not the
// peers of Add) said they sent each other, summed over every swarm since
// the tracker started: it only grows, also when a peer is forgotten.
// A peer says so when it announces: at most an announce interval late.
func (tr *Tracker) PeerBytes() int64 {
	var n int64
	for _, b := range tr.PeerBytesByInfoHash() {
		n += b
	}
	return n
}

// PeerBytesByInfoHash is PeerBytes per infohash (40 hex digits): only
// the infohashes whose peers said they sent something.
func (tr *Tracker) PeerBytesByInfoHash() map[string]int64 {
	tr.swarmsMu.Lock()
	defer tr.swarmsMu.Unlock()
	return maps.Clone(tr.sent)
}

// Remove forgets a peer of infoHash.
func (tr *Tracker) Remove(infoHash, addr string) {
	ih, err := parseInfoHash(infoHash)
	ap, err2 := netip.ParseAddrPort(addr)
	if err != nil || err2 != nil {
		return
	}
	tr.swarmsMu.Lock()
	defer tr.swarmsMu.Unlock()
	delete(tr.swarms[ih], netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()))
}

// SwarmStats describe the peers of one infohash.
type SwarmStats struct {
	Seeders  int   // peers with the whole image
	Leechers int   // peers still fetching
	Uploaded int64 // bytes the peers say they sent to each other (their last announces)
}

// Stats returns the swarm of infoHash as the peers last announced it.
func (tr *Tracker) Stats(infoHash string) SwarmStats {
	ih, err := parseInfoHash(infoHash)
	if err != nil {
		return SwarmStats{}
	}
	tr.swarmsMu.Lock()
	defer tr.swarmsMu.Unlock()
	return tr.statsLocked(ih)
}

func (tr *Tracker) statsLocked(ih [20]byte) SwarmStats {
	var s SwarmStats
	tr.expireLocked(ih)
	for _, p := range tr.swarms[ih] {
		if p.left == 0 {
			s.Seeders++
		} else {
			s.Leechers++
		}
		s.Uploaded += p.uploaded
	}
	return s
}

// swarm returns the peers of ih, made if missing. Hold swarmsMu.
func (tr *Tracker) swarm(ih [20]byte) map[netip.AddrPort]*trackedPeer {
	m := tr.swarms[ih]
	if m == nil {
		m = map[netip.AddrPort]*trackedPeer{}
		tr.swarms[ih] = m
	}
	return m
}

func (tr *Tracker) expireLocked(ih [20]byte) {
	old := tr.o.Now().Add(-3 * AnnounceInterval)
	for a, p := range tr.swarms[ih] {
		if !p.fixed && p.seen.Before(old) {
			delete(tr.swarms[ih], a)
		}
	}
}

// ServeHTTP answers announces (a path ending in /announce) and scrapes
// (a path ending in /scrape).
func (tr *Tracker) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		http.Error(w, "GET only", http.StatusMethodNotAllowed)
		return
	}
	var resp any
	var err error
	switch {
	case strings.HasSuffix(r.URL.Path, "/announce"):
		resp, err = tr.announce(r)
	case strings.HasSuffix(r.URL.Path, "/scrape"):
		resp, err = tr.scrape(r)
	default:
		http.NotFound(w, r)
		return
	}
	if err != nil {
		resp = map[string]any{"failure reason": err.Error()}
	}
	b, err := bencode.Marshal(resp)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/plain")
	w.Write(b)
}

// announceRequest is what an announce says.
type announceRequest struct {
	ih                         [20]byte
	addr                       netip.AddrPort
	left, uploaded, downloaded int64
	event                      string
	numWant                    int
}

func parseAnnounce(r *http.Request) (announceRequest, error) {
	q := r.URL.Query()
	var a announceRequest
	ih := q.Get("info_hash")
	if len(ih) != 20 {
		return a, fmt.Errorf("info_hash: %d bytes; want 20", len(ih))
	}
	copy(a.ih[:], ih)
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return a, fmt.Errorf("remote address %q: %w", r.RemoteAddr, err)
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return a, fmt.Errorf("remote address %q: %w", r.RemoteAddr, err)
	}
	port, err := strconv.ParseUint(q.Get("port"), 10, 16)
	if err != nil || port == 0 {
		return a, fmt.Errorf("port %q: want 1 to 65535", q.Get("port"))
	}
	a.addr = netip.AddrPortFrom(ip.Unmap(), uint16(port))
	for _, f := range []struct {
		key string
		v   *int64
	}{{"left", &a.left}, {"uploaded", &a.uploaded}, {"downloaded", &a.downloaded}} {
		if s := q.Get(f.key); s != "" {
			if *f.v, err = strconv.ParseInt(s, 10, 64); err != nil || *f.v < 0 {
				return a, fmt.Errorf("%s %q: want a byte count", f.key, s)
			}
		}
	}
	switch a.event = q.Get("event"); a.event {
	case "", "started", "completed", "stopped", "empty":
	default:
		return a, fmt.Errorf("event %q: want started, completed or stopped", a.event)
	}
	a.numWant = 50
	if s := q.Get("numwant"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil {
			return a, fmt.Errorf("numwant %q: want a number", s)
		}
		if n >= 0 && n < a.numWant {
			a.numWant = n
		}
	}
	return a, nil
}

func (tr *Tracker) announce(r *http.Request) (any, error) {
	a, err := parseAnnounce(r)
	if err != nil {
		return nil, err
	}
	hexIH := hex.EncodeToString(a.ih[:])
	if tr.o.Allow != nil && !tr.o.Allow(hexIH) {
		return nil, fmt.Errorf("infohash %s: not served here", hexIH)
	}
	tr.swarmsMu.Lock()
	defer tr.swarmsMu.Unlock()
	peers := tr.swarm(a.ih)
	if n := sentSince(peers[a.addr], a.uploaded); n > 0 {
		tr.sent[hexIH] += n
	}
	if a.event == "stopped" {
		delete(peers, a.addr)
	} else {
		p := peers[a.addr]
		if p == nil {
			p = &trackedPeer{}
			peers[a.addr] = p
		}
		p.left, p.uploaded, p.downloaded, p.seen = a.left, a.uploaded, a.downloaded, tr.o.Now()
		p.completed = p.completed || a.event == "completed" || a.left == 0
	}
	s := tr.statsLocked(a.ih)
	var v4, v6 []byte
	n := 0
	for _, ap := range shuffled(peers) {
		if n == a.numWant {
			break
		}
		if ap == a.addr || a.left == 0 && peers[ap].left == 0 {
			continue // itself; a seed needs no seeds
		}
		n++
		if ap.Addr().IsUnspecified() {
			ap = netip.AddrPortFrom(localAddr(r), ap.Port())
		}
		ip := ap.Addr().AsSlice()
		if len(ip) == 4 {
			v4 = binary.BigEndian.AppendUint16(append(v4, ip...), ap.Port())
		} else {
			v6 = binary.BigEndian.AppendUint16(append(v6, ip...), ap.Port())
		}
	}
	return map[string]any{
		"interval":   int(AnnounceInterval / time.Second),
		"complete":   s.Seeders,
		"incomplete": max(s.Leechers, tr.pending(hexIH)),
		"peers":      string(v4),
		"peers6":     string(v6),
	}, nil
}

// sentSince is what a peer's announce of uploaded adds to the bytes sent:
// its growth since the peer's last announce (a peer counts from 0 when it
// is new or was forgotten); nothing for a peer of Add, which announces
// nothing itself.
func sentSince(p *trackedPeer, uploaded int64) int64 {
	switch {
	case p == nil:
		return uploaded
	case p.fixed || uploaded <= p.uploaded:
		return 0
	}
	return uploaded - p.uploaded
}

// localAddr is the address the request came in on: a peer of Add that
// listens on every address (0.0.0.0:6881, the master's seeder) is handed
// out at the address the node reached the tracker on.
func localAddr(r *http.Request) netip.Addr {
	if a, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr); ok {
		if ap, err := netip.ParseAddrPort(a.String()); err == nil {
			return ap.Addr().Unmap()
		}
	}
	return netip.IPv4Unspecified()
}

func (tr *Tracker) pending(hexIH string) int {
	if tr.o.Pending == nil {
		return 0
	}
	return max(0, tr.o.Pending(hexIH))
}

func shuffled(m map[netip.AddrPort]*trackedPeer) []netip.AddrPort {
	s := make([]netip.AddrPort, 0, len(m))
	for a := range m {
		s = append(s, a)
	}
	rand.Shuffle(len(s), func(i, j int) { s[i], s[j] = s[j], s[i] })
	return s
}

func (tr *Tracker) scrape(r *http.Request) (any, error) {
	files := map[string]any{}
	tr.swarmsMu.Lock()
	defer tr.swarmsMu.Unlock()
	for _, ih := range r.URL.Query()["info_hash"] {
		if len(ih) != 20 {
			return nil, fmt.Errorf("info_hash: %d bytes; want 20", len(ih))
		}
		var k [20]byte
		copy(k[:], ih)
		s := tr.statsLocked(k)
		done := 0
		for _, p := range tr.swarms[k] {
			if p.completed {
				done++
			}
		}
		files[ih] = map[string]int{"complete": s.Seeders, "incomplete": max(s.Leechers, tr.pending(hex.EncodeToString(k[:]))), "downloaded": done}
	}
	return map[string]any{"files": files}, nil
}

func parseInfoHash(s string) ([20]byte, error) {
	var ih [20]byte
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != len(ih) {
		return ih, fmt.Errorf("infohash %q: want 40 hex digits", s)
	}
	copy(ih[:], b)
	return ih, nil
}

// ScrapeURL is the scrape URL of an announce URL (BEP 48: the last
// "announce" of the path becomes "scrape"); "" if it has none.
func ScrapeURL(announce string) string {
	u, err := url.Parse(announce)
	if err != nil {
		return ""
	}
	i := strings.LastIndex(u.Path, "/announce")
	if i < 0 {
		return ""
	}
	u.Path = u.Path[:i] + "/scrape" + u.Path[i+len("/announce"):]
	return u.String()
}

// Needed asks the tracker at announce whether any node still needs the
// torrent of infoHash (its scrape's incomplete); an unreachable tracker
// counts as yes. Node.Seed's done function is
// func() bool { return !Needed(c, announce, ih) }.
func Needed(c *http.Client, announce, infoHash string) bool {
	ih, err := parseInfoHash(infoHash)
	su := ScrapeURL(announce)
	if err != nil || su == "" {
		return true
	}
	u, _ := url.Parse(su)
	q := u.Query()
	q.Set("info_hash", string(ih[:]))
	u.RawQuery = q.Encode()
	resp, err := c.Get(u.String())
	if err != nil {
		return true
	}
	defer resp.Body.Close()
	var sr struct {
		Files map[string]struct {
			Incomplete int `bencode:"incomplete"`
		} `bencode:"files"`
	}
	if resp.StatusCode != http.StatusOK || bencode.NewDecoder(http.MaxBytesReader(nil, resp.Body, 1<<20)).Decode(&sr) != nil {
		return true
	}
	f, ok := sr.Files[string(ih[:])]
	return !ok || f.Incomplete > 0
}
