package trust

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

func TestSecretTokens(t *testing.T) {
	dir := t.TempDir()
	s, err := LoadOrCreateSecret(dir)
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(filepath.Join(dir, SecretFile))
	if err != nil || st.Mode().Perm() != 0o600 || st.Size() != 65 {
		t.Errorf("secret file: %v, %v; want 65 bytes, mode 0600", st, err)
	}
	again, err := LoadOrCreateSecret(dir) // a restart
	if err != nil {
		t.Fatal(err)
	}
	other, _ := LoadOrCreateSecret(t.TempDir())
	tok := func(s *Secret, n string) string {
		tk, err := s.NodeToken(n)
		if err != nil {
			t.Fatalf("NodeToken(%q) = %v", n, err)
		}
		if len(tk) != 43 || strings.Trim(tk, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") != "" {
			t.Errorf("NodeToken(%q) = %q; want 43 base64url characters", n, tk)
		}
		return tk
	}
	seen := map[string]string{}
	for _, c := range []struct{ what, token string }{
		{"s001", tok(s, "s001")},
		{"s002", tok(s, "s002")},
		{"S001", tok(s, "S001")},
		{"admin", s.AdminToken()},
		{"s001 under another secret", tok(other, "s001")},
	} {
		if prev, dup := seen[c.token]; dup {
			t.Errorf("the token of %s is the token of %s", c.what, prev)
		}
		seen[c.token] = c.what
	}
	if tok(again, "s001") != tok(s, "s001") || again.AdminToken() != s.AdminToken() {
		t.Errorf("tokens changed across a restart")
	}
	if c, err := Token(dir, "s001"); err != nil || c.String() != "s001:"+tok(s, "s001") {
		t.Errorf("Token(dir, s001) = %v, %v", c, err)
	}
	if c, err := Token(dir, AdminUser); err != nil || c.Token != s.AdminToken() {
		t.Errorf("Token(dir, admin) = %v, %v", c, err)
	}

	for _, bad := range []string{"", "admin", "-oProxyCommand", ".hidden", "a b", "s001\x1b[31m", strings.Repeat("x", 129)} {
		if _, err := s.NodeToken(bad); err == nil {
			t.Errorf("NodeToken(%q) succeeded; want a refusal", bad)
		}
	}

	// A secret others can read, and a damaged one, are refused.
	for _, c := range []struct {
		name, data string
		mode       os.FileMode
		want       string
	}{
		{"readable", strings.Repeat("ab", 32) + "\n", 0o644, "chmod 600"},
		{"short", "abcd\n", 0o600, "not a clonecd secret"},
		{"not hex", strings.Repeat("zz", 32) + "\n", 0o600, "not a clonecd secret"},
	} {
		d := t.TempDir()
		f := filepath.Join(d, SecretFile)
		os.WriteFile(f, []byte(c.data), c.mode)
		os.Chmod(f, c.mode)
		if _, err := LoadOrCreateSecret(d); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("LoadOrCreateSecret(%s) = %v; want an error saying %q", c.name, err, c.want)
		}
	}
}

// TestSecretConcurrentStart: servers starting at once share one secret.
func TestSecretConcurrentStart(t *testing.T) {
	dir := t.TempDir()
	tokens := make([]string, 8)
	var wg sync.WaitGroup
	for i := range tokens {
		wg.Go(func() {
			s, err := LoadOrCreateSecret(dir)
			if err != nil {
				t.Error(err)
				return
			}
			tokens[i] = s.AdminToken()
		})
	}
	wg.Wait()
	for i, tk := range tokens {
		if tk != tokens[0] {
			t.Errorf("start %d got another secret", i)
		}
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Errorf("the store holds %d files after the starts; want the secret alone", len(ents))
	}
}

// authServer serves the routes of a clonecd server behind the
// middlewares: the image to readers, a node's state to itself, assign to
// the admin. Handlers answer "ok PRINCIPAL".
func authServer(t *testing.T, a *Auth) *httptest.Server {
	mux := http.NewServeMux()
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "ok %s", PrincipalOf(r.Context()))
	})
	node := func(r *http.Request) string { return r.PathValue("node") }
	mux.Handle("GET /node.cpio.gz", a.RequireReader(ok))
	mux.Handle("POST /api/nodes/{node}", a.RequireNode(node, ok))
	mux.Handle("PUT /api/nodes/{node}/log", a.RequireNode(node, ok))
	mux.Handle("POST /api/nodes/{node}/assign", a.RequireAdmin(ok))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

// TestAuthMatrix: 401 without a valid credential, 403 for another node
// or a node doing an admin's job, 200 otherwise; real HTTP requests.
func TestAuthMatrix(t *testing.T) {
	s, _ := LoadOrCreateSecret(t.TempDir())
	other, _ := LoadOrCreateSecret(t.TempDir())
	srv := authServer(t, NewAuth(s))
	s1, _ := s.Credential("s001")
	s2, _ := s.Credential("s002")
	admin, _ := s.Credential(AdminUser)
	forged, _ := other.Credential("s001")
	basic := func(c Credential) func(*http.Request) {
		return func(r *http.Request) { r.SetBasicAuth(c.User, c.Token) }
	}
	header := func(v string) func(*http.Request) { return func(r *http.Request) { r.Header.Set("Authorization", v) } }
	none := func(*http.Request) {}
	const (
		img    = "GET /node.cpio.gz"
		state1 = "POST /api/nodes/s001"
		log1   = "PUT /api/nodes/s001/log"
		assign = "POST /api/nodes/s001/assign"
	)
	for _, c := range []struct {
		who  string
		auth func(*http.Request)
		req  string
		code int
		body string
	}{
		{"nobody", none, img, 401, ""},
		{"nobody", none, state1, 401, ""},
		{"nobody", none, assign, 401, ""},
		{"wrong token", basic(Credential{"s001", s2.Token}), img, 401, ""},
		{"another server's token", basic(forged), img, 401, ""},
		{"admin with a node's token", basic(Credential{AdminUser, s1.Token}), assign, 401, ""},
		{"unknown scheme", header("Digest " + s1.String()), img, 401, ""},
		{"bearer without name", header("Bearer " + s1.Token), img, 401, ""},
		{"node name with escapes", basic(Credential{"s\x1b[31m", s1.Token}), img, 401, ""},
		{"s001", basic(s1), img, 200, "ok node s001"},
		{"s001", basic(s1), state1, 200, "ok node s001"},
		{"s001", basic(s1), log1, 200, "ok node s001"},
		{"s001 bearer", header("Bearer " + s1.String()), state1, 200, "ok node s001"},
		{"s001 bearer, lower case", header("bearer " + s1.String()), img, 200, "ok node s001"},
		{"s002", basic(s2), img, 200, "ok node s002"},
		{"s002", basic(s2), state1, 403, ""},
		{"s002", basic(s2), log1, 403, ""},
		{"s001", basic(s1), assign, 403, ""},
		{"admin", basic(admin), img, 200, "ok admin"},
		{"admin", basic(admin), state1, 200, "ok admin"},
		{"admin", basic(admin), assign, 200, "ok admin"},
		{"admin bearer", header("Bearer " + admin.String()), assign, 200, "ok admin"},
	} {
		method, path, _ := strings.Cut(c.req, " ")
		r, _ := http.NewRequest(method, srv.URL+path, strings.NewReader("{}"))
		c.auth(r)
		resp, err := http.DefaultClient.Do(r)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != c.code || c.code == 200 && string(body) != c.body {
			t.Errorf("%s as %s = %d %q; want %d %q", c.req, c.who, resp.StatusCode, body, c.code, c.body)
		}
		if wa := resp.Header.Get("WWW-Authenticate"); (c.code == 401) != (wa != "") {
			t.Errorf("%s as %s: WWW-Authenticate %q with %d", c.req, c.who, wa, resp.StatusCode)
		}
	}
}

// TestCredentialTransport: the client side presents the credential to its
// server only.
func TestCredentialTransport(t *testing.T) {
	s, _ := LoadOrCreateSecret(t.TempDir())
	srv := authServer(t, NewAuth(s))
	elsewhere := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "authorization %q", r.Header.Get("Authorization"))
	}))
	defer elsewhere.Close()
	c, _ := s.Credential("s001")
	host := strings.TrimPrefix(srv.URL, "http://")
	client := &http.Client{Transport: c.Transport(nil, host)}
	for _, x := range []struct{ url, want string }{
		{srv.URL + "/node.cpio.gz", "ok node s001"},
		{elsewhere.URL, `authorization ""`},
	} {
		resp, err := client.Get(x.url)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(b) != x.want {
			t.Errorf("GET %s = %q; want %q", x.url, b, x.want)
		}
	}

	file := filepath.Join(t.TempDir(), "credential")
	txt, _ := c.MarshalText()
	os.WriteFile(file, txt, 0o600)
	if got, err := LoadCredential(file); err != nil || got != c {
		t.Errorf("LoadCredential = %v, %v; want %v", got, err, c)
	}
	os.Chmod(file, 0o644)
	if _, err := LoadCredential(file); err == nil {
		t.Errorf("LoadCredential(0644) succeeded")
	}
}
