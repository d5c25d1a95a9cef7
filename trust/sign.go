package trust

import (
	"bytes"
	"fmt"
	"io"
	"path/filepath"

	"aead.dev/minisign"

	"github.com/clonecd/clonecd/internal/atomicfile"
	"github.com/clonecd/clonecd/medium"
)

// Sign returns the minisign signature (the content of MANIFEST.minisig)
// of a version's manifest, hashed as `minisign -S` does by default, with
// the trusted comment TrustedComment(version). It refuses a manifest that
// does not parse: nothing malformed gets signed.
func Sign(manifest []byte, key *SecretKey) ([]byte, error) {
	m, err := medium.ParseManifest(bytes.NewReader(manifest))
	if err != nil {
		return nil, err
	}
	r := minisign.NewReader(bytes.NewReader(manifest))
	if _, err := io.Copy(io.Discard, r); err != nil {
		return nil, err
	}
	return r.SignWithComments(key.key, TrustedComment(m.Version), "signature from clonecd secret key "+key.ID()), nil
}

// SignDir signs the MANIFEST of a version directory and writes
// MANIFEST.minisig beside it (atomically, 0644: a signature is public).
// It returns the manifest it signed.
func SignDir(dir string, key *SecretKey) (*medium.Manifest, error) {
	b, err := readSmall(filepath.Join(dir, medium.ManifestFile), medium.MaxManifest)
	if err != nil {
		return nil, err
	}
	sig, err := Sign(b, key)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", dir, err)
	}
	m, _, _, err := verifyManifest(b, sig, []PublicKey{key.Public()})
	if err != nil {
		return nil, err // a key that cannot verify its own signature: damaged
	}
	return m, atomicfile.WriteFile(filepath.Join(dir, medium.SignatureFile), sig, 0o644)
}
