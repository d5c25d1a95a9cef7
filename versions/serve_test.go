package versions_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/clonecd/clonecd/internal/testimage"
	"github.com/clonecd/clonecd/netclone"
	"github.com/clonecd/clonecd/trust"
	"github.com/clonecd/clonecd/versions"
)

// TestServedVersion runs the real image server (netclone.Server) on a
// store and checks after each publish, promote, rollback and prune that it
// serves the current version's files, and a given version under /v/V/.
func TestServedVersion(t *testing.T) {
	src := t.TempDir()
	s, err := versions.Open(filepath.Join(t.TempDir(), "clone_image"))
	if err != nil {
		t.Fatal(err)
	}
	secret, err := s.Secret()
	if err != nil {
		t.Fatal(err)
	}
	admin, _ := secret.Credential(trust.AdminUser)
	srv := httptest.NewServer(netclone.NewServer(s, netclone.ServerOptions{MaxStreams: 2, Secret: secret}))
	defer srv.Close()
	get := func(path string) (string, string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, srv.URL+path, nil)
		req.SetBasicAuth(admin.User, admin.Token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 {
			return "", resp.Status
		}
		return string(b), resp.Header.Get(netclone.VersionHeader)
	}
	lay := filepath.Join(src, "node.sfdisk")
	os.WriteFile(lay, []byte("label: dos\n\n/dev/sda1 : start=2048, size=204800, type=83\n"), 0o644)
	images := map[string][]byte{}
	publish := func(v string) func() error {
		return func() error {
			p := testimage.Write(t, src, "image-"+v)
			images[v], _ = os.ReadFile(p)
			_, err := s.Publish(p, versions.PublishOptions{Version: v, Layout: lay})
			return err
		}
	}
	steps := []struct {
		name    string
		do      func() error
		current string
	}{
		{"publish 1.0", publish("1.0"), "1.0"},
		{"publish 1.1", publish("1.1"), "1.1"},
		{"publish 1.2", publish("1.2"), "1.2"},
		{"promote 1.0", func() error { _, err := s.Promote("1.0", false); return err }, "1.0"},
		{"promote 1.2", func() error { _, err := s.Promote("1.2", false); return err }, "1.2"},
		{"rollback", func() error { _, err := s.Rollback(""); return err }, "1.0"},
		{"prune 1", func() error { _, err := s.Prune(1); return err }, "1.0"},
	}
	for _, st := range steps {
		if err := st.do(); err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		if body, hdr := get("/CLONE_CD_VERSION"); strings.TrimSpace(body) != st.current || hdr != st.current {
			t.Fatalf("%s: server says CLONE_CD_VERSION %q (header %q), want %s", st.name, body, hdr, st.current)
		}
		if body, _ := get("/node.cpio.gz"); body != string(images[st.current]) {
			t.Fatalf("%s: server does not serve %s's image", st.name, st.current)
		}
		sum, _ := get("/node.cpio.gz.sha256")
		cur, _ := s.Current()
		if !strings.HasPrefix(sum, cur.SHA256+"  node.cpio.gz") {
			t.Fatalf("%s: served sha256 %q, store says %s", st.name, sum, cur.SHA256)
		}
		// Every version still in the store is served by number (canaries).
		list, _ := s.List()
		for _, e := range list {
			if body, hdr := get("/v/" + e.Version + "/node.cpio.gz"); body != string(images[e.Version]) || hdr != e.Version {
				t.Fatalf("%s: /v/%s/node.cpio.gz wrong (header %q)", st.name, e.Version, hdr)
			}
		}
	}
	if _, status := get("/v/1.1/node.cpio.gz"); !strings.HasPrefix(status, "404") {
		t.Errorf("pruned version still served: %s", status)
	}
}
