package cli

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/clonecd/clonecd/fleet"
	"github.com/clonecd/clonecd/internal/testenv"
	"github.com/clonecd/clonecd/medium"
	"github.com/clonecd/clonecd/netclone"
	"github.com/clonecd/clonecd/swarm"
	"github.com/clonecd/clonecd/trust"
	"github.com/clonecd/clonecd/versions"
)

// swarmStore publishes an image of about size random bytes (which gzip
// cannot shrink) into a new store; it returns the store and the version.
func swarmStore(t *testing.T, size int) (string, *versions.Entry) {
	t.Helper()
	dir := t.TempDir()
	root := filepath.Join(dir, "root")
	os.MkdirAll(filepath.Join(root, "etc"), 0o755)
	writeFile(t, filepath.Join(root, "etc", "passwd"), "root:x:0:0::/root:/bin/sh\n")
	blob := make([]byte, size)
	rand.Read(blob)
	if err := os.WriteFile(filepath.Join(root, "blob"), blob, 0o644); err != nil {
		t.Fatal(err)
	}
	img := filepath.Join(dir, medium.ImageGzip)
	if code, _, errs := runMain(t, "pack", "-q", "-o", img, root); code != 0 {
		t.Fatalf("pack: exit %d: %s", code, errs)
	}
	store := filepath.Join(dir, "store")
	publishStore(t, store, img, "-q")
	s, err := versions.Open(store)
	if err != nil {
		t.Fatal(err)
	}
	e, err := s.Current()
	if err != nil {
		t.Fatal(err)
	}
	return store, e
}

// serving is a clonecd serve the test started in-process.
type serving struct {
	url    string
	client *http.Client // pinned to the server's certificate, no credential
	admin  trust.Credential
	stderr *testenv.SyncBuffer
}

// startServe runs serve with f until the test ends.
func startServe(t *testing.T, f *serveFlags) *serving {
	t.Helper()
	var out testenv.SyncBuffer
	s := &serving{stderr: &testenv.SyncBuffer{}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- runServe(ctx, Output{Stdout: &out, Stderr: s.stderr}, f, nil) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	re := regexp.MustCompile(`on (https://127\.0\.0\.1:[0-9]+),(?s:.*)TLS pin (sha256//\S+)`)
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if m := re.FindStringSubmatch(out.String()); m != nil {
			cfg, err := trust.ClientTLSConfig(m[2], "")
			if err != nil {
				t.Fatal(err)
			}
			s.url, s.client = m[1], &http.Client{Transport: &http.Transport{TLSClientConfig: cfg}}
			break
		}
		select {
		case err := <-done:
			t.Fatalf("serve ended: %v: %s", err, s.stderr.String())
		default:
		}
	}
	if s.url == "" {
		t.Fatalf("serve printed no address and pin: %q %q", out.String(), s.stderr.String())
	}
	_, token, _ := runMain(t, "token", "--dir", f.dir, "admin")
	admin, err := trust.ParseCredential(strings.TrimSpace(token))
	if err != nil {
		t.Fatalf("clonecd token admin: %q: %v", token, err)
	}
	s.admin = admin
	return s
}

// get sends GET path with cred (none when its User is "") and returns
// the status code and the body.
func (s *serving) get(t *testing.T, path string, cred trust.Credential) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, s.url+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if cred.User != "" {
		req.SetBasicAuth(cred.User, cred.Token)
	}
	resp, err := s.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// masterBytes is the master's image bytes as its fleet page shows them.
func (s *serving) streams(t *testing.T) netclone.StreamsView {
	t.Helper()
	code, b := s.get(t, "/api/fleet", s.admin)
	var ov struct {
		Streams netclone.StreamsView `json:"streams"`
	}
	if code != http.StatusOK || json.Unmarshal(b, &ov) != nil {
		t.Fatalf("GET /api/fleet: %d %.200s", code, b)
	}
	return ov.Streams
}

// TestSwarmFetch: publish makes node.torrent and lists its infohash in
// the MANIFEST; nodes fetching with --swarm from serve --swarm on
// loopback all get the image intact while the master sends less than
// one image a node, a peer serving corrupt pieces does not stop them, the
// tracker and the webseed (the image route) want a credential, and the
// fleet page, /metrics and status count the master's and the peers'
// bytes.
func TestSwarmFetch(t *testing.T) {
	const nodes = 4
	store, e := swarmStore(t, 24<<20)
	b, err := os.ReadFile(e.Path(medium.ManifestFile))
	if err != nil {
		t.Fatal(err)
	}
	man, err := medium.ParseManifest(strings.NewReader(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	tb, err := os.ReadFile(e.Path(medium.Torrent))
	if err != nil {
		t.Fatalf("publish wrote no %s: %v", medium.Torrent, err)
	}
	tor, err := swarm.ParseTorrent(tb, man.BTIH[medium.ImageGzip])
	if err != nil {
		t.Fatalf("%s against the manifest's btih %q: %v", medium.Torrent, man.BTIH[medium.ImageGzip], err)
	}
	if f, ok := man.Lookup(medium.Torrent); !ok || f.Size != int64(len(tb)) {
		t.Errorf("MANIFEST does not list %s (%+v)", medium.Torrent, f)
	}
	img, _ := man.Lookup(medium.ImageGzip)

	f := &serveFlags{dir: store, listen: "127.0.0.1:0", maxStreams: 4, quiet: true}
	f.sw = swarmServeFlags{on: true, listen: "127.0.0.1:0"}
	srv := startServe(t, f)

	// Without a credential: neither the tracker nor the webseed.
	ih, _ := hex.DecodeString(tor.InfoHash)
	for _, p := range []string{"/swarm/announce?port=1&info_hash=" + urlQuery(string(ih)), "/swarm/scrape", "/v/" + e.Version + "/" + medium.ImageGzip} {
		if code, _ := srv.get(t, p, trust.Credential{}); code != http.StatusUnauthorized {
			t.Errorf("GET %s without a credential: %d; want 401", p, code)
		}
	}
	if code, body := srv.get(t, "/swarm/scrape", srv.admin); code != http.StatusOK {
		t.Errorf("GET /swarm/scrape with the admin's credential: %d %s", code, body)
	}

	// A lying peer: it checked its copy of the image, which is then
	// damaged in every piece, and announces itself as a seed.
	liarImg := filepath.Join(t.TempDir(), medium.ImageGzip)
	if err := os.WriteFile(liarImg, mustRead(t, e.Image()), 0o600); err != nil {
		t.Fatal(err)
	}
	// Its own address: the nodes ban the address of a peer that sent a
	// bad piece, and the master and the nodes are all on 127.0.0.1.
	liar, err := swarm.NewSeeder(context.Background(), tor, liarImg, swarm.Options{Listen: liarAddr + ":0", MaxConns: nodes})
	if err != nil {
		t.Fatal(err)
	}
	defer liar.Close()
	lf, err := os.OpenFile(liarImg, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	for off := int64(0); off < tor.Length; off += tor.PieceLength {
		lf.WriteAt([]byte("lie"), off+100)
	}
	lf.Close()
	announceAs(t, srv, tor.InfoHash, liar.Addr())

	type result struct {
		code     int
		out, err string
		file     string
	}
	results := make([]result, nodes)
	var wg sync.WaitGroup
	for i := range nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := &results[i]
			r.file = filepath.Join(t.TempDir(), medium.ImageGzip)
			r.code, r.out, r.err = runMain(t, "fetch", "--server", srv.url, "--dir", store, "--node", fmt.Sprintf("s%03d", i+1),
				"--swarm-listen", "127.0.0.1:0", "--swarm-dir", t.TempDir(), "--seed", "30s", "--json", "-o", r.file)
		}()
	}
	wg.Wait()
	var fromPeers int64
	for i, r := range results {
		var res fetchResult
		if r.code != 0 || json.Unmarshal([]byte(r.out), &res) != nil {
			t.Errorf("fetch --swarm %d: exit %d, %s\n%s", i, r.code, r.out, r.err)
			continue
		}
		got := sha256.Sum256(mustRead(t, r.file))
		if hex.EncodeToString(got[:]) != img.SHA256 || res.SHA256 != img.SHA256 {
			t.Errorf("fetch --swarm %d: sha256 %x (said %s); want %s", i, got, res.SHA256, img.SHA256)
		}
		if res.Swarm == nil {
			t.Errorf("fetch --swarm %d did not use the swarm: %s", i, r.err)
			continue
		}
		fromPeers += res.Swarm.FromPeers
		t.Logf("node %d: %+v in %.1fs", i, *res.Swarm, res.Seconds)
	}
	st := srv.streams(t)
	ratio := float64(st.Bytes) / float64(nodes*img.Size)
	t.Logf("master sent %d bytes for %d nodes of a %d-byte image: %.3f of %d images; the liar sent %d bytes",
		st.Bytes, nodes, img.Size, ratio, nodes, liar.Stats().Uploaded)
	if st.Bytes >= nodes*img.Size {
		t.Errorf("master sent %d bytes for %d nodes: not less than %d images (%d bytes)", st.Bytes, nodes, nodes, nodes*img.Size)
	}
	if fromPeers == 0 {
		t.Errorf("no node got a byte from another node")
	}
	if liar.Stats().Uploaded == 0 {
		t.Errorf("the liar sent nothing: the nodes never met a corrupt piece")
	}
	if st.PeerBytes == nil || *st.PeerBytes == 0 {
		t.Errorf("fleet page: peer bytes %v; want the bytes the nodes sent each other", st.PeerBytes)
	}
	if code, m := srv.get(t, "/metrics", srv.admin); code != 200 || !regexp.MustCompile(`clonecd_served_bytes_total\{source="peers"\} [1-9]`).Match(m) {
		t.Errorf("/metrics: %d, no peer bytes:\n%s", code, grepLines(string(m), "served_bytes"))
	}
	// Per version: the one version has all the bytes, the seeder's and
	// the peers' found under it by their infohash.
	if vs := st.Versions; len(vs) != 1 || vs[0].Version != e.Version || vs[0].Bytes != st.Bytes ||
		vs[0].PeerBytes == nil || *vs[0].PeerBytes != *st.PeerBytes {
		t.Errorf("fleet page: versions %s; want only %s with the totals, master %d and peers %d", jsonOf(vs), e.Version, st.Bytes, *st.PeerBytes)
	}
	code, out, errs := runMain(t, "status", "--server", srv.url, "--dir", store)
	total := regexp.MustCompile(`(?m)^image bytes served: (master \S+ \S+, peers \S+ \S+ \(master \d+%\))$`).FindStringSubmatch(out)
	if code != 0 || total == nil {
		t.Fatalf("status: exit %d: %s%s; want master and peer bytes", code, out, errs)
	}
	if want := "\n  " + e.Version + ": " + total[1] + "\n"; !strings.Contains(out, want) {
		t.Errorf("status: %s; want the version's line %q, the totals", out, want)
	}
}

func jsonOf(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// liarAddr is the lying peer's address (loopback, not 127.0.0.1).
const liarAddr = "127.0.0.2"

// announceAs announces addr to the server's tracker as a seed of ih with
// the admin's credential, from addr's host: the tracker hands out the
// address an announce came from.
func announceAs(t *testing.T, srv *serving, ih, addr string) {
	t.Helper()
	h, _ := hex.DecodeString(ih)
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	tr := srv.client.Transport.(*http.Transport).Clone()
	tr.DialContext = (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(host)}}).DialContext
	req, _ := http.NewRequest(http.MethodGet, srv.url+"/swarm/announce?left=0&event=started&info_hash="+urlQuery(string(h))+"&port="+port, nil)
	req.SetBasicAuth(srv.admin.User, srv.admin.Token)
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || strings.Contains(string(body), "failure") {
		t.Fatalf("announce %s: %d %q", addr, resp.StatusCode, body)
	}
}

func urlQuery(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		fmt.Fprintf(&b, "%%%02X", s[i])
	}
	return b.String()
}

func mustRead(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// TestSwarmFetchFallback: fetch takes the image from the swarm by
// default, and over HTTP, saying why, when the server runs no swarm,
// when --swarm-dir has no room for the image (the cloner's tmpfs is its
// RAM) and with --no-swarm; --no-swarm with swarm flags is refused.
func TestSwarmFetchFallback(t *testing.T) {
	plainStore, _ := swarmStore(t, 1<<20)
	plain := startServe(t, &serveFlags{dir: plainStore, listen: "127.0.0.1:0", maxStreams: 4, quiet: true})
	swarmStoreDir, _ := swarmStore(t, 1<<20)
	f := &serveFlags{dir: swarmStoreDir, listen: "127.0.0.1:0", maxStreams: 4, quiet: true}
	f.sw = swarmServeFlags{on: true, listen: "127.0.0.1:0"}
	withSwarm := startServe(t, f)
	small := filepath.Join(t.TempDir(), "small")
	testenv.Tmpfs(t, small, "256k")
	for _, tt := range []struct {
		name      string
		srv       *serving
		store     string
		args      []string
		code      int
		fromSwarm bool
		said      string // on standard error
	}{
		{"swarm by default", withSwarm, swarmStoreDir, []string{"--swarm-dir", t.TempDir(), "--swarm-listen", "127.0.0.1:0"}, 0, true, "from the swarm"},
		{"no swarm on the server", plain, plainStore, nil, 0, false, "offers no swarm"},
		{"--swarm-dir too small", withSwarm, swarmStoreDir, []string{"--swarm-dir", small}, 0, false, "no room for the image in " + small},
		{"--no-swarm", withSwarm, swarmStoreDir, []string{"--no-swarm"}, 0, false, ""},
		{"--no-swarm --seed", withSwarm, swarmStoreDir, []string{"--no-swarm", "--seed", "1m"}, 2, false, "--no-swarm takes the image over HTTP"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), medium.ImageGzip)
			code, stdout, errs := runMain(t, append([]string{"fetch", "--server", tt.srv.url, "--dir", tt.store, "--json", "-o", out}, tt.args...)...)
			if code != tt.code || !strings.Contains(errs, tt.said) {
				t.Fatalf("exit %d, stderr %q; want exit %d and %q", code, errs, tt.code, tt.said)
			}
			if code != 0 {
				return
			}
			var res fetchResult
			if err := json.Unmarshal([]byte(stdout), &res); err != nil || (res.Swarm != nil) != tt.fromSwarm || strings.Contains(errs, "from the swarm") != tt.fromSwarm {
				t.Errorf("from the swarm: %v (%v); want %v\n%s", res.Swarm != nil, err, tt.fromSwarm, errs)
			}
			vs, err := versions.Open(tt.store)
			if err != nil {
				t.Fatal(err)
			}
			cur, err := vs.Current()
			if err != nil {
				t.Fatal(err)
			}
			if got, want := sha256.Sum256(mustRead(t, out)), sha256.Sum256(mustRead(t, cur.Image())); got != want {
				t.Errorf("sha256 %x; want %x", got, want)
			}
		})
	}
}

// TestSwarmPending: the tracker counts as still needing a version the
// nodes the fleet's state shows waiting for or cloning it, swarm or not,
// so that a seeding node (fetch --seed, clonecd.seed=) stays for a node
// that joins late; a node done, one syncing and another version's do not
// count.
func TestSwarmPending(t *testing.T) {
	store, e := swarmStore(t, 1<<20)
	man, err := medium.ParseManifest(bytes.NewReader(mustRead(t, e.Path(medium.ManifestFile))))
	if err != nil {
		t.Fatal(err)
	}
	ih, _ := hex.DecodeString(man.BTIH[medium.ImageGzip])
	f := &serveFlags{dir: store, listen: "127.0.0.1:0", maxStreams: 4, quiet: true}
	f.sw = swarmServeFlags{on: true, listen: "127.0.0.1:0"}
	srv := startServe(t, f)
	vs, err := versions.Open(store)
	if err != nil {
		t.Fatal(err)
	}
	nodes := vs.Nodes(fleet.Limits{})
	for _, st := range []fleet.State{
		{Node: "n1", State: fleet.Cloning, Version: e.Version},
		{Node: "n2", State: fleet.Waiting, Version: e.Version},
		{Node: "n3", State: fleet.Done, Version: e.Version},
		{Node: "n4", State: fleet.Cloning, Version: e.Version, Op: fleet.OpSync},
		{Node: "n5", State: fleet.Cloning, Version: "0.1"},
	} {
		if _, err := nodes.Update(st); err != nil {
			t.Fatal(err)
		}
	}
	incomplete := func() string {
		_, b := srv.get(t, "/swarm/scrape?info_hash="+urlQuery(string(ih)), srv.admin)
		m := regexp.MustCompile(`10:incompletei(\d+)e`).FindSubmatch(b)
		if m == nil {
			t.Fatalf("scrape: %q", b)
		}
		return string(m[1])
	}
	if got := incomplete(); got != "2" {
		t.Errorf("scrape's incomplete with n1 cloning and n2 waiting for %s: %s; want 2", e.Version, got)
	}
	for _, n := range []string{"n1", "n2"} {
		if _, err := nodes.Update(fleet.State{Node: n, State: fleet.Done, Version: e.Version}); err != nil {
			t.Fatal(err)
		}
	}
	got := ""
	for deadline := time.Now().Add(3 * pendingTTL); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		if got = incomplete(); got == "0" {
			break
		}
	}
	if got != "0" {
		t.Errorf("scrape's incomplete once n1 and n2 are done: %s; want 0", got)
	}
}
