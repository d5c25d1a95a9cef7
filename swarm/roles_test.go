package swarm

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"sync/atomic"
	"syscall"
	"time"
)

// nodeEnv names the role the test binary plays when a lab starts it in a
// host (lab.start): master, node or liar. SWARM_ADDR is the host's
// address.
const nodeEnv = "SWARM_TEST_ROLE"

// The ports the roles listen on, in their own namespaces.
const (
	httpPort = 8080
	peerPort = 6881
)

func runNode() int {
	var err error
	switch os.Getenv(nodeEnv) {
	case "master":
		err = roleMaster()
	case "node":
		err = roleNode()
	case "liar":
		err = roleLiar()
	case "probe":
		err = roleProbe()
	default:
		err = fmt.Errorf("unknown role %q", os.Getenv(nodeEnv))
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, os.Getenv(nodeEnv)+":", err)
		return 1
	}
	return 0
}

func loadTorrent() (*Torrent, error) {
	b, err := os.ReadFile(os.Getenv("SWARM_TORRENT"))
	if err != nil {
		return nil, err
	}
	return ParseTorrent(b, os.Getenv("SWARM_IH"))
}

func logf(format string, a ...any) { fmt.Fprintf(os.Stderr, format+"\n", a...) }

// roleMaster is the server: the image over HTTP with Range (a FileServer
// stands in for clonecd serve) at /img/, the Tracker at /swarm/announce,
// "GET /done" from each node that verified its image, and with
// SWARM_SEED=1 a Seeder. SWARM_EXPECT nodes are expected (the tracker's
// Pending). It prints "ready", then "done N seeder-uploaded B" per node.
func roleMaster() error {
	tor, err := loadTorrent()
	if err != nil {
		return err
	}
	var expect int
	fmt.Sscan(os.Getenv("SWARM_EXPECT"), &expect)
	var done atomic.Int64
	tr := NewTracker(TrackerOptions{
		Allow:   func(ih string) bool { return ih == tor.InfoHash },
		Pending: func(string) int { return expect - int(done.Load()) },
	})
	var seeder *Seeder
	addr := os.Getenv("SWARM_ADDR")
	if os.Getenv("SWARM_SEED") == "1" {
		seeder, err = NewSeeder(context.Background(), tor, os.Getenv("SWARM_IMAGE"), Options{
			Listen: net.JoinHostPort(addr, fmt.Sprint(peerPort)), Logf: logf,
		})
		if err != nil {
			return err
		}
		defer seeder.Close()
		if err := tr.Add(tor.InfoHash, seeder.Addr(), true); err != nil {
			return err
		}
	}
	mux := http.NewServeMux()
	var files http.Handler = http.StripPrefix("/img/", http.FileServer(http.Dir(os.Getenv("SWARM_DIR"))))
	if token := os.Getenv("SWARM_AUTH"); token != "" {
		files = authorized(token, files)
	}
	mux.Handle("/img/", files)
	mux.Handle("/swarm/", tr)
	mux.HandleFunc("/done", func(w http.ResponseWriter, r *http.Request) {
		n := done.Add(1)
		var up int64
		if seeder != nil {
			up = seeder.Stats().Uploaded
		}
		fmt.Printf("done %d seeder-uploaded %d\n", n, up)
	})
	ln, err := net.Listen("tcp", net.JoinHostPort(addr, fmt.Sprint(httpPort)))
	if err != nil {
		return err
	}
	fmt.Println("ready")
	return http.Serve(ln, mux)
}

// authorized stands in for the server's credentials: 401 unless the
// request says Authorization: Bearer token.
func authorized(token string, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+token {
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// authHeader is the credential of SWARM_AUTH, nil without.
func authHeader() http.Header {
	if token := os.Getenv("SWARM_AUTH"); token != "" {
		return http.Header{"Authorization": {"Bearer " + token}}
	}
	return nil
}

// roleProbe GETs SWARM_HTTP (with SWARM_AUTH's credential, and the
// Range SWARM_RANGE if set) until something answers within 20 s, and
// prints "status CODE BYTES".
func roleProbe() error {
	req, err := http.NewRequest("GET", os.Getenv("SWARM_HTTP"), nil)
	if err != nil {
		return err
	}
	for k, v := range authHeader() {
		req.Header[k] = v
	}
	if r := os.Getenv("SWARM_RANGE"); r != "" {
		req.Header.Set("Range", r)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			n, _ := io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			fmt.Printf("status %d %d\n", resp.StatusCode, n)
			return nil
		}
		if time.Now().After(deadline) {
			return err
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// nodeResult is what a node prints when its image is verified.
type nodeResult struct {
	SHA256  string  `json:"sha256"`
	Bytes   int64   `json:"bytes"`
	Seconds float64 `json:"seconds"`
	CPU     float64 `json:"cpu"` // seconds of CPU (user and system) the node used
	Stats
}

// roleNode fetches the image (SWARM_HTTP: plain HTTP from that URL;
// else the swarm of SWARM_TORRENT with SWARM_WEBSEED and SWARM_TRACKER),
// prints "progress N" every 4 MiB and "result {json}" at the end, tells
// SWARM_DONE, then seeds until no node needs the image or SWARM_SEED_MAX
// passes.
func roleNode() error {
	start := time.Now()
	h := sha256.New()
	var res nodeResult
	report := func(r io.Reader) error {
		buf := make([]byte, 1<<20)
		next := int64(4 << 20)
		for {
			n, err := r.Read(buf)
			h.Write(buf[:n])
			res.Bytes += int64(n)
			if res.Bytes >= next {
				fmt.Printf("progress %d\n", res.Bytes)
				next += 4 << 20
			}
			if err == io.EOF {
				return nil
			}
			if err != nil {
				return err
			}
		}
	}
	finish := func() {
		res.SHA256 = hex.EncodeToString(h.Sum(nil))
		res.Seconds = time.Since(start).Seconds()
		var ru syscall.Rusage
		syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
		res.CPU = time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
		b, _ := json.Marshal(res)
		fmt.Printf("result %s\n", b)
		if u := os.Getenv("SWARM_DONE"); u != "" {
			if resp, err := http.Get(u); err == nil {
				resp.Body.Close()
			}
		}
	}
	if u := os.Getenv("SWARM_HTTP"); u != "" {
		req, err := http.NewRequest("GET", u, nil)
		if err != nil {
			return err
		}
		for k, v := range authHeader() {
			req.Header[k] = v
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("GET %s: %s", u, resp.Status)
		}
		if err := report(resp.Body); err != nil {
			return err
		}
		finish()
		return nil
	}
	tor, err := loadTorrent()
	if err != nil {
		return err
	}
	o := Options{
		Dir:     os.Getenv("SWARM_NODE_DIR"),
		Tracker: os.Getenv("SWARM_TRACKER"),
		Listen:  net.JoinHostPort(os.Getenv("SWARM_ADDR"), fmt.Sprint(peerPort)),
		Header:  authHeader(),
		Logf:    logf,
	}
	if u := os.Getenv("SWARM_WEBSEED"); u != "" {
		o.WebSeeds = []string{u}
	}
	fmt.Sscan(os.Getenv("SWARM_READAHEAD"), &o.Readahead) // benchmark experiments
	fmt.Sscan(os.Getenv("SWARM_MAXCONNS"), &o.MaxConns)
	n, err := Open(tor, o)
	if err != nil {
		return err
	}
	defer n.Close()
	ctx := context.Background()
	r := n.Reader(ctx)
	err = report(r)
	r.Close()
	if err != nil {
		return err
	}
	res.Stats = n.Stats()
	finish()
	seedMax, _ := time.ParseDuration(os.Getenv("SWARM_SEED_MAX"))
	c := &http.Client{Timeout: 5 * time.Second}
	err = n.Seed(ctx, seedMax, func() bool { return o.Tracker != "" && !Needed(c, o.Tracker, tor.InfoHash) })
	b, _ := json.Marshal(n.Stats())
	fmt.Printf("seeded %s\n", b)
	return err
}

// roleLiar seeds SWARM_IMAGE, a copy of the image with a flipped byte,
// claiming every piece without checking it: the lying peer.
func roleLiar() error {
	tor, err := loadTorrent()
	if err != nil {
		return err
	}
	s, err := newSeeder(context.Background(), tor, fileStore{path: os.Getenv("SWARM_IMAGE"), readOnly: true, trusted: true}, Options{
		Listen:  net.JoinHostPort(os.Getenv("SWARM_ADDR"), fmt.Sprint(peerPort)),
		Tracker: os.Getenv("SWARM_TRACKER"),
		Logf:    logf,
	})
	if err != nil {
		return err
	}
	defer s.Close()
	fmt.Println("ready")
	for {
		time.Sleep(5 * time.Second)
		b, _ := json.Marshal(s.Stats())
		fmt.Printf("liar %s\n", b)
	}
}
