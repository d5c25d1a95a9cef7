package netboot

import (
	stdctx "context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/clonecd/clonecd/internal/testsign"
	"github.com/clonecd/clonecd/medium"
	"github.com/clonecd/clonecd/netclone"
	"github.com/clonecd/clonecd/trust"
)

// TestNamesMedia: the network cloner names itself from the server's nodes
// table only as the master signed it when it trusts a key: a forged
// table, or a version without a valid signature, is not used (the node
// takes node-MAC, and the clone's setup refuses the version under that
// name); without a key the table is used as served.
func TestNamesMedia(t *testing.T) {
	keyFile := filepath.Join(t.TempDir(), "clonecd.key")
	key, err := trust.GenerateKey(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	trustDir := t.TempDir()
	pub, _ := os.ReadFile(keyFile + trust.PubSuffix)
	os.WriteFile(filepath.Join(trustDir, key.Public().FileName()), pub, 0o644)
	mac, _ := net.ParseMAC("52:54:00:00:00:01")
	for _, tt := range []struct {
		name     string
		trustDir string
		change   func(v string)
		want     string // the name chosen
	}{
		{"no key", filepath.Join(t.TempDir(), "none"), nil, "s001"},
		{"signed", trustDir, nil, "s001"},
		{"no key, forged table", filepath.Join(t.TempDir(), "none"), func(v string) {
			os.WriteFile(filepath.Join(v, medium.Nodes), []byte("52:54:00:00:00:01 s002\n"), 0o644)
		}, "s002"},
		{"forged table", trustDir, func(v string) {
			os.WriteFile(filepath.Join(v, medium.Nodes), []byte("52:54:00:00:00:01 s002\n"), 0o644)
		}, "node-525400000001"},
		{"signature removed", trustDir, func(v string) { os.Remove(filepath.Join(v, medium.SignatureFile)) }, "node-525400000001"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			v := filepath.Join(dir, "v", "1.0")
			os.MkdirAll(v, 0o755)
			for name, c := range map[string]string{medium.Version: "1.0\n", medium.Nodes: "52:54:00:00:00:01 s001\n", medium.Layout: "label: dos\n"} {
				os.WriteFile(filepath.Join(v, name), []byte(c), 0o644)
			}
			os.WriteFile(filepath.Join(dir, medium.Version), []byte("1.0\n"), 0o644)
			testsign.Dir(t, v, "1.0", key)
			if tt.change != nil {
				tt.change(v)
			}
			fsrv := http.FileServer(http.Dir(dir))
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set(netclone.ServerHeader, "clonecd")
				fsrv.ServeHTTP(w, r)
			}))
			defer srv.Close()
			m, err := netclone.NewMedia(stdctx.Background(), srv.URL, netclone.MediaOptions{})
			if err != nil {
				t.Fatal(err)
			}
			var log strings.Builder
			logf := func(f string, a ...any) { fmt.Fprintf(&log, f+"\n", a...) }
			name, why, err := NodeName(map[string]string{}, &Link{MAC: mac}, namesMedia(m, tt.trustDir, logf))
			t.Logf("%s (%s) %v\n%s", name, why, err, log.String())
			if err != nil || name != tt.want {
				t.Errorf("NodeName = %q (%s), %v; want %q", name, why, err, tt.want)
			}
		})
	}
}
