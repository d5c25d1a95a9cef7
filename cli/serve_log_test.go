package cli

import (
	"context"
	"encoding/json"
	"net/http"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/clonecd/clonecd/internal/testenv"
	"github.com/clonecd/clonecd/internal/testimage"
	"github.com/clonecd/clonecd/trust"
)

// TestServeLogFormat: serve --log-format json logs one JSON object per
// request and event; an unknown format is a usage error; a server with
// the fleet page's event stream open still stops at once.
func TestServeLogFormat(t *testing.T) {
	t.Parallel()
	if code, _, errs := runMain(t, "serve", "--log-format", "xml"); code != exitErr || !strings.Contains(errs, "want one of: text, json") {
		t.Errorf("serve --log-format xml: exit %d, %q", code, errs)
	}
	store := filepath.Join(t.TempDir(), "clone_image")
	publishStore(t, store, testimage.Write(t, t.TempDir(), "log"))
	var out, errb testenv.SyncBuffer
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	f := &serveFlags{dir: store, listen: "127.0.0.1:0", maxStreams: 2, logFormat: "json"}
	go func() { done <- runServe(ctx, Output{Stdout: &out, Stderr: &errb}, f, nil) }()
	re := regexp.MustCompile(`on (https://127\.0\.0\.1:[0-9]+),(?s:.*)TLS pin (sha256//\S+)`)
	var url, pin string
	for deadline := time.Now().Add(10 * time.Second); url == "" && time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if m := re.FindStringSubmatch(out.String()); m != nil {
			url, pin = m[1], m[2]
		}
	}
	if url == "" {
		t.Fatalf("serve printed no address: %q %q", out.String(), errb.String())
	}
	cfg, err := trust.ClientTLSConfig(pin, "")
	if err != nil {
		t.Fatal(err)
	}
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: cfg}}
	do := func(method, path, who, body string) *http.Response {
		_, token, _ := runMain(t, "token", "--dir", store, who)
		c, err := trust.ParseCredential(token)
		if err != nil {
			t.Fatalf("clonecd token %s: %q: %v", who, token, err)
		}
		req, _ := http.NewRequest(method, url+path, strings.NewReader(body))
		req.SetBasicAuth(c.User, c.Token)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	do(http.MethodPost, "/api/nodes/s001", "s001", `{"state":"cloning","step":"unpack"}`).Body.Close()
	events := do(http.MethodGet, "/api/events", "admin", "")
	defer events.Body.Close()
	stop := time.Now()
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("serve: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("serve did not stop")
	}
	if d := time.Since(stop); d > 3*time.Second {
		t.Errorf("serve took %s to stop with an event stream open", d)
	}
	seen := map[string]bool{}
	for _, line := range strings.Split(strings.TrimSpace(errb.String()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("log line %q is not JSON", line)
		}
		seen[m["msg"].(string)] = true
		if m["msg"] == "request" && m["path"] == "/api/nodes/s001" && (m["node"] != "s001" || m["status"] != 200.0 || m["method"] != "POST") {
			t.Errorf("request line %v", m)
		}
	}
	if !seen["request"] || !seen["node"] {
		t.Errorf("no request or node line in %q", errb.String())
	}
}
