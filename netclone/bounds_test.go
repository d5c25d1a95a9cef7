package netclone

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/clonecd/clonecd/fleet"
	"github.com/clonecd/clonecd/medium"
)

// serveReal runs s on a real loopback listener (its timeouts and
// connection cap, as `clonecd serve` does) until the test ends.
func serveReal(t *testing.T, s *Server) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.Serve(ctx, ln); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	if s.o.TLS != nil {
		return "https://" + ln.Addr().String()
	}
	return "http://" + ln.Addr().String()
}

// hog opens a real connection with a 4 KiB receive buffer (TLS for an
// https URL, checked with tlsCfg), asks for the image as node and never
// reads the answer.
func hog(t *testing.T, url, node string, tlsCfg *tls.Config) net.Conn {
	t.Helper()
	d := &net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		c.Control(func(fd uintptr) { serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
		return serr
	}}
	var c net.Conn
	var err error
	if host, ok := strings.CutPrefix(url, "https://"); ok {
		c, err = tls.DialWithDialer(d, "tcp", host, tlsCfg)
	} else {
		c, err = d.Dial("tcp", strings.TrimPrefix(url, "http://"))
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	req, _ := http.NewRequest(http.MethodGet, "/"+medium.ImageGzip, nil)
	as(node).authorize(req)
	fmt.Fprintf(c, "GET /%s HTTP/1.1\r\nHost: x\r\nAuthorization: %s\r\n\r\n", medium.ImageGzip, req.Header.Get("Authorization"))
	return c
}

// TestStalledClientsLoseTheirSlots is issue 11's acceptance test, as
// `clonecd serve` runs: over HTTPS, every client with its node's
// credential. With --max-streams 2, two clients that never read (small
// receive buffers, real sockets) do not stop a third node from fetching
// the whole image.
func TestStalledClientsLoseTheirSlots(t *testing.T) {
	dir := t.TempDir()
	data := imageDir(t, dir, "1.0", 64<<20, 11)
	srvTLS, cliTLS := testTLS(t)
	srv := serverWith(t, dir, ServerOptions{MaxStreams: 2, StallTimeout: 2 * time.Second, TLS: srvTLS})
	url := serveReal(t, srv)
	hog(t, url, "hog1", cliTLS)
	hog(t, url, "hog2", cliTLS)
	waitFor(t, 10*time.Second, func() bool { return srv.Stats().Active == 2 })

	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	start := time.Now()
	h := sha256.New()
	a := as("s003")
	a.TLS = cliTLS
	res, err := Fetch(ctx, url, FetchOptions{MediaOptions: MediaOptions{Access: a, Node: "s003"}, Open: func() (io.Writer, error) { return h, nil }})
	if err != nil {
		t.Fatalf("the third node's fetch with two stalled streams holding both slots: %v", err)
	}
	want := sha256.Sum256(data)
	if res.Bytes != int64(len(data)) || hex.EncodeToString(h.Sum(nil)) != hex.EncodeToString(want[:]) {
		t.Fatalf("the third node got %d bytes, not the image", res.Bytes)
	}
	t.Logf("third node done after %s; server %+v", time.Since(start).Round(time.Millisecond), srv.Stats())
	if st := srv.Stats(); st.Served != 3 || st.Active != 0 {
		t.Errorf("stats %+v; want 3 streams served and none active", st)
	}
}

// TestQueueBounded: past MaxQueue, and after QueueWait, a request for the
// image is answered 503 with Retry-After.
func TestQueueBounded(t *testing.T) {
	dir := t.TempDir()
	imageDir(t, dir, "1.0", 16<<20, 12)
	srv := serverWith(t, dir, ServerOptions{MaxStreams: 1, MaxQueue: 1, QueueWait: time.Second, StallTimeout: time.Minute})
	url := serveReal(t, srv)
	hog(t, url, "hog1", nil)
	waitFor(t, 10*time.Second, func() bool { return srv.Stats().Active == 1 })
	type answer struct {
		code  int
		after string
		took  time.Duration
	}
	ask := func() chan answer {
		ch := make(chan answer, 1)
		go func() {
			t0 := time.Now()
			req, _ := http.NewRequest(http.MethodGet, url+"/"+medium.ImageGzip, nil)
			resp, err := http.DefaultClient.Do(authed(req, admin()))
			if err != nil {
				ch <- answer{code: -1}
				return
			}
			resp.Body.Close()
			ch <- answer{resp.StatusCode, resp.Header.Get("Retry-After"), time.Since(t0)}
		}()
		return ch
	}
	queued := ask()
	waitFor(t, 10*time.Second, func() bool { return srv.Stats().Queued == 1 })
	for _, tt := range []struct {
		name string
		ch   chan answer
		took time.Duration
	}{{"past MaxQueue", ask(), 0}, {"after QueueWait", queued, 900 * time.Millisecond}} {
		a := <-tt.ch
		if a.code != http.StatusServiceUnavailable || a.after == "" || a.took < tt.took {
			t.Errorf("%s: %d, Retry-After %q, after %s; want 503 with Retry-After after at least %s", tt.name, a.code, a.after, a.took, tt.took)
		}
	}
	if st := srv.Stats(); st.Refused != 2 || st.Queued != 0 {
		t.Errorf("stats %+v; want 2 refused, none queued", st)
	}
}

// busy answers the first n image GETs 503 with Retry-After: 1, as a
// server with a full queue does.
type busy struct {
	h http.Handler
	n int
}

func (b *busy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if strings.HasSuffix(r.URL.Path, "/"+medium.ImageGzip) && r.Method == http.MethodGet && b.n > 0 {
		b.n--
		w.Header().Set(ServerHeader, "clonecd")
		w.Header().Set("Retry-After", "1")
		http.Error(w, "the queue for an image stream is full", http.StatusServiceUnavailable)
		return
	}
	b.h.ServeHTTP(w, r)
}

// TestStreamWaitsWhileBusy: busy answers (503 with Retry-After) do not
// count as failed attempts; the node waits and then streams.
func TestStreamWaitsWhileBusy(t *testing.T) {
	dir := t.TempDir()
	data := imageDir(t, dir, "1.0", 1<<20, 13)
	ts := serveHandler(t, &busy{h: newServer(t, dir, 1), n: 3})
	o := fastOpts()
	o.Retries = 2
	m, err := NewMedia(t.Context(), ts, o)
	if err != nil {
		t.Fatal(err)
	}
	got, err := fetchAll(m)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("stream after 3 busy answers with Retries 2: %d bytes, %v; want the image", len(got), err)
	}
}

func serveHandler(t *testing.T, h http.Handler) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: h}
	go hs.Serve(ln)
	t.Cleanup(func() { hs.Close() })
	return "http://" + ln.Addr().String()
}

func fetchAll(m *Media) ([]byte, error) {
	s, err := m.OpenImage()
	if err != nil {
		return nil, err
	}
	defer s.Close()
	return io.ReadAll(s)
}

func do(t *testing.T, method, url string, body io.Reader) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, url, body)
	resp, err := http.DefaultClient.Do(authed(req, admin()))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestWriteAPIBounds: what the write API refuses, and with which code.
func TestWriteAPIBounds(t *testing.T) {
	dir := t.TempDir()
	imageDir(t, dir, "1.0", 1000, 14)
	srv := serverWith(t, dir, ServerOptions{Nodes: fleet.Limits{MaxNodes: 3, MaxLog: 1000, MaxLogTotal: 1500}})
	url := serveReal(t, srv)
	state := func(s string) io.Reader { return strings.NewReader(s) }
	for _, tt := range []struct {
		name, method, path string
		body               io.Reader
		code               int
	}{
		{"state", "POST", "/api/nodes/s001", state(`{"state":"cloning","step":"setup"}`), 200},
		{"state body over 64 KiB", "POST", "/api/nodes/s001", state(`{"detail":"` + strings.Repeat("x", 70<<10) + `"}`), 413},
		{"state not a state", "POST", "/api/nodes/s001", state(`{"state":"pwned"}`), 400},
		{"state not JSON", "POST", "/api/nodes/s001", state(`<html>`), 400},
		{"version not a version", "POST", "/api/nodes/s001", state(`{"state":"done","version":"../../x"}`), 400},
		{"name with a leading -", "POST", "/api/nodes/-oProxyCommand=x", state(`{"state":"done"}`), 400},
		{"name too long", "POST", "/api/nodes/" + strings.Repeat("s", 64), state(`{"state":"done"}`), 400},
		{"log", "PUT", "/api/nodes/s001/log", state(strings.Repeat("l", 900)), 204},
		{"log over MaxLog", "PUT", "/api/nodes/s001/log", state(strings.Repeat("l", 1001)), 413},
		{"logs over MaxLogTotal", "PUT", "/api/nodes/s002/log", state(strings.Repeat("l", 700)), 413},
		{"assign body over 64 bytes", "POST", "/api/nodes/s001/assign", state(strings.Repeat("1", 100)), 413},
		{"third node", "POST", "/api/nodes/s003", state(`{"state":"waiting"}`), 200},
		{"node past MaxNodes", "POST", "/api/nodes/s004", state(`{"state":"waiting"}`), 507},
	} {
		code, body := do(t, tt.method, url+tt.path, tt.body)
		if code != tt.code {
			t.Errorf("%s: %s %s = %d %q; want %d", tt.name, tt.method, tt.path, code, body, tt.code)
		}
		if strings.Contains(body, dir) {
			t.Errorf("%s: the answer names the server's directory: %q", tt.name, body)
		}
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "nodes", "s001", "clone.log")); len(b) != 900 {
		t.Errorf("s001's log has %d bytes after a refused upload; want the 900 of the accepted one", len(b))
	}
}

// TestSlowBody: a request body that trickles in is cut after BodyTimeout.
func TestSlowBody(t *testing.T) {
	dir := t.TempDir()
	imageDir(t, dir, "1.0", 1000, 15)
	url := serveReal(t, serverWith(t, dir, ServerOptions{BodyTimeout: time.Second}))
	c, err := net.Dial("tcp", strings.TrimPrefix(url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	req, _ := http.NewRequest(http.MethodPut, "/", nil)
	as("s001").authorize(req)
	fmt.Fprintf(c, "PUT /api/nodes/s001/log HTTP/1.1\r\nHost: x\r\nAuthorization: %s\r\nContent-Length: 1000\r\n\r\n", req.Header.Get("Authorization"))
	start := time.Now()
	closed := make(chan struct{})
	go func() {
		io.Copy(io.Discard, c)
		close(closed)
	}()
	for i := 0; i < 100; i++ {
		select {
		case <-closed:
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("a trickling body was cut after %s; want about 1s", d)
			}
			return
		case <-time.After(300 * time.Millisecond):
			c.Write([]byte("x"))
		}
	}
	t.Fatalf("a body sent at 3 bytes/s was still read after %s", time.Since(start))
}

// TestMaxConns: Serve accepts at most MaxConns connections at once.
func TestMaxConns(t *testing.T) {
	dir := t.TempDir()
	imageDir(t, dir, "1.0", 1000, 16)
	url := serveReal(t, serverWith(t, dir, ServerOptions{MaxConns: 2}))
	var held []net.Conn
	for range 2 {
		c, err := net.Dial("tcp", strings.TrimPrefix(url, "http://"))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		held = append(held, c)
	}
	time.Sleep(100 * time.Millisecond) // both accepted
	c := &http.Client{Timeout: time.Second}
	if resp, err := c.Get(url + "/" + medium.Version); err == nil {
		resp.Body.Close()
		t.Fatalf("a third connection was served with MaxConns 2")
	}
	held[0].Close()
	c.Timeout = 5 * time.Second
	resp, err := c.Get(url + "/" + medium.Version)
	if err != nil {
		t.Fatalf("after a connection closed: %v", err)
	}
	resp.Body.Close()
}

// TestCorruptStateListed: one empty state.json does not break the list:
// that node is "unknown (corrupt state.json)", the others as they are.
func TestCorruptStateListed(t *testing.T) {
	dir := t.TempDir()
	imageDir(t, dir, "1.0", 1000, 17)
	url := serveReal(t, newServer(t, dir, 1))
	for _, n := range []string{"s001", "s002", "s003"} {
		writeState(dir, fleet.State{Node: n, State: fleet.Done, Version: "1.0"})
	}
	os.WriteFile(filepath.Join(dir, "nodes", "s002", "state.json"), nil, 0o644)
	src, _ := NewSource(url, "", admin())
	all, err := src.All(t.Context())
	if err != nil || len(all) != 3 || all[1].Summary() != "unknown (corrupt state.json)" || all[2].Summary() != "done" {
		t.Fatalf("All() with one empty state.json = %+v, %v", all, err)
	}
	// And a 500 does not name the server's paths.
	os.RemoveAll(filepath.Join(dir, "nodes"))
	os.WriteFile(filepath.Join(dir, "nodes"), []byte("not a directory"), 0o644)
	code, body := do(t, "GET", url+"/api/nodes", nil)
	if code != 500 || strings.Contains(body, dir) || !strings.Contains(body, "see the server's log") {
		t.Errorf("GET /api/nodes with a broken node store = %d %q; want 500 without paths", code, body)
	}
}

// TestEscapesStripped: terminal escapes a node reports are not stored,
// so status and reclone cannot print them.
func TestEscapesStripped(t *testing.T) {
	dir := t.TempDir()
	imageDir(t, dir, "1.0", 1000, 18)
	url := serveReal(t, newServer(t, dir, 1))
	code, _ := do(t, "POST", url+"/api/nodes/s001", strings.NewReader(`{"state":"failed","step":"unpack\u001b[31mRED","error":"\u001b]52;c;cGF5bG9hZA==\u0007boom","detail":"\u009b2J"}`))
	if code != 200 {
		t.Fatalf("POST state = %d", code)
	}
	b, _ := os.ReadFile(filepath.Join(dir, "nodes", "s001", "state.json"))
	_, body := do(t, "GET", url+"/api/nodes/s001", nil)
	for _, s := range []string{string(b), body} {
		if strings.Contains(s, `\u001b`) || strings.Contains(s, `\u0007`) || strings.Contains(s, `\u009b`) || strings.ContainsAny(s, "\x1b\x07") {
			t.Errorf("a stored or served state keeps an escape: %s", s)
		}
	}
}

// TestAssignRefusesBad: pinning a node to a version marked bad needs
// force, over HTTP and on the store alike; reclone refuses it up front.
func TestAssignRefusesBad(t *testing.T) {
	dir, _, _ := store(t, 1000)
	if err := openStore(t, dir).MarkBad("1.19", "nfs hangs"); err != nil {
		t.Fatal(err)
	}
	url := serveReal(t, newServer(t, dir, 1))
	if code, body := do(t, "POST", url+"/api/nodes/s001/assign", strings.NewReader("1.19")); code != http.StatusConflict || !strings.Contains(body, "marked bad (nfs hangs)") {
		t.Errorf("assign of a bad version = %d %q; want 409 saying it is marked bad", code, body)
	}
	hs, _ := NewSource(url, "", admin())
	ds, _ := NewSource("", dir, Access{})
	for _, src := range []StateSource{hs, ds} {
		if err := src.Assign(t.Context(), "s001", "1.19", false); !errors.Is(err, ErrBadVersion) {
			t.Errorf("%s: Assign(bad 1.19) = %v; want ErrBadVersion", src.Where(), err)
		}
		if nodesOf(dir).Assigned("s001") != "" {
			t.Errorf("%s: a refused assign pinned the node", src.Where())
		}
		if err := src.Assign(t.Context(), "s001", "1.19", true); err != nil || nodesOf(dir).Assigned("s001") != "1.19" {
			t.Errorf("%s: Assign(bad 1.19, force) = %v, pin %q", src.Where(), err, nodesOf(dir).Assigned("s001"))
		}
		src.Assign(t.Context(), "s001", "", false)
	}
	rshLog := filepath.Join(t.TempDir(), "rsh.log")
	r := &Recloner{Source: hs, Rsh: []string{"/bin/sh", "-c", "echo ran >> " + rshLog, "rsh"}, Version: "1.19"}
	if _, err := r.Run(t.Context(), []string{"s002"}); !errors.Is(err, ErrBadVersion) {
		t.Errorf("reclone --version 1.19 (bad) = %v; want ErrBadVersion before any node", err)
	}
	if _, err := os.Stat(rshLog); err == nil {
		t.Errorf("reclone of a bad version ran the remote shell")
	}
}

// TestNotAClonecdServer: a web server that is not clonecd serve (404 for
// everything of ours) is named as such, not "file does not exist"; a
// clonecd server without the version says so; a server that is down
// stops reclone before the first node.
func TestNotAClonecdServer(t *testing.T) {
	web := serveHandler(t, http.FileServer(http.Dir(t.TempDir())))
	dir := t.TempDir()
	imageDir(t, dir, "1.0", 1000, 19)
	ours := serveReal(t, newServer(t, dir, 1))
	down := "http://" + freePort(t)
	rsh := []string{"/bin/sh", "-c", "exit 1", "rsh"}
	for _, tt := range []struct {
		name, url, version string
		is                 error
		msg                string
	}{
		{"web server", web, "", ErrNotServer, "is this a clonecd serve?"},
		{"no such version", ours, "9.9", nil, "has no version 9.9"},
		{"down", down, "", nil, "connection refused"},
	} {
		_, err := NewMedia(t.Context(), tt.url, MediaOptions{Access: admin(), Version: tt.version, Retries: 2, Backoff: time.Millisecond})
		check := func(what string, err error) {
			if err == nil || !strings.Contains(err.Error(), tt.msg) || (tt.is != nil && !errors.Is(err, tt.is)) || strings.Contains(err.Error(), "file does not exist") {
				t.Errorf("%s: %s = %v; want an error saying %q", tt.name, what, err, tt.msg)
			}
		}
		check("NewMedia", err)
		_, err = Fetch(t.Context(), tt.url, FetchOptions{MediaOptions: MediaOptions{Access: admin(), Version: tt.version, Retries: 2, Backoff: time.Millisecond}, Open: func() (io.Writer, error) { return io.Discard, nil }})
		check("Fetch", err)
		src, _ := NewSource(tt.url, "", admin())
		_, err = src.Version(t.Context(), tt.version)
		check("Version", err)
		if tt.version == "" {
			_, err = src.All(t.Context())
			check("All", err)
		}
		r := &Recloner{Source: src, Rsh: rsh, Version: tt.version}
		_, err = r.Run(t.Context(), []string{"s001", "s002"})
		check("Recloner.Run", err)
		if sts, _ := nodesOf(dir).All(); len(sts) != 0 {
			t.Errorf("%s: reclone touched nodes %+v before finding out", tt.name, sts)
		}
	}
}

// TestFetchFileKeepsOld: a fetch whose sha256 does not match leaves the
// output file as it was (and no temporary file); a good one replaces it,
// mode 0600.
func TestFetchFileKeepsOld(t *testing.T) {
	dir := t.TempDir()
	data := imageDir(t, dir, "1.0", 1<<20, 20)
	url := serveReal(t, newServer(t, dir, 1))
	outDir := t.TempDir()
	out := filepath.Join(outDir, medium.ImageGzip)
	os.WriteFile(out, []byte("the good old image"), 0o644)
	good, _ := os.ReadFile(filepath.Join(dir, medium.SumName(medium.ImageGzip)))
	os.WriteFile(filepath.Join(dir, medium.SumName(medium.ImageGzip)), medium.FormatSum(strings.Repeat("0", 64), medium.ImageGzip), 0o644)
	o := FetchOptions{MediaOptions: fastOpts(), Attempts: 2}
	if _, err := FetchFile(t.Context(), url, out, o); !errors.Is(err, ErrChecksum) {
		t.Fatalf("FetchFile with a wrong sha256 = %v; want ErrChecksum", err)
	}
	if b, _ := os.ReadFile(out); string(b) != "the good old image" {
		t.Errorf("a failed fetch changed %s (%d bytes)", out, len(b))
	}
	if ents, _ := os.ReadDir(outDir); len(ents) != 1 {
		t.Errorf("a failed fetch left %d entries in %s; want only the old file", len(ents), outDir)
	}
	os.WriteFile(filepath.Join(dir, medium.SumName(medium.ImageGzip)), good, 0o644)
	if _, err := FetchFile(t.Context(), url, out, o); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(out); !bytes.Equal(b, data) {
		t.Errorf("FetchFile wrote %d bytes, not the image", len(b))
	}
	if fi, _ := os.Stat(out); fi.Mode().Perm() != 0o600 {
		t.Errorf("fetched image has mode %o; want 0600", fi.Mode().Perm())
	}
}

// TestStatWithoutStream: Stat of the image is a HEAD, which does not
// queue for (or take) an image stream slot.
func TestStatWithoutStream(t *testing.T) {
	dir := t.TempDir()
	imageDir(t, dir, "1.0", 123456, 21)
	srv := newServer(t, dir, 1)
	url := serveReal(t, srv)
	m, err := NewMedia(t.Context(), url, fastOpts())
	if err != nil {
		t.Fatal(err)
	}
	fi, err := fs.Stat(m, medium.ImageGzip)
	if err != nil || fi.Size() != 123456 {
		t.Fatalf("Stat(%s) = %v, %v; want 123456 bytes", medium.ImageGzip, fi, err)
	}
	if _, err := fs.Stat(m, medium.Kickstart); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Stat(missing %s) = %v; want ErrNotExist", medium.Kickstart, err)
	}
	if st := srv.Stats(); st.Served != 0 {
		t.Errorf("Stat opened %d image streams; want none", st.Served)
	}
}

// TestRshArgs: the remote shell gets "--" before the node's name.
func TestRshArgs(t *testing.T) {
	dir := t.TempDir()
	imageDir(t, dir, "1.0", 1000, 22)
	src, _ := NewSource("", dir, Access{})
	argv := filepath.Join(t.TempDir(), "argv")
	r := &Recloner{Source: src, Rsh: []string{"/bin/sh", "-c", `printf '%s\n' "$@" > ` + argv + `; echo "` + RamcloneMarker + `"`, "rsh"},
		Timeout: 300 * time.Millisecond, Poll: 50 * time.Millisecond}
	if _, err := r.Run(t.Context(), []string{"s001"}); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(argv)
	if got, want := string(b), "--\ns001\n"+DefaultCommand+"\n"; got != want {
		t.Errorf("the remote shell got %q; want %q", got, want)
	}
	if _, err := r.Run(t.Context(), []string{"-oProxyCommand=x"}); err == nil {
		t.Errorf("Run with a node named -oProxyCommand=x succeeded")
	}
	if !strings.Contains(DefaultRsh, "StrictHostKeyChecking=yes") {
		t.Errorf("DefaultRsh %q does not check host keys strictly", DefaultRsh)
	}
}

// TestRecloneOutputClean: a node's failure text with escapes (from an
// older server's state.json, or ssh's output) prints without them.
func TestRecloneOutputClean(t *testing.T) {
	dir := t.TempDir()
	imageDir(t, dir, "1.0", 1000, 23)
	src, _ := NewSource("", dir, Access{})
	var out bytes.Buffer
	r := &Recloner{Source: src, Rsh: []string{"/bin/sh", "-c", `printf 'ssh: \033]0;owned\007\033[2J nope\n' >&2; exit 255`, "rsh"}, Out: &out}
	res, err := r.Run(t.Context(), []string{"s001"})
	if err != nil {
		t.Fatal(err)
	}
	WriteTable(&out, res)
	if strings.ContainsAny(out.String(), "\x1b\x07") || strings.ContainsAny(res[0].Error, "\x1b\x07") {
		t.Errorf("reclone output keeps escapes: %q", out.String())
	}
	if !strings.Contains(out.String(), "nope") {
		t.Errorf("reclone output lost the message: %q", out.String())
	}
}

// TestServer404s: what a 404 of the server says, without its paths.
func TestServer404s(t *testing.T) {
	dir, _, _ := store(t, 1000)
	url := serveReal(t, newServer(t, dir, 1))
	empty := serveReal(t, newServer(t, t.TempDir(), 1))
	for _, tt := range []struct{ url, want string }{
		{url + "/v/9.9/" + medium.ImageGzip, "this server has no version 9.9"},
		{url + "/api/versions/9.9", "this server has no version 9.9"},
		{url + "/v/x%1b[31m/" + medium.Layout, `this server has no version "x\x1b[31m"`},
		{url + "/api/nodes/s404", "no state for node s404"},
		{url + "/api/nodes/s404/log", "no log for node s404"},
		{empty + "/" + medium.Version, "this server has no current version"},
	} {
		code, body := do(t, "GET", tt.url, nil)
		if code != http.StatusNotFound || !strings.Contains(body, tt.want) || strings.Contains(body, dir) || strings.ContainsRune(body, 0x1b) {
			t.Errorf("GET %s = %d %q; want 404 %q", tt.url, code, body, tt.want)
		}
	}
}
