package netclone

import (
	"bytes"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/clonecd/clonecd/fleet"
	"github.com/clonecd/clonecd/medium"
	"github.com/clonecd/clonecd/nodesync"
	"github.com/clonecd/clonecd/trust"
)

// TestAuth is issue 11's acceptance matrix on a real server over HTTPS:
// every route needs a credential (401 with WWW-Authenticate, on the image
// and the API alike), a node writes only its own state and log (403 for
// another node's), and the admin's routes refuse a node's token.
func TestAuth(t *testing.T) {
	dir, _, _ := store(t, 4096)
	srvTLS, cliTLS := testTLS(t)
	url := serveReal(t, serverWith(t, dir, ServerOptions{MaxStreams: 2, TLS: srvTLS}))
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: cliTLS}}
	wrong := cred("s001")
	wrong.Token = cred("s002").Token
	otherServer, _ := trust.NewSecret()
	foreign, _ := otherServer.Credential(trust.AdminUser)
	const (
		none = iota
		bad
		s001
		s002
		adm
		alien // the admin of another server
	)
	creds := map[int]trust.Credential{bad: wrong, s001: cred("s001"), s002: cred("s002"), adm: cred(trust.AdminUser), alien: foreign}
	state := `{"state":"cloning","step":"setup"}`
	for _, tt := range []struct {
		name, method, path, body string
		who                      int
		code                     int
	}{
		{"image, no credential", "GET", "/" + medium.ImageGzip, "", none, 401},
		{"image by version, no credential", "GET", "/v/1.19/" + medium.ImageGzip, "", none, 401},
		{"ks.cfg etc., no credential", "GET", "/" + medium.Layout, "", none, 401},
		{"the banner, no credential", "GET", "/", "", none, 401},
		{"versions, no credential", "GET", "/api/versions", "", none, 401},
		{"states, no credential", "GET", "/api/nodes", "", none, 401},
		{"stats, no credential", "GET", "/api/stats", "", none, 401},
		{"state write, no credential", "POST", "/api/nodes/s001", state, none, 401},
		{"log write, no credential", "PUT", "/api/nodes/s001/log", "log", none, 401},
		{"assign, no credential", "POST", "/api/nodes/s001/assign", "1.19", none, 401},
		{"blob, no credential", "GET", nodesync.Prefix + strings.Repeat("ab", 32), "", none, 401},
		{"blob batch, no credential", "POST", nodesync.Prefix, strings.Repeat("ab", 32) + "\n", none, 401},
		{"image, wrong token", "GET", "/" + medium.ImageGzip, "", bad, 401},
		{"image, another server's admin", "GET", "/" + medium.ImageGzip, "", alien, 401},
		{"state write, wrong token", "POST", "/api/nodes/s001", state, bad, 401},

		{"image, a node", "GET", "/" + medium.ImageGzip, "", s001, 200},
		{"versions, a node", "GET", "/api/versions", "", s001, 200},
		{"a blob it lacks, a node", "GET", nodesync.Prefix + strings.Repeat("ab", 32), "", s001, 404},
		{"own state", "POST", "/api/nodes/s001", state, s001, 200},
		{"own log", "PUT", "/api/nodes/s001/log", "my log", s001, 204},
		{"own log, read", "GET", "/api/nodes/s001/log", "", s001, 200},
		{"another node's state", "POST", "/api/nodes/s002", `{"state":"done","version":"1.20"}`, s001, 403},
		{"another node's log", "PUT", "/api/nodes/s002/log", "forged", s001, 403},
		{"another node's log, POST", "POST", "/api/nodes/s002/log", "forged", s001, 403},
		{"another node's log, read", "GET", "/api/nodes/s001/log", "", s002, 403},
		{"assign, a node", "POST", "/api/nodes/s001/assign", "1.19", s001, 403},
		{"assign another, a node", "POST", "/api/nodes/s002/assign", "1.19", s001, 403},

		{"assign, the admin", "POST", "/api/nodes/s002/assign", "1.19", adm, 204},
		{"a node's state, the admin", "POST", "/api/nodes/s003", `{"state":"waiting"}`, adm, 200},
		{"a node's log, the admin", "GET", "/api/nodes/s001/log", "", adm, 200},
	} {
		req, _ := http.NewRequest(tt.method, url+tt.path, strings.NewReader(tt.body))
		if c, ok := creds[tt.who]; ok {
			req.SetBasicAuth(c.User, c.Token)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tt.code {
			t.Errorf("%s: %s %s = %d %q; want %d", tt.name, tt.method, tt.path, resp.StatusCode, b, tt.code)
		}
		if tt.code == 401 && (!strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Basic") || resp.Header.Get(ServerHeader) == "") {
			t.Errorf("%s: 401 with WWW-Authenticate %q, %s %q; want Basic, from clonecd", tt.name, resp.Header.Get("WWW-Authenticate"), ServerHeader, resp.Header.Get(ServerHeader))
		}
	}
	// What the refused writes would have done did not happen.
	if st, err := readState(dir, "s002"); err == nil && st.State == fleet.Done {
		t.Errorf("s001 forged s002's state: %+v", st)
	}
	if a := nodesOf(dir).Assigned("s001"); a != "" {
		t.Errorf("a node pinned itself to %s", a)
	}
	if f, err := nodesOf(dir).OpenLog("s002"); err == nil {
		f.Close()
		t.Errorf("s001 wrote s002's log")
	}

	// The clients say what the server refused.
	a := as("s001")
	a.TLS = cliTLS
	src, _ := NewSource(url, "", a)
	if err := src.Assign(t.Context(), "s001", "1.19", false); err == nil || !strings.Contains(err.Error(), "node s001 may not do this") {
		t.Errorf("Assign with a node's token = %v; want the server's 403", err)
	}
	noCred := Access{TLS: cliTLS}
	if _, err := NewMedia(t.Context(), url, MediaOptions{Access: noCred, Retries: 1}); err == nil || !strings.Contains(err.Error(), "authentication required") {
		t.Errorf("NewMedia without a credential = %v; want the server's 401", err)
	}
	// Without the pin, the server's self-signed certificate is refused.
	if _, err := NewMedia(t.Context(), url, MediaOptions{Access: as("s001"), Retries: 1}); err == nil {
		t.Errorf("NewMedia without the server's pin connected")
	}
	_, wrongPin := testTLS(t)
	a.TLS = wrongPin
	if _, err := NewMedia(t.Context(), url, MediaOptions{Access: a, Retries: 1}); err == nil || !strings.Contains(err.Error(), "not the pinned one") {
		t.Errorf("NewMedia with another server's pin = %v; want the pin refused", err)
	}
}

// TestNodeIsItsCredential: the server knows a node by its credential, not
// by the X-Clonecd-Node it sends: node s002 naming itself s001 gets the
// current version, not s001's canary; the admin may still name a node
// (fetch --node on the master).
func TestNodeIsItsCredential(t *testing.T) {
	dir, v19, v20 := store(t, 4096)
	url := serveReal(t, newServer(t, dir, 1))
	if err := nodesOf(dir).Assign("s001", "1.19"); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name   string
		a      Access
		header string
		want   []byte
	}{
		{"s002 naming itself s001", as("s002"), "s001", v20},
		{"s001", as("s001"), "", v19},
		{"the admin naming s001", admin(), "s001", v19},
		{"the admin", admin(), "", v20},
	} {
		req, _ := http.NewRequest(http.MethodGet, url+"/"+medium.ImageGzip, nil)
		if tt.header != "" {
			req.Header.Set(NodeHeader, tt.header)
		}
		tt.a.authorize(req)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if !bytes.Equal(b, tt.want) {
			t.Errorf("%s: got %d bytes of the wrong version (%s)", tt.name, len(b), resp.Header.Get(VersionHeader))
		}
	}
}
