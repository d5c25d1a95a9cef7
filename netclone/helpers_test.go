package netclone

import (
	"crypto/tls"
	"net/http"
	"testing"

	"github.com/clonecd/clonecd/fleet"
	"github.com/clonecd/clonecd/trust"
	"github.com/clonecd/clonecd/versions"
)

// testSecret is the secret of every test server (as `clonecd serve` has
// its store's): clients present its admin's credential (admin()) or a
// node's (as(node)). Authentication is never off in a test.
var testSecret = func() *trust.Secret {
	s, err := trust.NewSecret()
	if err != nil {
		panic(err)
	}
	return s
}()

// cred is user's credential (a node, or trust.AdminUser).
func cred(user string) trust.Credential {
	c, err := testSecret.Credential(user)
	if err != nil {
		panic(err)
	}
	return c
}

// admin is the access of the master's commands.
func admin() Access { return Access{Credential: cred(trust.AdminUser)} }

// as is the access of node (its own token).
func as(node string) Access { return Access{Credential: cred(node)} }

// openStore opens the image store in dir (a flat directory or a store).
func openStore(t testing.TB, dir string) *versions.Store {
	t.Helper()
	s, err := versions.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// serverWith serves the image store in dir with o and testSecret.
func serverWith(t testing.TB, dir string, o ServerOptions) *Server {
	o.Secret = testSecret
	return NewServer(openStore(t, dir), o)
}

// newServer serves the image store in dir with at most streams streams.
func newServer(t testing.TB, dir string, streams int) *Server {
	return serverWith(t, dir, ServerOptions{MaxStreams: streams})
}

// testTLS returns a server TLS configuration with a new self-signed
// certificate for 127.0.0.1 and the client's configuration pinning it.
func testTLS(t testing.TB) (server, client *tls.Config) {
	t.Helper()
	cert, pin, err := trust.LoadOrCreateServerCert(t.TempDir(), []string{"127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	client, err = trust.ClientTLSConfig(pin, "")
	if err != nil {
		t.Fatal(err)
	}
	return trust.ServerTLSConfig(cert), client
}

// authed sets a's credential on a request unless it has one.
func authed(r *http.Request, a Access) *http.Request {
	if r.Header.Get("Authorization") == "" {
		a.authorize(r)
	}
	return r
}

// nodesOf is the node store of the image store in dir.
func nodesOf(dir string) *fleet.Store {
	s, _ := versions.Open(dir)
	return s.Nodes(fleet.Limits{})
}

func readState(dir, node string) (fleet.State, error) { return nodesOf(dir).Get(node) }

func writeState(dir string, st fleet.State) (fleet.State, error) { return nodesOf(dir).Update(st) }

// adminClient is an HTTP client presenting the admin's credential (the
// fleet page's and the master's requests).
var adminClient = &http.Client{Transport: authTransport{base: http.DefaultTransport, a: admin()}}
