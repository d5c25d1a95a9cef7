package swarm

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// swarmSetup is a master host serving an image (HTTP, tracker,
// optionally a seeder) in a lab.
type swarmSetup struct {
	lab    *lab
	master host
	mproc  *proc
	dir    string // the master's directory (image, torrent)
	image  string
	tor    *Torrent
	sum    string // the image's sha256
	size   int
}

// newSwarm makes a lab with a master serving a random image of size
// bytes, its link shaped to rate ("" no shaping), expecting expect nodes;
// env goes to the master.
func newSwarm(t testing.TB, size int, rate string, seed bool, expect int, env ...string) *swarmSetup {
	t.Helper()
	l := newLab(t)
	s := &swarmSetup{lab: l, dir: t.TempDir(), size: size}
	var sum [32]byte
	s.image, sum = writeImage(t, s.dir, size)
	s.sum = hex.EncodeToString(sum[:])
	var err error
	if s.tor, err = MakeTorrentFile(s.image, MakeOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(s.dir, "node.torrent"), s.tor.Bytes, 0o644); err != nil {
		t.Fatal(err)
	}
	s.master = l.addHost()
	if rate != "" {
		l.shape(s.master, rate)
	}
	seedEnv := "0"
	if seed {
		seedEnv = "1"
	}
	s.mproc = l.start(s.master, "master", "master", s.env(append([]string{
		"SWARM_DIR=" + s.dir, "SWARM_IMAGE=" + s.image, "SWARM_SEED=" + seedEnv, fmt.Sprint("SWARM_EXPECT=", expect)}, env...)...)...)
	s.mproc.expect(t, "ready", 30*time.Second)
	return s
}

func (s *swarmSetup) url(path string) string {
	return fmt.Sprintf("http://%s:%d%s", s.master.addr, httpPort, path)
}

// env is what every role of this swarm gets, plus more.
func (s *swarmSetup) env(more ...string) []string {
	return append([]string{
		"SWARM_TORRENT=" + filepath.Join(s.dir, "node.torrent"), "SWARM_IH=" + s.tor.InfoHash,
		"SWARM_TRACKER=" + s.url("/swarm/announce"), "SWARM_DONE=" + s.url("/done"),
	}, more...)
}

// startNode starts a fetcher in a new host: over the swarm (webseed: the
// master's HTTP unless noWebseed) or, with plainHTTP, over HTTP only.
func (s *swarmSetup) startNode(t testing.TB, name string, plainHTTP, noWebseed bool, seedMax time.Duration) *proc {
	return s.startNodeIn(t, s.lab.addHost(), name, plainHTTP, noWebseed, seedMax)
}

// startNodeIn is startNode in an existing host.
func (s *swarmSetup) startNodeIn(t testing.TB, h host, name string, plainHTTP, noWebseed bool, seedMax time.Duration) *proc {
	dir := t.TempDir()
	env := s.env("SWARM_NODE_DIR="+dir, "SWARM_SEED_MAX="+seedMax.String())
	switch {
	case plainHTTP:
		env = append(env, "SWARM_HTTP="+s.url("/img/node.cpio.gz"))
	case !noWebseed:
		env = append(env, "SWARM_WEBSEED="+s.url("/img/node.cpio.gz"))
	}
	return s.lab.start(h, name, "node", env...)
}

// result waits for p's result line and checks its sha256.
func (s *swarmSetup) result(t testing.TB, p *proc, timeout time.Duration) nodeResult {
	t.Helper()
	var r nodeResult
	if err := json.Unmarshal([]byte(p.expect(t, "result ", timeout)), &r); err != nil {
		t.Fatalf("%s: %v", p.name, err)
	}
	if r.SHA256 != s.sum || r.Bytes != int64(s.size) {
		t.Errorf("%s: %d bytes, sha256 %s; want %d bytes, %s", p.name, r.Bytes, r.SHA256, s.size, s.sum)
	}
	return r
}

// TestSwarmNetns: a master whose link is shaped to 40 Mbit/s, a lying
// peer (a copy of the image with a flipped byte, claiming every piece),
// and five fetchers in their own namespaces, one killed mid-transfer:
// the four others get the image, every sha256 right, and the master
// sends less than what four plain HTTP clients would take.
func TestSwarmNetns(t *testing.T) {
	const size = 48 << 20
	s := newSwarm(t, size, "40mbit", true, 5)

	// The liar: same torrent, one flipped byte in each of the first pieces.
	bad := filepath.Join(t.TempDir(), "node.cpio.gz")
	b, err := os.ReadFile(s.image)
	if err != nil {
		t.Fatal(err)
	}
	for off := int64(0); off < int64(len(b)); off += s.tor.PieceLength {
		b[off+7] ^= 0xff
	}
	if err := os.WriteFile(bad, b, 0o600); err != nil {
		t.Fatal(err)
	}
	liar := s.lab.start(s.lab.addHost(), "liar", "liar", s.env("SWARM_IMAGE="+bad)...)
	liar.expect(t, "ready", 30*time.Second)
	liar.drain()

	before := s.lab.txBytes(s.master)
	var nodes []*proc
	for i := range 5 {
		nodes = append(nodes, s.startNode(t, fmt.Sprintf("node%d", i), false, false, 2*time.Minute))
	}
	// Kill node 0 once it has some of the image.
	nodes[0].expect(t, "progress", 2*time.Minute)
	nodes[0].kill()
	var fromPeers int64
	for _, p := range nodes[1:] {
		r := s.result(t, p, 4*time.Minute)
		fromPeers += r.FromPeers
		t.Logf("%s: %.1f s, %d MB from webseed, %d MB from peers, %d MB sent", p.name, r.Seconds,
			r.FromWebSeeds>>20, r.FromPeers>>20, r.Uploaded>>20)
	}
	sent := s.lab.txBytes(s.master) - before
	t.Logf("master sent %.2f images for 4 nodes; the nodes took %d MB from peers", float64(sent)/size, fromPeers>>20)
	if sent >= 4*size {
		t.Errorf("master sent %d bytes: not less than 4 images (%d)", sent, 4*size)
	}
	if fromPeers == 0 {
		t.Errorf("no node got a byte from a peer")
	}
	// The liar was asked (it sent pieces, which failed their hash).
	time.Sleep(6 * time.Second)
	var ls Stats
	if line, ok := strings.CutPrefix(liar.last(), "liar "); !ok || json.Unmarshal([]byte(line), &ls) != nil || ls.Uploaded == 0 {
		t.Errorf("the lying peer sent nothing (last said %q): the test did not test it", liar.last())
	} else {
		t.Logf("the lying peer sent %d KB", ls.Uploaded>>10)
	}
}
