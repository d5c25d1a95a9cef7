package cli

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"time"

	"github.com/spf13/pflag"

	"github.com/clonecd/clonecd/fleet"
	"github.com/clonecd/clonecd/medium"
	"github.com/clonecd/clonecd/netclone"
	"github.com/clonecd/clonecd/swarm"
	"github.com/clonecd/clonecd/versions"
)

// swarmServeFlags are serve's swarm flags.
type swarmServeFlags struct {
	on     bool
	listen listenFlag
}

const swarmHelp = `--swarm lets the nodes that clone a version share its image with each
other (BitTorrent, TCP on the LAN only): the server answers the swarm's
tracker at /swarm/announce (any credential; it hands out the addresses of
the nodes fetching the same version) and seeds every published version
that has a node.torrent itself as a peer (--swarm-listen, port 6881 of
the --listen address by default), its image route being the webseed.
Nodes use the swarm when the server offers it (clonecd.swarm=0 on the
cloner's command line and fetch --no-swarm take HTTP). A node that has the
image keeps seeding (clonecd.seed=, fetch --seed) while nodes still need
the version: fetching it in the swarm, or cloning or waiting to clone it
in the fleet's state.
The peers' own connections (the seeder's port, the nodes' ports) are
BitTorrent: no credential, no encryption; whoever reaches them and knows
a version's infohash reads its image. Keep them on the cluster network.`

func (f *swarmServeFlags) define(fl *pflag.FlagSet) {
	fl.BoolVar(&f.on, "swarm", false, "nodes share the image with each other (BitTorrent): run the tracker and a seeder")
	fl.Var(&f.listen, "swarm-listen", "address the server's swarm peer listens on (default: the --listen host, port 6881)")
}

// startSwarm runs the swarm of serve --swarm: the tracker behind the
// server's credentials (o.Swarm), the seeders, and the byte counts of the
// fleet page and /metrics. close stops the seeders.
func startSwarm(ctx context.Context, store *versions.Store, f *serveFlags, o *netclone.ServerOptions, stderr io.Writer) (close func(), err error) {
	listen := string(f.sw.listen)
	if listen == "" {
		host, _, err := net.SplitHostPort(string(f.listen))
		if err != nil {
			return nil, err
		}
		listen = net.JoinHostPort(host, "6881")
	}
	sv := &swarmServer{store: store, listen: listen, seeders: map[string]*swarm.Seeder{}, known: map[string]string{},
		nodes: o.Nodes, logf: func(format string, a ...any) { fmt.Fprintf(stderr, "clonecd serve: "+format+"\n", a...) }}
	sv.tracker = swarm.NewTracker(swarm.TrackerOptions{Allow: sv.allow, Pending: sv.pending})
	cur, err := store.Current()
	if err != nil {
		return nil, err
	}
	if ih, err := torrentOf(cur); err != nil {
		return nil, err
	} else if ih == "" {
		sv.logf("version %s has no %s (published before the swarm): its nodes fetch it over HTTP", cur.Version, medium.Torrent)
	} else if err := sv.seed(ctx, cur, ih); err != nil {
		return nil, err
	}
	o.Swarm, o.PeerBytes, o.SeedBytes = sv.tracker, sv.peerBytes, sv.seedBytes
	return sv.close, nil
}

// swarmServer is the master's side of the swarm.
type swarmServer struct {
	store   *versions.Store
	tracker *swarm.Tracker
	listen  string
	logf    func(string, ...any)

	nodes   fleet.Limits
	mu      sync.Mutex // guards seeders, known, needs, needsAt
	seeders map[string]*swarm.Seeder
	known   map[string]string // infohash: version
	needs   map[string]int    // version: nodes waiting for or cloning it (pendingTTL old at most)
	needsAt time.Time
}

// The fleet's view of which nodes still need a version is read again at
// most every pendingTTL; a node whose last report is older than
// pendingStale (a node that died mid-clone) no longer counts.
const (
	pendingTTL   = 5 * time.Second
	pendingStale = 30 * time.Minute
)

// pending is the tracker's Pending: the nodes that still need the
// version of infohash ih in the fleet's state (waiting or cloning it),
// whether they joined the swarm yet or not, so that a node that has the
// image keeps seeding for the nodes that come late. It reads the node
// store itself rather than the server's overview (whose VersionView.Active
// is close: it also counts syncs and stale reports): the overview reads
// the tracker's byte counts, and the tracker calls pending locked.
func (sv *swarmServer) pending(ih string) int {
	sv.mu.Lock()
	defer sv.mu.Unlock()
	if now := time.Now(); sv.needs == nil || now.Sub(sv.needsAt) > pendingTTL {
		sv.needs, sv.needsAt = map[string]int{}, now
		all, err := sv.store.Nodes(sv.nodes).All()
		if err != nil {
			sv.logf("swarm: the nodes' states: %v", err)
		}
		for _, st := range all {
			if (st.State == fleet.Waiting || st.State == fleet.Cloning) && st.Operation() == fleet.OpClone && now.Sub(st.When) < pendingStale {
				sv.needs[st.Version]++
			}
		}
	}
	v, ok := sv.known[ih]
	if !ok {
		return 0
	}
	return sv.needs[v]
}

// torrentOf is the infohash of a version's image in its manifest; "":
// none.
func torrentOf(e *versions.Entry) (string, error) {
	f, err := os.Open(e.Path(medium.ManifestFile))
	if os.IsNotExist(err) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	defer f.Close()
	m, err := medium.ParseManifest(f)
	if err != nil {
		return "", fmt.Errorf("%s: %w", f.Name(), err)
	}
	return m.BTIH[medium.ImageGzip], nil
}

// seed starts the seeder of version e (its pieces checked first) and
// hands it to the tracker.
func (sv *swarmServer) seed(ctx context.Context, e *versions.Entry, ih string) error {
	b, err := os.ReadFile(e.Path(medium.Torrent))
	if err != nil {
		return err
	}
	t, err := swarm.ParseTorrent(b, ih)
	if err != nil {
		return err
	}
	sv.mu.Lock()
	listen := sv.listen
	if len(sv.seeders) > 0 { // the first version's seeder has the port
		host, _, _ := net.SplitHostPort(listen)
		listen = net.JoinHostPort(host, "0")
	}
	sv.mu.Unlock()
	s, err := swarm.NewSeeder(ctx, t, e.Image(), swarm.Options{Listen: listen, Logf: sv.logf})
	if err != nil {
		return fmt.Errorf("--swarm: version %s: %w", e.Version, err)
	}
	sv.mu.Lock()
	sv.seeders[ih], sv.known[ih] = s, e.Version
	sv.mu.Unlock()
	sv.logf("swarm: seeding version %s (btih %s) on %s", e.Version, ih, s.Addr())
	return sv.tracker.Add(ih, s.Addr(), true)
}

// allow says whether ih is the torrent of a published version; the first
// announce of a version without a seeder yet starts one.
func (sv *swarmServer) allow(ih string) bool {
	sv.mu.Lock()
	_, ok := sv.known[ih]
	sv.mu.Unlock()
	if ok {
		return true
	}
	list, err := sv.store.List()
	if err != nil {
		return false
	}
	for i := range list {
		if got, err := torrentOf(&list[i]); err == nil && got == ih {
			sv.mu.Lock()
			sv.known[ih] = list[i].Version
			sv.mu.Unlock()
			go func(e versions.Entry) {
				if err := sv.seed(context.Background(), &e, ih); err != nil {
					sv.logf("swarm: %v", err)
				}
			}(list[i])
			return true
		}
	}
	return false
}

// seedBytes is what the seeders sent, by version.
func (sv *swarmServer) seedBytes() map[string]int64 {
	sv.mu.Lock()
	defer sv.mu.Unlock()
	out := map[string]int64{}
	for ih, s := range sv.seeders {
		out[sv.known[ih]] += s.Stats().Uploaded
	}
	return out
}

// peerBytes is what the nodes sent each other, by version: the tracker's
// counts per infohash under the version of each. Every infohash the
// tracker counts passed allow, which notes its version in known.
func (sv *swarmServer) peerBytes() map[string]int64 {
	byIH := sv.tracker.PeerBytesByInfoHash() // before sv.mu: the tracker calls pending, which takes it
	sv.mu.Lock()
	defer sv.mu.Unlock()
	out := map[string]int64{}
	for ih, n := range byIH {
		out[sv.known[ih]] += n
	}
	return out
}

func (sv *swarmServer) close() {
	sv.mu.Lock()
	defer sv.mu.Unlock()
	for _, s := range sv.seeders {
		s.Close()
	}
}
