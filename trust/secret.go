package trust

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/clonecd/clonecd/fleet"
	"github.com/clonecd/clonecd/internal/atomicfile"
)

// SecretFile is the server's secret, in the directory the server is given
// (its store): 64 hex digits and a newline, 0600.
const SecretFile = "auth.secret"

// AdminUser is the user name of the admin credential; no node may have
// it (fleet.ValidName refuses it).
const AdminUser = fleet.AdminName

// Secret is the server's secret: every token is derived from it.
type Secret struct {
	b [32]byte
}

// LoadSecret reads dir/SecretFile.
func LoadSecret(dir string) (*Secret, error) {
	file := filepath.Join(dir, SecretFile)
	b, err := readPrivate(file, 128)
	if err != nil {
		return nil, err
	}
	s := &Secret{}
	h := strings.TrimSuffix(string(b), "\n")
	if n, err := hex.Decode(s.b[:], []byte(h)); err != nil || n != len(s.b) || len(h) != 2*len(s.b) {
		return nil, fmt.Errorf("%s: not a clonecd secret (want %d hex digits); remove it to make a new one, which changes every token", file, 2*len(s.b))
	}
	return s, nil
}

// NewSecret returns a random secret that is kept nowhere: a server given
// no secret checks credentials against one, so every request is refused.
func NewSecret() (*Secret, error) {
	s := &Secret{}
	if _, err := rand.Read(s.b[:]); err != nil {
		return nil, err
	}
	return s, nil
}

// LoadOrCreateSecret reads dir/SecretFile, making it first if there is
// none. Two processes starting at once end up with the same secret.
func LoadOrCreateSecret(dir string) (*Secret, error) {
	s, err := LoadSecret(dir)
	if !errors.Is(err, fs.ErrNotExist) {
		return s, err
	}
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return nil, err
	}
	if err := createOnce(filepath.Join(dir, SecretFile), []byte(hex.EncodeToString(b[:])+"\n"), 0o600); err != nil && !errors.Is(err, fs.ErrExist) {
		return nil, err
	}
	return LoadSecret(dir)
}

// Token is `clonecd token NAME`: the credential of NAME (a node, or
// AdminUser) on the server whose store is dir. It makes the secret if the
// server has not started yet, so media can be built before the first start.
func Token(dir, name string) (Credential, error) {
	s, err := LoadOrCreateSecret(dir)
	if err != nil {
		return Credential{}, err
	}
	return s.Credential(name)
}

// NodeToken is node's token: HMAC-SHA256(secret, "node\x00"+node),
// base64url without padding.
func (s *Secret) NodeToken(node string) (string, error) {
	if err := fleet.ValidName(node); err != nil {
		return "", err
	}
	return s.token("node\x00" + node), nil
}

// AdminToken is the admin's token: HMAC-SHA256(secret, "admin\x00").
func (s *Secret) AdminToken() string { return s.token(AdminUser + "\x00") }

// Credential is the credential of user: a node's name, or AdminUser.
func (s *Secret) Credential(user string) (Credential, error) {
	if user == AdminUser {
		return Credential{User: AdminUser, Token: s.AdminToken()}, nil
	}
	t, err := s.NodeToken(user)
	if err != nil {
		return Credential{}, err
	}
	return Credential{User: user, Token: t}, nil
}

func (s *Secret) token(msg string) string {
	h := hmac.New(sha256.New, s.b[:])
	h.Write([]byte(msg))
	return base64.RawURLEncoding.EncodeToString(h.Sum(nil))
}

// Credential is what a client presents: a node's name (or AdminUser) and
// its token. Its text form is "NAME:TOKEN", as curl -u and URLs take it.
type Credential struct {
	User, Token string
}

func (c Credential) String() string { return c.User + ":" + c.Token }

// MarshalText is the credential's file: "NAME:TOKEN\n".
func (c Credential) MarshalText() ([]byte, error) { return []byte(c.String() + "\n"), nil }

// ParseCredential reads "NAME:TOKEN" (surrounding white space ignored).
func ParseCredential(s string) (Credential, error) {
	u, t, ok := strings.Cut(strings.TrimSpace(s), ":")
	if !ok || t == "" || strings.ContainsAny(t, " \t\r\n:") {
		return Credential{}, errors.New("credential: want NAME:TOKEN")
	}
	if u != AdminUser {
		if err := fleet.ValidName(u); err != nil {
			return Credential{}, fmt.Errorf("credential: %w", err)
		}
	}
	return Credential{User: u, Token: t}, nil
}

// LoadCredential reads a credential file (mode 0600, "NAME:TOKEN\n"), as
// the ramclone entry keeps it.
func LoadCredential(file string) (Credential, error) {
	b, err := readPrivate(file, 512)
	if err != nil {
		return Credential{}, err
	}
	c, err := ParseCredential(string(b))
	if err != nil {
		return Credential{}, fmt.Errorf("%s: %w", file, err)
	}
	return c, nil
}

// createOnce makes path with data unless it exists (then an error
// wrapping fs.ErrExist): a complete temporary file is hard-linked to
// path, so path never exists half written and a concurrent maker's file
// is never replaced.
func createOnce(path string, data []byte, perm os.FileMode) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp)
	_, err = f.Write(data)
	if err == nil {
		err = f.Chmod(perm)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if err := os.Link(tmp, path); err != nil {
		return err
	}
	return atomicfile.SyncDir(dir)
}
