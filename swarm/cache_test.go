package swarm

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/clonecd/clonecd/internal/testenv"
)

// TestCacheTier: a rack's nginx cache (CacheConfig: proxy_cache, slice,
// auth_request) in front of an origin that wants a credential; 8 nodes
// fetch the image through the cache at once, every sha256 right, and
// the origin sends the image once (plus headers); a request without the
// credential gets 401 even once the image is cached; a swarm node whose
// only source is the cache as its webseed gets the image too.
func TestCacheTier(t *testing.T) {
	testenv.NeedTools(t, "nginx")
	const size = 32 << 20
	const token = "rack-token"
	s := newSwarm(t, size, "", false, 0, "SWARM_AUTH="+token)
	cache := s.lab.addHost()
	prefix := t.TempDir()
	for _, d := range []string{"tmp", "cache"} {
		if err := os.MkdirAll(filepath.Join(prefix, d), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	conf, err := CacheConfig(CacheOptions{
		Origin: s.master.addr + ":8080", Listen: cache.addr + ":8080", Dir: filepath.Join(prefix, "cache"),
		Cached: "/img/", Prefix: prefix, User: "root", Auth: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(prefix, "nginx.conf"), conf, 0o600); err != nil {
		t.Fatal(err)
	}
	nginx := s.lab.run(cache, "nginx", nil, testenv.Tool("nginx"), "-p", prefix, "-c", filepath.Join(prefix, "nginx.conf"), "-e", filepath.Join(prefix, "error.log"))
	nginx.drain()
	viaCache := "http://" + cache.addr + ":8080/img/node.cpio.gz"

	probe := func(auth bool, rng, want string) {
		t.Helper()
		env := []string{"SWARM_HTTP=" + viaCache, "SWARM_RANGE=" + rng}
		if auth {
			env = append(env, "SWARM_AUTH="+token)
		}
		p := s.lab.start(s.lab.addHost(), "probe", "probe", env...)
		if got := p.expect(t, "status ", 30*time.Second); !strings.HasPrefix(got, want) {
			errLog, _ := os.ReadFile(filepath.Join(prefix, "error.log"))
			t.Errorf("GET %s (credential %v, Range %q) = %s; want %s\n%s", viaCache, auth, rng, got, want, errLog)
		}
	}
	probe(false, "", "401")

	before := s.lab.txBytes(s.master)
	var nodes []*proc
	for i := range 8 {
		nodes = append(nodes, s.lab.start(s.lab.addHost(), "node", "node", s.env("SWARM_HTTP="+viaCache, "SWARM_AUTH="+token)...))
		_ = i
	}
	for _, p := range nodes {
		s.result(t, p, 3*time.Minute)
	}
	sent := s.lab.txBytes(s.master) - before
	t.Logf("origin sent %d bytes for 8 nodes: %.3f images", sent, float64(sent)/size)
	if sent > size*11/10 {
		t.Errorf("origin sent %d bytes for 8 nodes through the cache; want about one image (%d)", sent, size)
	}
	probe(false, "", "401")
	probe(true, "bytes=1000-1999", "206 1000")

	// A swarm node with the cache as its only source.
	before = s.lab.txBytes(s.master)
	n := s.lab.start(s.lab.addHost(), "webseed-node", "node", s.env("SWARM_NODE_DIR="+t.TempDir(), "SWARM_WEBSEED="+viaCache,
		"SWARM_AUTH="+token, "SWARM_TRACKER=", "SWARM_SEED_MAX=1ms")...)
	r := s.result(t, n, 3*time.Minute)
	if r.FromWebSeeds != size {
		t.Errorf("webseed node: %d bytes from the webseed; want %d", r.FromWebSeeds, size)
	}
	if sent := s.lab.txBytes(s.master) - before; sent > size/10 {
		t.Errorf("origin sent %d bytes to the webseed node behind a warm cache; want next to nothing", sent)
	}
}

// TestCacheConfig: the admin's part (no Prefix) is only the http-level
// blocks; bad settings are refused.
func TestCacheConfig(t *testing.T) {
	conf, err := CacheConfig(CacheOptions{Origin: "master:8080", Listen: "10.1.0.1:8080"})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"proxy_cache_path /var/cache/nginx/clonecd ", "max_size=20g", "location /v/ {", "slice 1m;",
		"proxy_cache_key $uri$slice_range;", "proxy_cache_lock on;", "server master:8080;", "listen 10.1.0.1:8080;"} {
		if !strings.Contains(string(conf), want) {
			t.Errorf("CacheConfig lacks %q:\n%s", want, conf)
		}
	}
	for _, not := range []string{"daemon", "events", "auth_request"} {
		if strings.Contains(string(conf), not) {
			t.Errorf("CacheConfig without Prefix/Auth has %q:\n%s", not, conf)
		}
	}
	for _, o := range []CacheOptions{
		{Origin: "master", Listen: ":8080"},
		{Origin: "m:1", Listen: "x"},
		{Origin: "m:1", Listen: ":1", Dir: "/a b"},
		{Origin: "m:1", Listen: ":1", Cached: "/v/;}"},
	} {
		if _, err := CacheConfig(o); err == nil {
			t.Errorf("CacheConfig(%+v) = nil error", o)
		}
	}
}

// TestCacheConfigInDocs: the configuration docs/swarm.md tells an
// admin to copy is CacheConfig's, the one TestCacheTier runs.
func TestCacheConfigInDocs(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join(testenv.RepoRoot(), "docs", "swarm.md"))
	if err != nil {
		t.Fatal(err)
	}
	conf, err := CacheConfig(CacheOptions{Origin: "master:8443", Listen: "10.1.0.1:8443", Auth: true,
		OriginCA: "/etc/clonecd/master.pem", OriginName: "master", Cert: "/etc/clonecd/master.pem", Key: "/etc/clonecd/master.key",
		ServerHeader: "X-Clonecd-Server"})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(doc), "```nginx\n"+string(conf)+"```\n") {
		t.Errorf("docs/swarm.md does not show CacheConfig's output:\n%s", conf)
	}
}
