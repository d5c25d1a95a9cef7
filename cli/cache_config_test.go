package cli

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/clonecd/clonecd/internal/testenv"
	"github.com/clonecd/clonecd/medium"
	"github.com/clonecd/clonecd/trust"
)

// TestCacheConfigServe: nginx on loopback, configured by clonecd
// cache-config, in front of clonecd serve (HTTPS, credentials): two
// fetches through it get the image intact, the second from the cache
// (the master sends next to nothing, the cache says HIT), and the cache
// serves nobody without a credential. swarm's TestCacheTier covers the
// cache's load (8 nodes at once, the origin's egress).
func TestCacheConfigServe(t *testing.T) {
	testenv.NeedTools(t, "nginx")
	testenv.NeedRoot(t) // nginx's workers read the test's 0700 directories
	store, e := swarmStore(t, 4<<20)
	img := e.Image()
	// The origin runs a swarm: the rack's nodes must still take the
	// image from the cache, over HTTP (the cache answers no /swarm/).
	f := &serveFlags{dir: store, listen: "127.0.0.1:0", maxStreams: 4, quiet: true, tlsHosts: hostsFlag{"localhost"}}
	f.sw = swarmServeFlags{on: true, listen: "127.0.0.1:0"}
	srv := startServe(t, f)

	// The server's certificate (its block of DIR/tls.pem) is what
	// nginx checks it against; the cache presents the server's own pair,
	// so the nodes' pin holds.
	pair := filepath.Join(store, trust.CertFile)
	var block *pem.Block
	for rest := mustRead(t, pair); block == nil || block.Type != "CERTIFICATE"; {
		if block, rest = pem.Decode(rest); block == nil {
			t.Fatalf("%s holds no certificate", pair)
		}
	}
	prefix := t.TempDir()
	ca := filepath.Join(prefix, "origin.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatal(err)
	}
	cacheAddr := freeAddr(t)
	origin := strings.TrimPrefix(srv.url, "https://")
	code, conf, errs := runMain(t, "cache-config", "--origin", origin, "--origin-ca", ca, "--origin-name", "localhost",
		"--listen", cacheAddr, "--tls-cert", pair, "--tls-key", pair, "--cache-dir", filepath.Join(prefix, "cache"))
	if code != 0 {
		t.Fatalf("cache-config: exit %d: %s", code, errs)
	}
	writeFile(t, filepath.Join(prefix, "clonecd.conf"), conf)
	for _, d := range []string{"tmp", "cache"} {
		os.MkdirAll(filepath.Join(prefix, d), 0o700)
	}
	// The admin's nginx.conf around it (Debian's includes conf.d/*.conf
	// inside http {}).
	writeFile(t, filepath.Join(prefix, "nginx.conf"), fmt.Sprintf(`user root;
worker_processes 1;
daemon off;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log warn;
events { worker_connections 64; }
http {
client_body_temp_path %[1]s/tmp/body;
proxy_temp_path %[1]s/tmp/proxy;
fastcgi_temp_path %[1]s/tmp/fastcgi;
uwsgi_temp_path %[1]s/tmp/uwsgi;
scgi_temp_path %[1]s/tmp/scgi;
access_log off;
include %[1]s/clonecd.conf;
}
`, prefix))
	nginx := exec.Command(testenv.Tool("nginx"), "-p", prefix, "-c", filepath.Join(prefix, "nginx.conf"), "-e", filepath.Join(prefix, "error.log"))
	if out, err := exec.Command(testenv.Tool("nginx"), "-t", "-p", prefix, "-c", filepath.Join(prefix, "nginx.conf"), "-e", filepath.Join(prefix, "error.log")).CombinedOutput(); err != nil {
		t.Fatalf("nginx -t: %v\n%s\n%s", err, out, conf)
	}
	if err := nginx.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nginx.Process.Kill(); nginx.Wait() })
	cache := "https://" + cacheAddr
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if c, err := net.Dial("tcp", cacheAddr); err == nil {
			c.Close()
			break
		} else if time.Now().After(deadline) {
			t.Fatalf("nginx does not listen on %s: %s", cacheAddr, mustRead(t, filepath.Join(prefix, "error.log")))
		}
	}

	want := hex.EncodeToString(func() []byte { s := sha256.Sum256(mustRead(t, img)); return s[:] }())
	var sent []int64
	for i := range 2 {
		before := srv.streams(t).Bytes
		out := filepath.Join(t.TempDir(), medium.ImageGzip)
		code, _, errs := runMain(t, "fetch", "--server", cache, "--dir", store, "--node", "s001", "-o", out)
		if code != 0 {
			t.Fatalf("fetch %d through the cache: exit %d: %s\n%s", i+1, code, errs, mustRead(t, filepath.Join(prefix, "error.log")))
		}
		if !strings.Contains(errs, "no swarm: the server offers no swarm") {
			t.Errorf("fetch %d through the cache of a server with a swarm did not go over HTTP: %q", i+1, errs)
		}
		if got := sha256.Sum256(mustRead(t, out)); hex.EncodeToString(got[:]) != want {
			t.Errorf("fetch %d through the cache: sha256 %x; want %s", i+1, got, want)
		}
		sent = append(sent, srv.streams(t).Bytes-before)
	}
	size := int64(len(mustRead(t, img)))
	t.Logf("the master sent %d bytes for the first fetch through the cache, %d for the second (image %d bytes)", sent[0], sent[1], size)
	if sent[0] < size || sent[1] > size/10 {
		t.Errorf("master sent %d, then %d bytes; want the image once (%d), then next to nothing", sent[0], sent[1], size)
	}

	cached := cache + "/v/" + e.Version + "/" + medium.ImageGzip
	for _, tt := range []struct {
		cred   bool
		code   int
		status string
	}{{true, http.StatusOK, "HIT"}, {false, http.StatusUnauthorized, ""}} {
		req, _ := http.NewRequest(http.MethodGet, cached, nil)
		if tt.cred {
			req.SetBasicAuth(srv.admin.User, srv.admin.Token)
		}
		resp, err := srv.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tt.code || resp.Header.Get("X-Cache-Status") != tt.status {
			t.Errorf("GET %s (credential %v) = %s, X-Cache-Status %q; want %d %q", cached, tt.cred, resp.Status, resp.Header.Get("X-Cache-Status"), tt.code, tt.status)
		}
	}
}

// freeAddr is a loopback address with a port free now.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}
