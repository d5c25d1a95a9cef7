package browser

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"os"
	"testing"

	"github.com/clonecd/clonecd/internal/testenv"
)

func TestMain(m *testing.M) { os.Exit(testenv.GuardEtc(m)) }

// TestScreenshot: Screenshot opens an HTTPS page with a self-signed
// certificate as a user (HTTP Basic, as clonecd serve wants), waits for
// the selector a page's script shows, then saves a PNG of the page in the
// artifacts directory.
func TestScreenshot(t *testing.T) {
	ts := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if u, p, ok := r.BasicAuth(); !ok || u != "admin" || p != "tok" {
			w.Header().Set("WWW-Authenticate", `Basic realm="t"`)
			http.Error(w, "credential needed", http.StatusUnauthorized)
			return
		}
		w.Header().Set("Content-Type", "text/html")
		w.Write([]byte(`<!doctype html><title>t</title><p id="late" hidden>ready</p>
<script>setTimeout(() => { document.getElementById('late').hidden = false }, 300)</script>`))
	}))
	defer ts.Close()
	t.Setenv("CLONECD_ARTIFACTS", t.TempDir())
	p, err := Screenshot(t, ts.URL, "browser-test.png", "#late", "admin", "tok")
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(b, []byte("\x89PNG\r\n\x1a\n")) || len(b) < 1000 {
		t.Fatalf("%s: %d bytes, not a PNG", p, len(b))
	}
	if got := ArtifactsDir(t); got != os.Getenv("CLONECD_ARTIFACTS") {
		t.Errorf("ArtifactsDir = %s; want $CLONECD_ARTIFACTS", got)
	}
}
