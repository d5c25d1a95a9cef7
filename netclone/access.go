package netclone

import (
	"crypto/tls"
	"net/http"
	"time"

	"github.com/clonecd/clonecd/trust"
)

// Access is how a client reaches the server: the credential it presents
// and how it checks the server's certificate. Media, Reporter, Fetch and
// the master's StateSource all take one. The zero value presents no
// credential (the server answers 401) and checks an https server against
// the system's roots.
type Access struct {
	// Credential is sent as HTTP Basic auth on every request (a node's
	// from `clonecd token NODE`, or the admin's). Zero: none.
	Credential trust.Credential
	// TLS checks an https server: trust.ClientTLSConfig with the server's
	// pin (or a CA). Nil: the system's roots.
	TLS *tls.Config
}

// authorize puts the credential on a request. Go's client drops it on a
// redirect to another host.
func (a Access) authorize(r *http.Request) {
	if a.Credential.User != "" {
		r.SetBasicAuth(a.Credential.User, a.Credential.Token)
	}
}

// transport is an HTTP/1.1 transport with a's TLS settings and the
// environment's proxy. respTimeout bounds the wait for an answer's
// headers (0: none).
func (a Access) transport(respTimeout time.Duration) *http.Transport {
	t := &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		TLSHandshakeTimeout:   15 * time.Second,
		ResponseHeaderTimeout: respTimeout,
		DisableCompression:    true,
		IdleConnTimeout:       90 * time.Second,
	}
	if a.TLS != nil {
		t.TLSClientConfig = a.TLS.Clone()
	}
	return t
}

// client is an HTTP client with a's TLS settings and an overall timeout.
func (a Access) client(timeout time.Duration) *http.Client {
	return &http.Client{Transport: a.transport(0), Timeout: timeout}
}
