package trust

import (
	"bytes"
	"encoding/pem"
	"errors"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/clonecd/clonecd/internal/testenv"
)

// tlsServer serves "hello" over HTTPS on loopback with the certificate of
// dir (made on first use) behind Auth, and counts the requests that
// reached the handler.
func tlsServer(t *testing.T, dir string, s *Secret) (*httptest.Server, string, *atomic.Int32) {
	t.Helper()
	cert, pin, err := LoadOrCreateServerCert(dir, []string{"127.0.0.1", "localhost"})
	if err != nil {
		t.Fatal(err)
	}
	var hits atomic.Int32
	srv := httptest.NewUnstartedServer(NewAuth(s).RequireReader(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		io.WriteString(w, "hello")
	})))
	srv.TLS = ServerTLSConfig(cert)
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv, pin, &hits
}

// TestPinnedTLS: the pinned key connects; another key, a plain HTTP
// client and a client that trusts the system's roots are refused.
func TestPinnedTLS(t *testing.T) {
	s, _ := LoadOrCreateSecret(t.TempDir())
	srv, pin, hits := tlsServer(t, t.TempDir(), s)
	_, otherPin, err := LoadOrCreateServerCert(t.TempDir(), []string{"127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	if pin == otherPin {
		t.Fatal("two certificates made with one pin")
	}
	cred, _ := s.Credential("s001")
	host := strings.TrimPrefix(srv.URL, "https://")
	for _, c := range []struct {
		name string
		pin  string
		url  string
		err  string // "": 200 "hello"
	}{
		{"right pin", pin, srv.URL, ""},
		{"right pin among two", otherPin + ";" + pin, srv.URL, ""},
		{"wrong pin", otherPin, srv.URL, "is not the pinned one"},
		{"system roots", "", srv.URL, "certificate"},
		{"plain HTTP to HTTPS", pin, "http://" + host, "400"},
	} {
		cfg, err := ClientTLSConfig(c.pin, "")
		if err != nil {
			t.Fatal(err)
		}
		before := hits.Load()
		client := &http.Client{Transport: cred.Transport(&http.Transport{TLSClientConfig: cfg}, host)}
		resp, err := client.Get(c.url + "/node.cpio.gz")
		var body []byte
		if err == nil {
			body, _ = io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				err = &statusError{resp.Status}
			}
		}
		if c.err == "" {
			if err != nil || string(body) != "hello" {
				t.Errorf("GET with %s = %q, %v; want hello", c.name, body, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), c.err) {
			t.Errorf("GET with %s = %q, %v; want an error saying %q", c.name, body, err, c.err)
		}
		if hits.Load() != before {
			t.Errorf("GET with %s reached the handler", c.name)
		}
	}
}

type statusError struct{ status string }

func (e *statusError) Error() string { return "status " + e.status }

// TestServerCertReissue: a restart keeps the certificate; a new address
// is added to it with the same key, so the pin stays.
func TestServerCertReissue(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, CertFile)
	pin, err := ServerPin(dir) // build, before the server's first start
	if err != nil {
		t.Fatal(err)
	}
	_, pin1, err := LoadOrCreateServerCert(dir, []string{"10.0.0.1"})
	if err != nil || pin1 != pin {
		t.Fatalf("first start: pin %s, %v; want build's %s", pin1, err, pin)
	}
	st, _ := os.Stat(file)
	if st.Mode().Perm() != 0o600 {
		t.Errorf("%s: mode %04o; want 0600", CertFile, st.Mode().Perm())
	}
	first, _ := os.ReadFile(file)
	_, pin2, err := LoadOrCreateServerCert(dir, []string{"10.0.0.1"})
	if now, _ := os.ReadFile(file); err != nil || pin2 != pin || !bytes.Equal(now, first) {
		t.Errorf("restart: pin %s, %v, file changed %v; want the same pin and file", pin2, err, !bytes.Equal(now, first))
	}
	c, pin3, err := LoadOrCreateServerCert(dir, []string{"master.cluster", "10.0.0.2", "10.0.0.1"})
	if err != nil || pin3 != pin {
		t.Errorf("new hosts: pin %s, %v; want %s", pin3, err, pin)
	}
	if got := strings.Join(certHosts(c.Leaf), " "); got != "master.cluster 10.0.0.1 10.0.0.2" {
		t.Errorf("re-issued certificate is for %q", got)
	}
	if _, _, err := LoadOrCreateServerCert(dir, []string{"-bad"}); err == nil {
		t.Errorf("LoadOrCreateServerCert(-bad) succeeded")
	}
}

// TestCurlPin: curl checks our pin the same way (--pinnedpubkey), takes
// our certificate as a CA, and sends our credential as -u.
func TestCurlPin(t *testing.T) {
	testenv.NeedTools(t, "curl")
	s, _ := LoadOrCreateSecret(t.TempDir())
	dir := t.TempDir()
	srv, pin, _ := tlsServer(t, dir, s)
	_, otherPin, _ := LoadOrCreateServerCert(t.TempDir(), nil)
	cred, _ := s.Credential("s001")
	pemFile, _ := os.ReadFile(filepath.Join(dir, CertFile))
	var ca []byte
	for b, rest := pem.Decode(pemFile); b != nil; b, rest = pem.Decode(rest) {
		if b.Type == "CERTIFICATE" {
			ca = pem.EncodeToMemory(b)
		}
	}
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	os.WriteFile(caFile, ca, 0o644)
	url := srv.URL + "/node.cpio.gz"
	for _, c := range []struct {
		name string
		args []string
		ok   bool
	}{
		{"pinned", []string{"-k", "--pinnedpubkey", pin, "-u", cred.String(), url}, true},
		{"credential in the URL", []string{"-k", "--pinnedpubkey", pin, strings.Replace(url, "https://", "https://"+cred.String()+"@", 1)}, true},
		{"CA file", []string{"--cacert", caFile, "-u", cred.String(), url}, true},
		{"wrong pin", []string{"-k", "--pinnedpubkey", otherPin, "-u", cred.String(), url}, false},
		{"no credential", []string{"-k", "--pinnedpubkey", pin, url}, false},
	} {
		out, err := run("", "curl", append([]string{"-sS", "--fail"}, c.args...)...)
		if c.ok != (err == nil) || c.ok && out != "hello" {
			t.Errorf("curl %s = %q, %v; want ok %v", c.name, out, err, c.ok)
		}
	}

	// And our client takes the same CA file.
	cfg, err := ClientTLSConfig("", caFile)
	if err != nil {
		t.Fatal(err)
	}
	client := &http.Client{Transport: cred.Transport(&http.Transport{TLSClientConfig: cfg}, strings.TrimPrefix(srv.URL, "https://"))}
	resp, err := client.Get(url)
	if err != nil {
		t.Fatalf("GET with the CA file: %v", err)
	}
	resp.Body.Close()
	// A pin with the CA must hold as well.
	cfg, _ = ClientTLSConfig(otherPin, caFile)
	if _, err := (&http.Client{Transport: &http.Transport{TLSClientConfig: cfg}}).Get(url); err == nil || !strings.Contains(err.Error(), "not the pinned one") {
		t.Errorf("GET with the CA and a wrong pin = %v; want a refusal", err)
	}
}

func TestParsePins(t *testing.T) {
	good := "sha256//" + strings.Repeat("A", 43) + "="
	for _, c := range []struct {
		in string
		n  int // 0: error
	}{
		{good, 1},
		{good + ";" + good, 2},
		{" " + good + " ", 1},
		{"", 0},
		{"sha1//" + strings.Repeat("A", 27) + "=", 0},
		{"sha256//" + strings.Repeat("A", 40), 0},
		{good + ";", 0},
		{strings.Repeat("ab", 32), 0}, // hex: not this format
	} {
		pins, err := ParsePins(c.in)
		if len(pins) != c.n || (err == nil) != (c.n > 0) {
			t.Errorf("ParsePins(%q) = %d pins, %v; want %d", c.in, len(pins), err, c.n)
		}
	}
	if _, err := ClientTLSConfig("nonsense", ""); err == nil {
		t.Errorf("ClientTLSConfig(nonsense) succeeded")
	}
	if _, err := ClientTLSConfig("", filepath.Join(t.TempDir(), "none.pem")); err == nil {
		t.Errorf("ClientTLSConfig(missing CA file) succeeded")
	}
}

// TestReadServerPin: the master's clients read the pin without making a
// certificate; once the server made one, they read its pin.
func TestReadServerPin(t *testing.T) {
	dir := t.TempDir()
	if _, err := ReadServerPin(dir); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("ReadServerPin(no certificate) = %v; want fs.ErrNotExist", err)
	}
	if _, err := os.Stat(filepath.Join(dir, CertFile)); err == nil {
		t.Fatalf("ReadServerPin made %s", CertFile)
	}
	pin, err := ServerPin(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := ReadServerPin(dir); err != nil || got != pin {
		t.Errorf("ReadServerPin = %q, %v; want %q", got, err, pin)
	}
}
