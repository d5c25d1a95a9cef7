package netclone

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"syscall"
	"time"

	"github.com/clonecd/clonecd/medium"
	"github.com/clonecd/clonecd/progress"
	"github.com/clonecd/clonecd/swarm"
)

// SwarmPath is where a server with a swarm (serve --swarm) answers its
// tracker's announces and scrapes: SwarmPath+"announce", SwarmPath+"scrape".
const SwarmPath = "/swarm/"

// SwarmOptions make the image come from the swarm of the nodes that
// fetch the same version (package swarm), when the server offers one
// and the version has a torrent, instead of one HTTP stream from the
// server. The bytes are the same: the stream checks the same sha256 at
// its end, and each piece is checked against the torrent's SHA-1 (the
// torrent's infohash is the manifest's) before it is handed out.
type SwarmOptions struct {
	// Dir holds the image while it streams and while the node seeds (a
	// new directory in it, removed at Close); "": os.TempDir(). On the
	// network cloner this is its tmpfs: the image costs its size in RAM.
	Dir string
	// Listen is where other nodes connect (host:port); "": every
	// address, a free port.
	Listen string
	// Seed keeps serving the image to the other nodes once it is
	// complete, at the stream's Close, while the server's tracker says
	// nodes still need it, at most this long; 0: not at all.
	Seed time.Duration
}

// swarmPart is the swarm behind a Stream.
type swarmPart struct {
	node    *swarm.Node
	dir     string
	tracker string
	ih      string
	client  *http.Client
	seed    time.Duration
}

// authTransport puts the access's credential on every request: the
// swarm's webseed and announces go through it with the access's TLS.
type authTransport struct {
	base http.RoundTripper
	a    Access
}

func (t authTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	t.a.authorize(r)
	return t.base.RoundTrip(r)
}

// openSwarm joins the version's swarm; an error says why the image has
// to come over HTTP instead.
func (m *Media) openSwarm(name, want string) (*Stream, error) {
	o := m.opts.Swarm
	if _, err := m.get(SwarmPath[1:] + "scrape"); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, errors.New("the server offers no swarm (serve --swarm)")
		}
		return nil, err
	}
	b, err := m.get(m.path(medium.ManifestFile))
	if err != nil {
		return nil, err
	}
	man, err := medium.ParseManifest(bytes.NewReader(b))
	if err != nil {
		return nil, err
	}
	ih := man.BTIH[name]
	if ih == "" {
		return nil, fmt.Errorf("version %s has no torrent (no btih in its %s)", m.Version, medium.ManifestFile)
	}
	tb, err := m.get(m.path(medium.Torrent))
	if err != nil {
		return nil, err
	}
	t, err := swarm.ParseTorrent(tb, ih)
	if err != nil {
		return nil, err
	}
	if f, ok := man.Lookup(name); !ok || f.Size != t.Length {
		return nil, fmt.Errorf("%s: %d bytes, but %s lists %d", medium.Torrent, t.Length, medium.ManifestFile, f.Size)
	}
	if err := checkRoom(o.Dir, t.Length); err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp(o.Dir, "clonecd-swarm-")
	if err != nil {
		return nil, err
	}
	tr := authTransport{m.opts.Client.Transport, m.opts.Access}
	if tr.base == nil {
		tr.base = http.DefaultTransport
	}
	sp := &swarmPart{dir: dir, tracker: m.url(SwarmPath[1:] + "announce"), ih: ih, seed: o.Seed,
		client: &http.Client{Transport: tr, Timeout: 30 * time.Second}}
	sp.node, err = swarm.Open(t, swarm.Options{
		Dir: dir, WebSeeds: []string{m.url(m.path(name))}, Tracker: sp.tracker,
		Listen: o.Listen, Transport: tr, Logf: m.opts.Logf,
	})
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	s := &Stream{m: m, file: name, name: m.path(name), want: want, h: sha256.New(), size: t.Length, swarm: sp, fromSwarm: true}
	ctx, cancel := context.WithCancel(m.ctx)
	s.body = sp.node.Reader(ctx)
	s.setCancel(cancel)
	s.idle = time.AfterFunc(m.opts.IdleTimeout, s.cancelBody)
	m.opts.Logf("netclone: %s from the swarm (btih %s, %d pieces), the server's HTTP as its fallback", name, ih, t.NumPieces())
	return s, nil
}

// checkRoom says why dir (""; os.TempDir()) cannot hold an image of
// size bytes while it streams from the swarm: on the network cloner that
// is its tmpfs, in RAM, which an image too big would fill. A margin of a
// sixteenth and 16 MiB stays free.
func checkRoom(dir string, size int64) error {
	if dir == "" {
		dir = os.TempDir()
	}
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return fmt.Errorf("the swarm's directory %s: %w", dir, err)
	}
	free := int64(st.Bavail) * st.Bsize
	if need := size + size/16 + 16<<20; free < need {
		return fmt.Errorf("no room for the image in %s: %s free, %s needed", dir, progress.Bytes(free), progress.Bytes(need))
	}
	return nil
}

// leaveSwarm drops the swarm after its reader failed: the stream goes on
// over HTTP from where it is.
func (s *Stream) leaveSwarm(err error) {
	s.m.opts.Logf("netclone: the swarm failed at byte %d: %v; going on over HTTP", s.off, err)
	s.swarmStats = s.swarm.close(0)
	s.swarm = nil
}

// SwarmStats are the swarm's byte counts of a stream (zero without one).
func (s *Stream) SwarmStats() swarm.Stats {
	if s.swarm == nil {
		return s.swarmStats
	}
	return s.swarm.node.Stats()
}

// close seeds for up to seed when the image is complete, then leaves
// the swarm and removes the image.
func (sp *swarmPart) close(seed time.Duration) swarm.Stats {
	if seed > 0 && sp.node.Complete() {
		sp.node.Seed(context.Background(), seed, func() bool { return !swarm.Needed(sp.client, sp.tracker, sp.ih) })
	}
	st := sp.node.Stats()
	sp.node.Close()
	os.RemoveAll(sp.dir)
	return st
}
