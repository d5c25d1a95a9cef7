package cli

import (
	"crypto/sha256"
	"encoding/hex"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/clonecd/clonecd/medium"
	"github.com/clonecd/clonecd/netclone"
	"github.com/clonecd/clonecd/versions"
)

// flatServer serves a flat image directory holding image, with sum as its
// node.cpio.gz.sha256, over plain HTTP with the secret in the directory
// (as serve --plain-http --dir DIR would); it returns the URL and the
// directory, whose secret fetch --dir reads.
func flatServer(t *testing.T, image []byte, sum string) (url, dir string) {
	t.Helper()
	dir = t.TempDir()
	for name, data := range map[string]string{medium.ImageGzip: string(image), medium.SumName(medium.ImageGzip): sum + "  " + medium.ImageGzip + "\n",
		medium.Version: "1.0\n", medium.Layout: cliLayout} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	store, err := versions.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	secret, err := store.Secret()
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(netclone.NewServer(store, netclone.ServerOptions{MaxStreams: 2, Secret: secret}))
	t.Cleanup(srv.Close)
	return srv.URL, dir
}

// TestFetchReplacesOnlyWhenVerified: fetch -o FILE writes beside FILE and
// renames only after the sha256 matched; a failed fetch leaves FILE as it
// was and nothing beside it.
func TestFetchReplacesOnlyWhenVerified(t *testing.T) {
	t.Parallel()
	image := []byte(strings.Repeat("clonecd image bytes ", 5000))
	good := sha256.Sum256(image)
	dir := t.TempDir()
	out := filepath.Join(dir, medium.ImageGzip)
	os.WriteFile(out, []byte("the image that was here"), 0o644)

	bad, badDir := flatServer(t, image, strings.Repeat("0", 64))
	code, _, errs := runMain(t, "fetch", "--server", bad, "--dir", badDir, "--attempts", "2", "-q", "-o", out)
	if code != 2 || !strings.Contains(errs, "sha256") {
		t.Errorf("fetch from a server with a wrong sum: exit %d, %q", code, errs)
	}
	if b, _ := os.ReadFile(out); string(b) != "the image that was here" {
		t.Errorf("a failed fetch changed %s: %.40q", out, b)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Errorf("a failed fetch left files beside %s: %v", out, ents)
	}

	ok, okDir := flatServer(t, image, hex.EncodeToString(good[:]))
	if code, _, errs := runMain(t, "fetch", "--server", ok, "-q", "-o", out); code != 2 || !strings.Contains(errs, "authentication required") {
		t.Errorf("fetch without a credential: exit %d, %q; want 2 and the server's 401", code, errs)
	}
	if code, _, errs := runMain(t, "fetch", "--server", ok, "--dir", okDir, "-q", "-o", out); code != 0 {
		t.Fatalf("fetch: exit %d: %s", code, errs)
	}
	if b, _ := os.ReadFile(out); sha256.Sum256(b) != good {
		t.Errorf("fetch did not put the verified image in place")
	}
	// a device is written in place
	if code, _, errs := runMain(t, "fetch", "--server", ok, "--dir", okDir, "-q", "-o", os.DevNull); code != 0 {
		t.Errorf("fetch -o /dev/null: exit %d: %s", code, errs)
	}
}

// TestServerFromEnv: $CLONECD_SERVER is checked as --server is (not
// parallel: it sets the environment).
func TestServerFromEnv(t *testing.T) {
	t.Setenv("CLONECD_SERVER", "garbage")
	for _, args := range [][]string{{"fetch"}, {"status"}, {"reclone", "s001"}, {"reclone-all", "1", "2"}} {
		if code, out, errs := runMain(t, args...); code != 2 || out != "" || !strings.Contains(errs, `CLONECD_SERVER="garbage": want an http://`) {
			t.Errorf("CLONECD_SERVER=garbage clonecd %q: exit %d %q", args, code, errs)
		}
	}
}
