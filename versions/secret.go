package versions

import (
	"crypto/tls"
	"os"

	"github.com/clonecd/clonecd/trust"
)

// The server's own files in the store's top directory (package trust
// owns their formats): DIR/auth.secret, every token's secret, and
// DIR/tls.pem, the self-signed certificate and its key; both 0600.

// Secret returns the server's secret (DIR/auth.secret), making it, and
// the store's directory (0700), when there is none: `clonecd serve`,
// `clonecd token` and `clonecd build` before the server's first start.
func (s *Store) Secret() (*trust.Secret, error) {
	if err := os.MkdirAll(s.Dir, dirMode); err != nil {
		return nil, err
	}
	sec, err := trust.LoadOrCreateSecret(s.Dir)
	if err != nil {
		return nil, err
	}
	return sec, s.shareOwner()
}

// ReadSecret returns the server's secret without making one (an error
// wrapping fs.ErrNotExist when the server never started): what the
// master's clients read.
func (s *Store) ReadSecret() (*trust.Secret, error) { return trust.LoadSecret(s.Dir) }

// ServerCert returns the server's self-signed certificate (DIR/tls.pem)
// for hosts and its pin, making it when there is none (trust.LoadOrCreateServerCert).
func (s *Store) ServerCert(hosts []string) (tls.Certificate, string, error) {
	if err := os.MkdirAll(s.Dir, dirMode); err != nil {
		return tls.Certificate{}, "", err
	}
	cert, pin, err := trust.LoadOrCreateServerCert(s.Dir, hosts)
	if err != nil {
		return cert, pin, err
	}
	return cert, pin, s.shareOwner()
}

// ServerPin is the pin of the server's certificate, making the
// certificate when the server has not started yet (`clonecd build`).
func (s *Store) ServerPin() (string, error) {
	_, pin, err := s.ServerCert(nil)
	return pin, err
}

// ReadServerPin is the pin of the server's certificate without making one
// (an error wrapping fs.ErrNotExist when there is none).
func (s *Store) ReadServerPin() (string, error) { return trust.ReadServerPin(s.Dir) }
