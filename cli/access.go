package cli

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"strings"

	"github.com/spf13/pflag"

	"github.com/clonecd/clonecd/netclone"
	"github.com/clonecd/clonecd/trust"
	"github.com/clonecd/clonecd/versions"
)

// Environment variables of the clients of a server.
const (
	envToken = "CLONECD_TOKEN"   // NAME:TOKEN, as --token
	envPin   = "CLONECD_TLS_PIN" // sha256//..., as --tls-pin
)

// accessFlags say how a client (status, reclone, fetch, clone --net)
// reaches a clonecd serve: the credential it presents and how it checks
// the server's certificate.
type accessFlags struct {
	token    credentialFlag
	credFile string
	pin      pinFlag
	ca       string
}

const accessHelp = `A server needs a credential on every request: --credential FILE (a
"NAME:TOKEN" line, 0600), --token NAME:TOKEN or $CLONECD_TOKEN (clonecd
token NAME prints one), else the store's own secret when --dir is the
served store (on the master: the admin's credential, or the node's). An
https server's certificate is checked against --tls-pin PIN or
$CLONECD_TLS_PIN (clonecd serve prints it), else --tls-ca FILE, else the
store's own certificate (--dir), else the system's roots.`

func (f *accessFlags) define(fs *pflag.FlagSet) {
	fs.Var(&f.token, "token", "credential `NAME:TOKEN` for the server (clonecd token NAME; default $CLONECD_TOKEN)")
	fs.StringVar(&f.credFile, "credential", "", "credential `FILE` holding NAME:TOKEN (mode 0600)")
	fs.Var(&f.pin, "tls-pin", "the server's TLS `PIN`, sha256//BASE64 (printed by clonecd serve; default $CLONECD_TLS_PIN)")
	fs.StringVar(&f.ca, "tls-ca", "", "check the server's certificate against the CA certificates in `FILE`")
}

// access resolves the flags for server: the credential (--credential,
// --token, $CLONECD_TOKEN, else user's from the store in dir when it has
// a secret) and the TLS settings (--tls-pin, $CLONECD_TLS_PIN, --tls-ca,
// else the pin of the store's certificate, else the system's roots). user
// is the admin or a node's name; dir "" means no store.
func (f *accessFlags) access(server, dir, user string) (netclone.Access, error) {
	var a netclone.Access
	var store *versions.Store
	if dir != "" {
		s, err := versions.Open(dir)
		if err != nil {
			return a, err
		}
		store = s
	}
	switch {
	case f.credFile != "":
		c, err := trust.LoadCredential(f.credFile)
		if err != nil {
			return a, fmt.Errorf("--credential: %w", err)
		}
		a.Credential = c
	case f.token.User != "":
		a.Credential = trust.Credential(f.token)
	case os.Getenv(envToken) != "":
		c, err := trust.ParseCredential(os.Getenv(envToken))
		if err != nil {
			return a, UsageError("%s: %v", envToken, err)
		}
		a.Credential = c
	case store != nil && user != "":
		secret, err := store.ReadSecret()
		if errors.Is(err, fs.ErrNotExist) {
			break // no local server: the server's 401 says what is missing
		}
		if err != nil {
			return a, err
		}
		if a.Credential, err = secret.Credential(user); err != nil {
			return a, err
		}
	}
	if !strings.HasPrefix(server, "https:") {
		return a, nil
	}
	pin := string(f.pin)
	if pin == "" && f.ca == "" {
		if env := os.Getenv(envPin); env != "" {
			if _, err := trust.ParsePins(env); err != nil {
				return a, UsageError("%s: %v", envPin, err)
			}
			pin = env
		} else if store != nil {
			p, err := store.ReadServerPin()
			if err != nil && !errors.Is(err, fs.ErrNotExist) {
				return a, err
			}
			pin = p
		}
	}
	if pin == "" && f.ca == "" {
		return a, nil
	}
	cfg, err := trust.ClientTLSConfig(pin, f.ca)
	if err != nil {
		return a, err
	}
	a.TLS = cfg
	return a, nil
}

// credentialFlag is NAME:TOKEN, checked when given.
type credentialFlag trust.Credential

func (c *credentialFlag) String() string {
	if c.User == "" {
		return ""
	}
	return c.User + ":..."
}
func (c *credentialFlag) Type() string { return "NAME:TOKEN" }
func (c *credentialFlag) Set(s string) error {
	cred, err := trust.ParseCredential(s)
	if err != nil {
		return err
	}
	*c = credentialFlag(cred)
	return nil
}

// pinFlag is a TLS pin (or several, ';'-separated), checked when given.
type pinFlag string

func (p *pinFlag) String() string { return string(*p) }
func (p *pinFlag) Type() string   { return "PIN" }
func (p *pinFlag) Set(s string) error {
	if _, err := trust.ParsePins(s); err != nil {
		return err
	}
	*p = pinFlag(s)
	return nil
}

// hostsFlag is a repeatable, comma-separable list of host names and
// addresses (serve --tls-host), each checked when given.
type hostsFlag []string

func (h *hostsFlag) String() string { return strings.Join(*h, ",") }
func (h *hostsFlag) Type() string   { return "NAMES" }
func (h *hostsFlag) Set(s string) error {
	var l listFlag
	l.Set(s)
	for _, x := range l {
		if net.ParseIP(x) == nil && !validDNSName(x) {
			return fmt.Errorf("%q: want a host name or an IP address", x)
		}
	}
	*h = append(*h, l...)
	return nil
}

// validDNSName accepts letters, digits, '-' and '.', not starting with
// '-' or '.', at most 253 bytes.
func validDNSName(s string) bool {
	if s == "" || len(s) > 253 || s[0] == '-' || s[0] == '.' {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '.') {
			return false
		}
	}
	return true
}
