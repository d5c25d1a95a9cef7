package cli

import (
	"encoding/json"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/clonecd/clonecd/medium"
	"github.com/clonecd/clonecd/netclone"
	"github.com/clonecd/clonecd/versions"
)

// packedTree packs a small tree in-process and returns the tree and the
// image.
func packedTree(t *testing.T) (root, img string) {
	t.Helper()
	dir := t.TempDir()
	root = filepath.Join(dir, "root")
	for name, data := range map[string]string{"etc/passwd": "root:x:0:0::/root:/bin/sh\n", "usr/bin/tool": "ELF"} {
		os.MkdirAll(filepath.Dir(filepath.Join(root, name)), 0o755)
		os.WriteFile(filepath.Join(root, name), []byte(data), 0o644)
	}
	img = filepath.Join(dir, medium.ImageGzip)
	if code, _, errs := runMain(t, "pack", "-q", "-o", img, root); code != 0 {
		t.Fatalf("pack: exit %d: %s", code, errs)
	}
	return root, img
}

// jsonOut runs clonecd and decodes its standard output, which must be one
// JSON value and nothing else.
func jsonOut(t *testing.T, wantCode int, v any, args ...string) string {
	t.Helper()
	code, out, errs := runMain(t, args...)
	if code != wantCode {
		t.Fatalf("clonecd %q: exit %d, want %d; stderr %q", args, code, wantCode, errs)
	}
	dec := json.NewDecoder(strings.NewReader(out))
	if err := dec.Decode(v); err != nil {
		t.Fatalf("clonecd %q: stdout is not JSON: %v\n%s", args, err, out)
	}
	if dec.More() {
		t.Fatalf("clonecd %q: more than one JSON value on stdout:\n%s", args, out)
	}
	return errs
}

// TestJSON: with --json standard output is one JSON value, the human
// lines go to standard error, and the exit status still says yes or no.
func TestJSON(t *testing.T) {
	t.Parallel()
	root, img := packedTree(t)
	store := filepath.Join(t.TempDir(), "store")
	lay := filepath.Join(t.TempDir(), "node.sfdisk")
	os.WriteFile(lay, []byte(cliLayout), 0o644)

	var pub struct{ Version, SHA256 string }
	jsonOut(t, 0, &pub, "publish", "--unsigned", "--json", "--dir", store, "--layout", lay, img)
	if pub.Version != "1.0" || len(pub.SHA256) != 64 {
		t.Errorf("publish --json: %+v", pub)
	}
	jsonOut(t, 0, &pub, "publish", "--unsigned", "--json", "--dir", store, "--version", "1.1", img)
	var list []struct {
		Version string
		Current bool
	}
	jsonOut(t, 0, &list, "images", "--json", "--dir", store)
	if len(list) != 2 || !list[1].Current {
		t.Errorf("images --json: %+v", list)
	}
	jsonOut(t, 0, &list, "prune", "-n", "--json", "--keep", "1", "--dir", store)
	if len(list) != 1 || list[0].Version != "1.0" {
		t.Errorf("prune -n --json: %+v", list)
	}

	var rep struct {
		Same        bool
		Differences []struct{ Path, What string }
		Files       int
	}
	jsonOut(t, 0, &rep, "verify", "--json", "-q", img, root)
	if !rep.Same || rep.Files != 2 || rep.Differences == nil {
		t.Errorf("verify --json, same tree: %+v", rep)
	}
	os.WriteFile(filepath.Join(root, "usr/bin/tool"), []byte("EL!"), 0o644)
	errs := jsonOut(t, 1, &rep, "verify", "--json", img, root)
	if rep.Same || len(rep.Differences) != 1 || rep.Differences[0].Path != "/usr/bin/tool" || !strings.Contains(errs, "1 difference") {
		t.Errorf("verify --json, changed tree: %+v, stderr %q", rep, errs)
	}

	// fetch from a real server (the store above) as a node would
	st, err := versions.Open(store)
	if err != nil {
		t.Fatal(err)
	}
	secret, err := st.Secret()
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(netclone.NewServer(st, netclone.ServerOptions{MaxStreams: 2, Secret: secret}))
	defer srv.Close()
	var res struct {
		Version string
		Bytes   int64
		SHA256  string
	}
	out := filepath.Join(t.TempDir(), "fetched.cpio.gz")
	jsonOut(t, 0, &res, "fetch", "--json", "--server", srv.URL, "--dir", store, "-o", out)
	if fi, err := os.Stat(out); err != nil || res.Version != "1.1" || res.Bytes != fi.Size() || res.SHA256 != pub.SHA256 {
		t.Errorf("fetch --json: %+v (%v)", res, err)
	}

	// reclone: the human lines on stderr, the results on stdout
	var results []struct {
		Node, Result, Error string
		OK                  bool
	}
	errs = jsonOut(t, 1, &results, "reclone", "--json", "--dir", store, "--rsh", "/bin/false", "--delay", "0s", "--grace", "0s", "s001")
	if len(results) != 1 || results[0].Node != "s001" || results[0].OK || !strings.Contains(errs, "recloning 1 nodes") {
		t.Errorf("reclone --json: %+v, stderr %q", results, errs)
	}
	// reclone-all (review row R11): the same, for a range of nodes
	results = nil
	errs = jsonOut(t, 1, &results, "reclone-all", "--json", "--dir", store, "--rsh", "/bin/false", "--delay", "0s", "--grace", "0s", "1", "2")
	if len(results) != 2 || results[0].Node != "s001" || results[1].Node != "s002" || !strings.Contains(errs, "recloning 2 nodes") {
		t.Errorf("reclone-all --json: %+v, stderr %q", results, errs)
	}
}

func writeFile(t *testing.T, name, data string) {
	t.Helper()
	if err := os.WriteFile(name, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}
