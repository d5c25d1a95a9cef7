package cli

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/clonecd/clonecd/internal/testenv"
	"github.com/clonecd/clonecd/medium"
	"github.com/clonecd/clonecd/trust"
	"github.com/clonecd/clonecd/versions"
)

// TestPackCompressRefusals: pack refuses, before anything is written, an
// output named for the other compression and a level the compression
// does not have; each error says what to do.
func TestPackCompressRefusals(t *testing.T) {
	t.Parallel()
	root, _ := packedTree(t)
	dir := t.TempDir()
	for _, tt := range []struct {
		args []string
		want string // regexp on stderr
	}{
		{[]string{"--compress", "zstd", "-o", filepath.Join(dir, "node.cpio.gz")}, `a \.gz name for a zstd image: name it .*/node\.cpio\.zst`},
		{[]string{"-o", filepath.Join(dir, "node.cpio.zst")}, `a \.zst name for a gzip image: name it .*/node\.cpio\.gz`},
		{[]string{"--compress", "gzip", "--level", "12", "-o", filepath.Join(dir, "node.cpio.gz")}, `--level: gzip level 12: want 1-9`},
		{[]string{"--compress", "xz", "-o", filepath.Join(dir, "node.cpio.xz")}, `--compress`},
	} {
		args := append(append([]string{"pack", "-q"}, tt.args...), root)
		code, _, errs := runMain(t, args...)
		if code != 2 || !regexp.MustCompile(tt.want).MatchString(errs) {
			t.Errorf("clonecd %q = exit %d, %q; want 2 and %s", args, code, errs, tt.want)
		}
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Errorf("refused packs wrote %v", ents)
	}
}

// TestZstdVersion: a zstd image goes through publish, a real clonecd
// serve (HTTPS, credentials) and fetch under its own name,
// node.cpio.zst; the version's MANIFEST lists it; the gzip name on the
// server is a 404 for it; a later gzip version is served at the old
// node.cpio.gz URL again, while the zstd version stays at /v/V/; and
// fetch refuses an output named for the other compression before it
// downloads anything.
func TestZstdVersion(t *testing.T) {
	t.Parallel()
	root, gz := packedTree(t)
	zst := filepath.Join(t.TempDir(), medium.ImageZstd)
	if code, _, errs := runMain(t, "pack", "-q", "--compress", "zstd", "-o", zst, root); code != 0 {
		t.Fatalf("pack --compress zstd: exit %d: %s", code, errs)
	}
	zdata, _ := os.ReadFile(zst)
	if !bytes.HasPrefix(zdata, []byte{0x28, 0xb5, 0x2f, 0xfd}) {
		t.Fatalf("pack --compress zstd wrote %.8x, not a zstd frame", zdata)
	}
	store := t.TempDir()
	lay := filepath.Join(t.TempDir(), medium.Layout)
	writeFile(t, lay, cliLayout)

	// zstd data under a gzip name is refused, nothing published
	disguised := filepath.Join(t.TempDir(), "disguised.cpio.gz")
	writeFile(t, disguised, string(zdata))
	if code, _, errs := runMain(t, "publish", "--unsigned", "--dir", store, "--layout", lay, disguised); code != 2 || !strings.Contains(errs, "a .gz name for the image node.cpio.zst") {
		t.Errorf("publish of zstd data named .gz: exit %d, %q", code, errs)
	}
	if code, _, errs := runMain(t, "publish", "--unsigned", "--dir", store, "--layout", lay, zst); code != 0 {
		t.Fatalf("publish %s: %s", zst, errs)
	}
	s, _ := versions.Open(store)
	e, err := s.Current()
	if err != nil {
		t.Fatal(err)
	}
	man, err := os.ReadFile(filepath.Join(e.Dir, medium.ManifestFile))
	if err != nil || !regexp.MustCompile(`(?m)^file [0-9a-f]{64} \d+ node\.cpio\.zst$`).Match(man) || bytes.Contains(man, []byte(medium.ImageGzip)) {
		t.Errorf("the zstd version's MANIFEST (%v):\n%s", err, man)
	}
	if e.ImageName() != medium.ImageZstd || e.Image() != filepath.Join(e.Dir, medium.ImageZstd) {
		t.Errorf("zstd version: ImageName %q, Image %q", e.ImageName(), e.Image())
	}

	url := startServe(t, &serveFlags{dir: store, listen: "127.0.0.1:0", maxStreams: 2, quiet: true}).url
	get := getter(t, store, url)
	if code := get("/" + medium.ImageGzip); code != http.StatusNotFound {
		t.Errorf("GET /%s of a zstd version = %d; want 404", medium.ImageGzip, code)
	}
	if code := get("/" + medium.ImageZstd); code != http.StatusOK {
		t.Errorf("GET /%s of a zstd version = %d; want 200", medium.ImageZstd, code)
	}
	out := t.TempDir()
	fetch := func(name string, extra ...string) (int, string, string) {
		args := append([]string{"fetch", "--server", url, "--dir", store, "-q", "-o", filepath.Join(out, name)}, extra...)
		return runMain(t, args...)
	}
	// named for the other compression: refused before the download
	if code, _, errs := fetch("old.cpio.gz"); code != 2 || !strings.Contains(errs, "name it "+filepath.Join(out, "old.cpio.zst")) {
		t.Errorf("fetch of a zstd version into a .gz file: exit %d, %q", code, errs)
	}
	if _, err := os.Stat(filepath.Join(out, "old.cpio.gz")); err == nil {
		t.Errorf("the refused fetch wrote its output")
	}
	code, stdout, errs := fetch(medium.ImageZstd, "--json")
	var res fetchResult
	if code != 0 || json.Unmarshal([]byte(stdout), &res) != nil || res.Image != medium.ImageZstd || res.Version != "1.0" {
		t.Fatalf("fetch of the zstd version: exit %d, %q %q", code, stdout, errs)
	}
	if b, _ := os.ReadFile(filepath.Join(out, medium.ImageZstd)); !bytes.Equal(b, zdata) {
		t.Errorf("fetch did not write the zstd image")
	}
	if code, _, errs := runMain(t, "verify", "-q", filepath.Join(out, medium.ImageZstd), root); code != 0 {
		t.Errorf("verify of the fetched zstd image against its tree: exit %d, %s", code, errs)
	}

	// a gzip version after it: the flat names switch back, the old URL works
	if code, _, errs := runMain(t, "publish", "--unsigned", "--dir", store, gz); code != 0 {
		t.Fatalf("publish %s: %s", gz, errs)
	}
	for _, tt := range []struct{ name, want string }{
		{medium.ImageGzip, "current/" + medium.ImageGzip},
		{medium.SumName(medium.ImageGzip), "current/" + medium.SumName(medium.ImageGzip)},
		{medium.ImageZstd, ""}, // would dangle: removed
		{medium.SumName(medium.ImageZstd), ""},
	} {
		if got, _ := os.Readlink(filepath.Join(store, tt.name)); got != tt.want {
			t.Errorf("after publishing gzip, DIR/%s -> %q; want %q", tt.name, got, tt.want)
		}
	}
	if code := get("/" + medium.ImageGzip); code != http.StatusOK {
		t.Errorf("GET /%s of a gzip version = %d; want 200 (the Medusa URL)", medium.ImageGzip, code)
	}
	gdata, _ := os.ReadFile(gz)
	for _, tt := range []struct {
		version, name string
		want          []byte
	}{{"", medium.ImageGzip, gdata}, {"1.0", medium.ImageZstd, zdata}} {
		args := []string{"--json"}
		if tt.version != "" {
			args = append(args, "--version", tt.version)
		}
		code, stdout, errs := fetch("v"+tt.version+"-"+tt.name, args...)
		if code != 0 || json.Unmarshal([]byte(stdout), &res) != nil || res.Image != tt.name {
			t.Errorf("fetch --version %q: exit %d, %q %q; want %s", tt.version, code, stdout, errs, tt.name)
		}
		if b, _ := os.ReadFile(filepath.Join(out, "v"+tt.version+"-"+tt.name)); !bytes.Equal(b, tt.want) {
			t.Errorf("fetch --version %q did not write %s", tt.version, tt.name)
		}
	}
}

// getter returns a function that GETs a path of the server at url as the
// admin, checking its certificate against the store's, and returns the
// status.
func getter(t *testing.T, store, url string) func(path string) int {
	t.Helper()
	pin, err := trust.ReadServerPin(store)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := trust.ClientTLSConfig(pin, "")
	if err != nil {
		t.Fatal(err)
	}
	_, token, _ := runMain(t, "token", "--dir", store, "admin")
	admin, err := trust.ParseCredential(token)
	if err != nil {
		t.Fatalf("clonecd token admin: %q: %v", token, err)
	}
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: cfg}}
	return func(path string) int {
		req, _ := http.NewRequest(http.MethodGet, url+path, nil)
		req.SetBasicAuth(admin.User, admin.Token)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		io.Copy(io.Discard, resp.Body)
		return resp.StatusCode
	}
}

// TestCloneNetZstd: the network cloner takes a zstd version from a real
// clonecd serve (HTTPS, the node's credential), streams node.cpio.zst
// into the new disk's partitions and checks its sha256 (stopped before
// identity: the tiny tree is no bootable node).
func TestCloneNetZstd(t *testing.T) {
	t.Parallel()
	testenv.NeedRoot(t)
	testenv.NeedTools(t, "sfdisk", "mkfs.ext4", "mkswap", "losetup", "partx")
	root, _ := packedTree(t)
	zst := filepath.Join(t.TempDir(), medium.ImageZstd)
	if code, _, errs := runMain(t, "pack", "-q", "--compress", "zstd", "-o", zst, root); code != 0 {
		t.Fatalf("pack --compress zstd: exit %d: %s", code, errs)
	}
	store := t.TempDir()
	lay := filepath.Join(t.TempDir(), medium.Layout)
	writeFile(t, lay, cliLayout)
	if code, _, errs := runMain(t, "publish", "--unsigned", "--dir", store, "--layout", lay, zst); code != 0 {
		t.Fatalf("publish: %s", errs)
	}
	url := startServe(t, &serveFlags{dir: store, listen: "127.0.0.1:0", maxStreams: 2, quiet: true}).url
	pin, err := trust.ReadServerPin(store)
	if err != nil {
		t.Fatal(err)
	}
	_, token, _ := runMain(t, "token", "--dir", store, "n1")
	disk := filepath.Join(t.TempDir(), "disk.img")
	if err := os.WriteFile(disk, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(disk, 64<<20); err != nil {
		t.Fatal(err)
	}
	code, stdout, errs := runMain(t, "clone", "--net", url, "--token", strings.TrimSpace(token), "--tls-pin", pin,
		"--target", disk, "--hostname", "n1", "--no-tune", "--break", "identity")
	log := stdout + errs
	if code != 3 || !regexp.MustCompile(`image node\.cpio\.zst`).MatchString(log) || !regexp.MustCompile(`unpack: .* sha256 ok`).MatchString(log) {
		t.Errorf("clone --net of a zstd version: exit %d; want 3 at --break identity, the zstd image unpacked with its sha256 ok:\n%s", code, log)
	}
}
