package cli

import (
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/clonecd/clonecd/internal/testenv"
	"github.com/clonecd/clonecd/trust"
)

// TestServeListen: serve listens on this machine only unless told; every
// interface must be written out (0.0.0.0:PORT), ":PORT" is refused, and
// the server answers on the address it prints.
func TestServeListen(t *testing.T) {
	t.Parallel()
	if def := serveCmd(Output{}).Flags().Lookup("listen").DefValue; def != "127.0.0.1:8080" {
		t.Errorf("serve --listen defaults to %q, want 127.0.0.1:8080", def)
	}
	for _, args := range [][]string{{"serve", "--listen", "0.0.0.0:8080"}, {"serve", "--listen", "[::]:8080"}, {"serve", "--listen", "10.0.0.1:8080"}} {
		if err := checkCommandLine(args); err != nil {
			t.Errorf("clonecd %q: %v", args, err)
		}
	}
	for _, args := range [][]string{{"serve", "--listen", ":8080"}, {"serve", "--listen", "8080"}} {
		if err := checkCommandLine(args); err == nil {
			t.Errorf("clonecd %q accepted", args)
		}
	}

	_, img := packedTree(t)
	store := t.TempDir()
	publishStore(t, store, img)
	_, token, _ := runMain(t, "token", "--dir", store, "admin")
	admin, err := trust.ParseCredential(token)
	if err != nil {
		t.Fatalf("clonecd token admin: %q: %v", token, err)
	}
	for _, tt := range []struct {
		name  string
		plain bool
	}{{"https", false}, {"plain http", true}} {
		t.Run(tt.name, func(t *testing.T) {
			var out, errb testenv.SyncBuffer
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			done := make(chan error, 1)
			f := &serveFlags{dir: store, listen: "127.0.0.1:0", maxStreams: 2, quiet: true, plainHTTP: tt.plain}
			go func() { done <- runServe(ctx, Output{Stdout: &out, Stderr: &errb}, f, nil) }()
			re := regexp.MustCompile(`on (https?://127\.0\.0\.1:[0-9]+),(?s:.*)credential`)
			var url string
			for deadline := time.Now().Add(10 * time.Second); url == "" && time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
				if m := re.FindStringSubmatch(out.String()); m != nil {
					url = m[1]
				}
			}
			if url == "" {
				t.Fatalf("serve printed no address: %q %q", out.String(), errb.String())
			}
			client := http.DefaultClient
			if !tt.plain {
				m := regexp.MustCompile(`TLS pin (sha256//\S+)`).FindStringSubmatch(out.String())
				if m == nil || !strings.HasPrefix(url, "https://") {
					t.Fatalf("serve over HTTPS printed %q; want an https URL and its TLS pin", out.String())
				}
				if pin, err := trust.ReadServerPin(store); err != nil || pin != m[1] {
					t.Errorf("serve printed pin %s; the store's certificate has %s (%v)", m[1], pin, err)
				}
				cfg, err := trust.ClientTLSConfig(m[1], "")
				if err != nil {
					t.Fatal(err)
				}
				client = &http.Client{Transport: &http.Transport{TLSClientConfig: cfg}}
				if resp, err := http.Get("http" + strings.TrimPrefix(url, "https") + "/CLONE_CD_VERSION"); err == nil {
					if resp.StatusCode == 200 {
						t.Errorf("plain HTTP to the HTTPS server: %s", resp.Status)
					}
					resp.Body.Close()
				}
			} else if !strings.HasPrefix(url, "http://") || !strings.Contains(errb.String(), "UNENCRYPTED") {
				t.Errorf("serve --plain-http: URL %s, stderr %q; want http:// and a loud warning", url, errb.String())
			}
			get := func(c *trust.Credential) (int, string, string) {
				req, _ := http.NewRequest(http.MethodGet, url+"/CLONE_CD_VERSION", nil)
				if c != nil {
					req.SetBasicAuth(c.User, c.Token)
				}
				resp, err := client.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				defer resp.Body.Close()
				b, _ := io.ReadAll(resp.Body)
				return resp.StatusCode, string(b), resp.Header.Get("WWW-Authenticate")
			}
			if code, _, www := get(nil); code != http.StatusUnauthorized || !strings.Contains(www, "Basic") {
				t.Errorf("GET without a credential = %d, WWW-Authenticate %q; want 401 asking for Basic", code, www)
			}
			if code, body, _ := get(&admin); code != 200 || strings.TrimSpace(body) != "1.0" {
				t.Errorf("GET /CLONE_CD_VERSION as the admin = %d %q", code, body)
			}
			cancel()
			if err := <-done; err != nil {
				t.Errorf("serve: %v", err)
			}
			if strings.Contains(errb.String(), "every interface") {
				t.Errorf("serve on 127.0.0.1 warned: %q", errb.String())
			}
			if !strings.Contains(out.String(), "stopped; 0 image streams served") {
				t.Errorf("serve did not stop cleanly: %q", out.String())
			}
		})
	}
	for _, name := range []string{trust.SecretFile, trust.CertFile} {
		if fi, err := os.Stat(filepath.Join(store, name)); err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: %v, %v; want mode 0600", name, fi, err)
		}
	}
}
