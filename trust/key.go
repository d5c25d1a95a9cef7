package trust

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strconv"
	"strings"

	"aead.dev/minisign"

	"github.com/clonecd/clonecd/internal/atomicfile"
)

// PubSuffix is appended to a secret key's file name to name its public
// key: FILE and FILE.pub.
const PubSuffix = ".pub"

// TrustDir is where the cloner's initramfs keeps the trusted public keys
// (one ID.pub file each); the ramclone entry installed on a node is the
// same initramfs and keeps them.
const TrustDir = "/etc/clonecd/trust"

// maxKeyFile bounds what is read of a key file (a minisign key is under
// 400 bytes).
const maxKeyFile = 4096

// PublicKey is a minisign ed25519 public key.
type PublicKey struct {
	id   uint64
	key  ed25519.PublicKey
	file string
}

// ID is the key's ID as minisign prints it: upper case hex, no leading
// zeros.
func (k PublicKey) ID() string { return formatID(k.id) }

// File is the file the key was read from ("" when parsed from text).
func (k PublicKey) File() string { return k.file }

// FileName is the name the key has in a trust directory: ID.pub.
func (k PublicKey) FileName() string { return k.ID() + PubSuffix }

// String is the key as `minisign -P` takes it (base64 of "Ed", the ID and
// the key).
func (k PublicKey) String() string {
	b := make([]byte, 0, 42)
	b = binary.LittleEndian.AppendUint16(b, minisign.EdDSA)
	b = binary.LittleEndian.AppendUint64(b, k.id)
	b = append(b, k.key...)
	return base64.StdEncoding.EncodeToString(b)
}

// MarshalText is the key's file, as `minisign -G` writes it.
func (k PublicKey) MarshalText() ([]byte, error) {
	return []byte("untrusted comment: minisign public key " + k.ID() + "\n" + k.String() + "\n"), nil
}

// Equal reports whether two keys have the same ID and key.
func (k PublicKey) Equal(o PublicKey) bool { return k.id == o.id && k.key.Equal(o.key) }

func formatID(id uint64) string { return strings.ToUpper(strconv.FormatUint(id, 16)) }

// ParsePublicKey reads a public key: a minisign .pub file (an untrusted
// comment line, then the key) or the key alone (what `minisign -P` takes).
// name is used in errors.
func ParsePublicKey(b []byte, name string) (PublicKey, error) {
	var lines []string
	for l := range strings.SplitSeq(string(b), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			lines = append(lines, l)
		}
	}
	if len(lines) > 0 && strings.HasPrefix(lines[0], "untrusted comment:") {
		lines = lines[1:]
	}
	if len(lines) != 1 {
		return PublicKey{}, fmt.Errorf("%s: not a minisign public key (want one base64 line after the comment line, got %d lines)", name, len(lines))
	}
	raw, err := base64.StdEncoding.DecodeString(lines[0])
	if err != nil || len(raw) != 2+8+ed25519.PublicKeySize {
		return PublicKey{}, fmt.Errorf("%s: not a minisign public key (want 56 base64 characters)", name)
	}
	if alg := binary.LittleEndian.Uint16(raw); alg != minisign.EdDSA {
		return PublicKey{}, fmt.Errorf("%s: key algorithm %q, want \"Ed\"", name, raw[:2])
	}
	return PublicKey{
		id:   binary.LittleEndian.Uint64(raw[2:]),
		key:  ed25519.PublicKey(bytes.Clone(raw[10:])),
		file: name,
	}, nil
}

// LoadPublicKey reads a public key file.
func LoadPublicKey(file string) (PublicKey, error) {
	b, err := readSmall(file, maxKeyFile)
	if err != nil {
		return PublicKey{}, err
	}
	return ParsePublicKey(b, file)
}

// SecretKey is a minisign secret key, decrypted.
type SecretKey struct {
	key  minisign.PrivateKey
	file string
}

// ID is the key's ID as minisign prints it.
func (k *SecretKey) ID() string { return formatID(k.key.ID()) }

// Public returns the key's public half.
func (k *SecretKey) Public() PublicKey {
	pk := k.key.Public().(minisign.PublicKey)
	p, err := ParsePublicKey([]byte(pk.String()), k.file+PubSuffix)
	if err != nil {
		panic(err) // minisign.PublicKey.String is always a valid key
	}
	return p
}

// Passphrase returns the passphrase of an encrypted secret key (read from
// the terminal, say). A nil Passphrase means encrypted keys are refused.
type Passphrase func(file string) (string, error)

// LoadSecretKey reads a minisign secret key. The file must not be readable
// by group or others. An encrypted key (`minisign -G` without -W) needs
// passphrase; decrypting it takes seconds and up to 1 GiB of memory
// (minisign's scrypt parameters).
func LoadSecretKey(file string, passphrase Passphrase) (*SecretKey, error) {
	b, err := readPrivate(file, maxKeyFile)
	if err != nil {
		return nil, err
	}
	k := &SecretKey{file: file}
	if minisign.IsEncrypted(b) {
		if passphrase == nil {
			return nil, fmt.Errorf("%s: the secret key is encrypted with a passphrase; give it, or remove it with `minisign -C -W -s %s`", file, file)
		}
		pw, err := passphrase(file)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", file, err)
		}
		if k.key, err = minisign.DecryptKey(pw, b); err != nil {
			return nil, fmt.Errorf("%s: wrong passphrase, or not a minisign secret key", file)
		}
		return k, nil
	}
	if err := k.key.UnmarshalText(b); err != nil {
		return nil, fmt.Errorf("%s: not a minisign secret key: %v", file, strings.TrimPrefix(err.Error(), "minisign: "))
	}
	return k, nil
}

// GenerateKey makes a key pair: file, the secret key (0600, not
// encrypted), and file.pub. It refuses to replace either file.
func GenerateKey(file string) (*SecretKey, error) {
	return generateKey(file, rand.Reader)
}

func generateKey(file string, random io.Reader) (*SecretKey, error) {
	pubFile := file + PubSuffix
	for _, f := range []string{file, pubFile} {
		if _, err := os.Lstat(f); err == nil {
			return nil, fmt.Errorf("%s exists; remove it first or choose another file", f)
		} else if !errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
	}
	_, priv, err := minisign.GenerateKey(random)
	if err != nil {
		return nil, err
	}
	k := &SecretKey{key: priv, file: file}
	sec, err := priv.MarshalText()
	if err != nil {
		return nil, err
	}
	pub, _ := k.Public().MarshalText()
	// The secret first: a secret without its .pub can still sign (and
	// `minisign -R` recreates the .pub); a .pub without its secret is
	// worthless.
	if err := atomicfile.WriteFile(file, sec, 0o600); err != nil {
		return nil, err
	}
	if err := atomicfile.WriteFile(pubFile, pub, 0o644); err != nil {
		return nil, err
	}
	return k, nil
}

// readSmall reads a file of at most max bytes.
func readSmall(file string, max int64) ([]byte, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return readLimited(f, file, max)
}

// readPrivate reads a file of at most max bytes that must not be
// readable by group or others (a secret key, the server's secret).
func readPrivate(file string, max int64) ([]byte, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if m := st.Mode().Perm(); m&0o077 != 0 {
		return nil, fmt.Errorf("%s: mode %04o: a secret must not be readable by group or others (chmod 600 %s)", file, m, file)
	}
	return readLimited(f, file, max)
}

func readLimited(r io.Reader, name string, max int64) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, max+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if int64(len(b)) > max {
		return nil, fmt.Errorf("%s: larger than %d bytes", name, max)
	}
	return b, nil
}
