package trust

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"aead.dev/minisign"
	"golang.org/x/crypto/blake2b"

	"github.com/clonecd/clonecd/medium"
)

// The reasons a signature is refused (errors.Is on an *Error).
var (
	ErrUnsigned     = errors.New("trust: not signed")
	ErrUnknownKey   = errors.New("trust: signed by a key that is not trusted")
	ErrBadSignature = errors.New("trust: signature does not match")
	ErrOtherFile    = errors.New("trust: signature of another file or version")
)

// Error is a refusal: File is the file at fault (MANIFEST,
// MANIFEST.minisig, a key file), Err one of the Err* reasons above,
// Detail says what to do.
type Error struct {
	File   string
	Err    error
	Detail string
}

func (e *Error) Error() string { return e.File + ": " + e.Detail }
func (e *Error) Unwrap() error { return e.Err }

// maxSignature bounds a signature file (minisign's are about 300 bytes; a
// trusted comment is one line).
const maxSignature = 16 << 10

// TrustedComment is the trusted comment Sign writes for a version's
// manifest: "clonecd MANIFEST version 1.20".
func TrustedComment(version string) string {
	return "clonecd " + medium.ManifestFile + " version " + version
}

// Verify checks that sig is a signature of manifest by one of keys, that
// its trusted comment does not name another file or version, and that
// manifest is a well formed manifest. It returns the key that signed.
func Verify(manifest, sig []byte, keys []PublicKey) (PublicKey, error) {
	_, k, _, err := verifyManifest(manifest, sig, keys)
	return k, err
}

// verifyManifest checks the signature first and parses only then: the
// parser sees nothing a trusted key did not sign.
func verifyManifest(manifest, sig []byte, keys []PublicKey) (*medium.Manifest, PublicKey, string, error) {
	k, comment, err := verifySignature(manifest, sig, keys)
	if err != nil {
		return nil, PublicKey{}, "", err
	}
	m, err := medium.ParseManifest(bytes.NewReader(manifest))
	if err != nil {
		return nil, PublicKey{}, "", err
	}
	if name, version := commentNames(comment); version != "" && version != m.Version && name == medium.ManifestFile {
		return nil, PublicKey{}, "", &Error{medium.SignatureFile, ErrOtherFile,
			fmt.Sprintf("signature of version %s (trusted comment %q), but %s is version %s", version, comment, medium.ManifestFile, m.Version)}
	}
	return m, k, comment, nil
}

// verifySignature checks a minisign signature of msg the way `minisign -V`
// does, and returns the key and the (authentic) trusted comment.
func verifySignature(msg, sig []byte, keys []PublicKey) (PublicKey, string, error) {
	sf := medium.SignatureFile
	if len(sig) == 0 {
		return PublicKey{}, "", &Error{sf, ErrUnsigned, "empty"}
	}
	if len(sig) > maxSignature {
		return PublicKey{}, "", &Error{sf, ErrBadSignature, fmt.Sprintf("larger than %d bytes: not a minisign signature", maxSignature)}
	}
	var s minisign.Signature
	if err := s.UnmarshalText(sig); err != nil {
		return PublicKey{}, "", &Error{sf, ErrBadSignature, "not a minisign signature (truncated or damaged): " + strings.TrimPrefix(err.Error(), "minisign: ")}
	}
	var k PublicKey
	found := false
	for _, c := range keys {
		if c.id == s.KeyID {
			k, found = c, true
			break
		}
	}
	if !found {
		return PublicKey{}, "", &Error{sf, ErrUnknownKey, fmt.Sprintf("signed by key %s, which is not trusted (trusted: %s)", formatID(s.KeyID), keyIDs(keys))}
	}
	// The trusted comment is checked first: once it is authentic, a
	// signature of another file can be named as such.
	commentOK := ed25519.Verify(k.key, append(s.Signature[:], s.TrustedComment...), s.CommentSignature[:])
	signed := msg
	if s.Algorithm == minisign.HashEdDSA {
		h := blake2b.Sum512(msg)
		signed = h[:]
	}
	msgOK := ed25519.Verify(k.key, signed, s.Signature[:])
	name, version := commentNames(s.TrustedComment)
	switch {
	case commentOK && name != "" && name != medium.ManifestFile:
		return PublicKey{}, "", &Error{sf, ErrOtherFile, fmt.Sprintf("a signature of %s (trusted comment %q), not of %s", name, s.TrustedComment, medium.ManifestFile)}
	case !msgOK && commentOK && version != "":
		return PublicKey{}, "", &Error{medium.ManifestFile, ErrBadSignature, fmt.Sprintf("does not match its signature by key %s, a signature of version %s: changed after signing, or the signature belongs to another version", k.ID(), version)}
	case !msgOK:
		return PublicKey{}, "", &Error{medium.ManifestFile, ErrBadSignature, fmt.Sprintf("does not match its signature by key %s: changed after signing, or the signature is of another file", k.ID())}
	case !commentOK:
		return PublicKey{}, "", &Error{sf, ErrBadSignature, "the trusted comment was changed after signing"}
	}
	return k, s.TrustedComment, nil
}

// SignatureKeyID returns the ID of the key that made a minisign
// signature (MANIFEST.minisig), without verifying it: what `clonecd
// images` shows. Verify says whether the signature holds.
func SignatureKeyID(sig []byte) (string, error) {
	if len(sig) > maxSignature {
		return "", &Error{medium.SignatureFile, ErrBadSignature, fmt.Sprintf("larger than %d bytes: not a minisign signature", maxSignature)}
	}
	var s minisign.Signature
	if err := s.UnmarshalText(sig); err != nil {
		return "", &Error{medium.SignatureFile, ErrBadSignature, "not a minisign signature (truncated or damaged): " + strings.TrimPrefix(err.Error(), "minisign: ")}
	}
	return formatID(s.KeyID), nil
}

// commentNames returns the file and version a trusted comment names:
// Sign's "clonecd NAME version V", or minisign's
// "timestamp:T\tfile:NAME\thashed" (no version). Other comments (minisign
// -t) name nothing.
func commentNames(c string) (name, version string) {
	if f := strings.Fields(c); len(f) >= 2 && f[0] == "clonecd" {
		if len(f) >= 4 && f[2] == "version" {
			version = f[3]
		}
		return f[1], version
	}
	for _, f := range strings.Split(c, "\t") {
		if n, ok := strings.CutPrefix(f, "file:"); ok {
			return n, ""
		}
	}
	return "", ""
}

func keyIDs(keys []PublicKey) string {
	if len(keys) == 0 {
		return "none"
	}
	ids := make([]string, len(keys))
	for i, k := range keys {
		ids[i] = k.ID()
	}
	return strings.Join(ids, ", ")
}

// Verifier holds the trusted public keys. The zero Verifier (or nil)
// trusts no key: media are read UNSIGNED.
type Verifier struct {
	keys []PublicKey
}

// NewVerifier trusts keys.
func NewVerifier(keys ...PublicKey) (*Verifier, error) {
	v := &Verifier{}
	for _, k := range keys {
		if err := v.add(k); err != nil {
			return nil, err
		}
	}
	return v, nil
}

func (v *Verifier) add(k PublicKey) error {
	for _, o := range v.keys {
		if o.id != k.id {
			continue
		}
		if o.Equal(k) {
			return nil
		}
		return fmt.Errorf("%s: key ID %s is also the ID of another key (%s)", k.file, k.ID(), o.file)
	}
	v.keys = append(v.keys, k)
	return nil
}

// LoadVerifier trusts the keys of paths: each a public key file, or a
// directory whose *.pub files are keys. Every path must exist.
func LoadVerifier(paths ...string) (*Verifier, error) {
	v := &Verifier{}
	for _, p := range paths {
		st, err := os.Stat(p)
		if err != nil {
			return nil, err
		}
		files := []string{p}
		if st.IsDir() {
			ents, err := os.ReadDir(p) // sorted by name
			if err != nil {
				return nil, err
			}
			files = files[:0]
			for _, e := range ents {
				if strings.HasSuffix(e.Name(), PubSuffix) && !e.IsDir() {
					files = append(files, filepath.Join(p, e.Name()))
				}
			}
		}
		for _, f := range files {
			k, err := LoadPublicKey(f)
			if err != nil {
				return nil, err
			}
			if err := v.add(k); err != nil {
				return nil, err
			}
		}
	}
	return v, nil
}

// LoadTrustDir is LoadVerifier(dir) for the cloner's TrustDir, except that
// a missing directory trusts no key (a cloner built without --trust).
func LoadTrustDir(dir string) (*Verifier, error) {
	if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
		return &Verifier{}, nil
	}
	return LoadVerifier(dir)
}

// Keys returns the trusted keys.
func (v *Verifier) Keys() []PublicKey {
	if v == nil {
		return nil
	}
	return append([]PublicKey(nil), v.keys...)
}

// Verify is Verify with v's keys.
func (v *Verifier) Verify(manifest, sig []byte) (PublicKey, error) {
	return Verify(manifest, sig, v.Keys())
}

// InitrdKeys is what `clonecd build --trust` and `initramfs --trust` put
// in the cloner's initramfs: the keys of paths (LoadVerifier: key files,
// or directories of *.pub) as files of TrustDir named ID.pub, mapped to
// the file each comes from (initramfs.Options.ExtraFiles), and their
// IDs. No paths: nothing. Paths that hold no key are an error.
func InitrdKeys(paths ...string) (map[string]string, []string, error) {
	if len(paths) == 0 {
		return nil, nil, nil
	}
	v, err := LoadVerifier(paths...)
	if err != nil {
		return nil, nil, err
	}
	if len(v.keys) == 0 {
		return nil, nil, fmt.Errorf("%s: no public key (*%s) in it", strings.Join(paths, ", "), PubSuffix)
	}
	files := map[string]string{}
	var ids []string
	for _, k := range v.keys {
		files[TrustDir+"/"+k.FileName()] = k.file
		ids = append(ids, k.ID())
	}
	return files, ids, nil
}
