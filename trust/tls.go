package trust

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"net"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/clonecd/clonecd/internal/atomicfile"
)

// CertFile is the server's self-signed certificate and its key, one PEM
// file (key first), 0600, in the directory the server is given.
const CertFile = "tls.pem"

// PinPrefix starts a pin: "sha256//" and the standard base64 of the
// SHA-256 of a certificate's SubjectPublicKeyInfo, as curl's
// --pinnedpubkey writes it.
const PinPrefix = "sha256//"

// certLifetime: a pinned certificate's dates are not checked, but other
// clients (curl --cacert) do.
const certLifetime = 100 * 365 * 24 * time.Hour

// Fingerprint is the pin of a certificate: "sha256//BASE64" of its
// SubjectPublicKeyInfo.
func Fingerprint(cert *x509.Certificate) string {
	h := sha256.Sum256(cert.RawSubjectPublicKeyInfo)
	return PinPrefix + base64.StdEncoding.EncodeToString(h[:])
}

// ParsePins reads one pin, or several separated by ';' (curl's form, for
// a key rollover): each "sha256//" and 44 base64 characters.
func ParsePins(s string) ([][sha256.Size]byte, error) {
	var pins [][sha256.Size]byte
	for p := range strings.SplitSeq(s, ";") {
		b64, ok := strings.CutPrefix(strings.TrimSpace(p), PinPrefix)
		raw, err := base64.StdEncoding.DecodeString(b64)
		if !ok || err != nil || len(raw) != sha256.Size {
			return nil, fmt.Errorf("pin %.80q: want %s and the base64 of a SHA-256 (44 characters)", p, PinPrefix)
		}
		pins = append(pins, [sha256.Size]byte(raw))
	}
	return pins, nil
}

// LoadServerCert reads a certificate and key (serve --tls-cert/--tls-key)
// and returns them with the certificate's pin.
func LoadServerCert(certFile, keyFile string) (tls.Certificate, string, error) {
	c, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return tls.Certificate{}, "", fmt.Errorf("%s, %s: %w", certFile, keyFile, err)
	}
	return c, Fingerprint(c.Leaf), nil
}

// LoadOrCreateServerCert returns the server's certificate in dir/CertFile
// and its pin, making a self-signed ECDSA P-256 one for hosts (IP
// addresses and DNS names, its subject alternative names) if there is
// none. When an existing certificate lacks one of hosts, it is re-issued
// with the same key for all of them: the pin does not change.
func LoadOrCreateServerCert(dir string, hosts []string) (tls.Certificate, string, error) {
	file := filepath.Join(dir, CertFile)
	for _, h := range hosts {
		if err := validHost(h); err != nil {
			return tls.Certificate{}, "", err
		}
	}
	b, err := readPrivate(file, 64<<10)
	if errors.Is(err, fs.ErrNotExist) {
		if err = createServerCert(file, hosts); err == nil {
			b, err = readPrivate(file, 64<<10)
		}
	}
	if err != nil {
		return tls.Certificate{}, "", err
	}
	c, err := tls.X509KeyPair(b, b)
	if err != nil {
		return tls.Certificate{}, "", fmt.Errorf("%s: %w", file, err)
	}
	if missing := uncovered(c.Leaf, hosts); len(missing) > 0 {
		key, ok := c.PrivateKey.(*ecdsa.PrivateKey)
		if !ok {
			return tls.Certificate{}, "", fmt.Errorf("%s: not an ECDSA key; cannot add %s to the certificate", file, strings.Join(missing, ", "))
		}
		if b, err = selfSigned(key, append(certHosts(c.Leaf), missing...)); err != nil {
			return tls.Certificate{}, "", err
		}
		if err := atomicfile.WriteFile(file, b, 0o600); err != nil {
			return tls.Certificate{}, "", err
		}
		if c, err = tls.X509KeyPair(b, b); err != nil {
			return tls.Certificate{}, "", fmt.Errorf("%s: %w", file, err)
		}
	}
	return c, Fingerprint(c.Leaf), nil
}

// createServerCert makes file with a new key and a certificate for hosts,
// unless another process just made it.
func createServerCert(file string, hosts []string) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	b, err := selfSigned(key, hosts)
	if err != nil {
		return err
	}
	if err := createOnce(file, b, 0o600); err != nil && !errors.Is(err, fs.ErrExist) {
		return err
	}
	return nil
}

// ServerPin is the pin of the server whose store is dir (for `build`),
// making the certificate if the server has not started yet: the server
// adds its addresses later with the same key, so the pin holds.
func ServerPin(dir string) (string, error) {
	_, pin, err := LoadOrCreateServerCert(dir, nil)
	return pin, err
}

// ReadServerPin is the pin of the server certificate in dir/CertFile,
// read only (an error wrapping fs.ErrNotExist when the server never
// started): what the master's own clients pin.
func ReadServerPin(dir string) (string, error) {
	file := filepath.Join(dir, CertFile)
	b, err := readPrivate(file, 64<<10)
	if err != nil {
		return "", err
	}
	c, err := tls.X509KeyPair(b, b)
	if err != nil {
		return "", fmt.Errorf("%s: %w", file, err)
	}
	return Fingerprint(c.Leaf), nil
}

// selfSigned returns the PEM of key and of a self-signed server
// certificate for hosts.
func selfSigned(key *ecdsa.PrivateKey, hosts []string) ([]byte, error) {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, err
	}
	now := time.Now().Add(-time.Hour)
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "clonecd serve"},
		NotBefore:             now,
		NotAfter:              now.Add(certLifetime),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	pk, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	var out bytes.Buffer
	pem.Encode(&out, &pem.Block{Type: "PRIVATE KEY", Bytes: pk})
	pem.Encode(&out, &pem.Block{Type: "CERTIFICATE", Bytes: der})
	return out.Bytes(), nil
}

func certHosts(c *x509.Certificate) []string {
	hosts := slices.Clone(c.DNSNames)
	for _, ip := range c.IPAddresses {
		hosts = append(hosts, ip.String())
	}
	return hosts
}

// uncovered returns the hosts c has no subject alternative name for.
func uncovered(c *x509.Certificate, hosts []string) []string {
	var out []string
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			if !slices.ContainsFunc(c.IPAddresses, ip.Equal) {
				out = append(out, h)
			}
		} else if !slices.Contains(c.DNSNames, h) && !slices.Contains(out, h) {
			out = append(out, h)
		}
	}
	return out
}

// validHost accepts an IP address or a DNS name.
func validHost(h string) error {
	if net.ParseIP(h) != nil {
		return nil
	}
	if h == "" || len(h) > 253 || h[0] == '-' || h[0] == '.' {
		return fmt.Errorf("host %.60q: not an IP address or a DNS name", h)
	}
	for _, c := range h {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '.') {
			return fmt.Errorf("host %q: not an IP address or a DNS name", h)
		}
	}
	return nil
}

// ServerTLSConfig is the server side: cert, TLS 1.2 or later.
func ServerTLSConfig(cert tls.Certificate) *tls.Config {
	return &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
}

// ClientTLSConfig is the client side of a connection to the server.
//
// With pin (one or several, ParsePins) the server's certificate must
// carry a pinned key, checked on every connection, resumed ones too; with
// no caFile nothing else is checked (no chain, name or dates: the pin is
// the trust, and a cloner's clock may be years off). With caFile (PEM
// certificates) the chain and the name are verified against it as well.
// With neither, the system's roots are used.
func ClientTLSConfig(pin, caFile string) (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if caFile != "" {
		b, err := readSmall(caFile, 1<<20)
		if err != nil {
			return nil, err
		}
		cfg.RootCAs = x509.NewCertPool()
		if !cfg.RootCAs.AppendCertsFromPEM(b) {
			return nil, fmt.Errorf("%s: no PEM certificate in it", caFile)
		}
	}
	if pin == "" {
		return cfg, nil
	}
	pins, err := ParsePins(pin)
	if err != nil {
		return nil, err
	}
	cfg.InsecureSkipVerify = caFile == "" // the chain only: VerifyConnection checks the pin
	cfg.VerifyConnection = func(cs tls.ConnectionState) error {
		if len(cs.PeerCertificates) == 0 {
			return errors.New("tls: the server sent no certificate")
		}
		leaf := cs.PeerCertificates[0]
		if !slices.Contains(pins, sha256.Sum256(leaf.RawSubjectPublicKeyInfo)) {
			return fmt.Errorf("tls: the server's key %s is not the pinned one (%s)", Fingerprint(leaf), pin)
		}
		return nil
	}
	return cfg, nil
}
