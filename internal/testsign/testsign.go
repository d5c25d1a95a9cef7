package testsign

import (
	"crypto/sha256"
	"encoding/hex"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/clonecd/clonecd/medium"
	"github.com/clonecd/clonecd/trust"
)

// Dir writes dir's MANIFEST for version: every regular file under dir
// but MANIFEST and MANIFEST.minisig, by its medium name; with key, it
// signs it (MANIFEST.minisig), else it leaves any old signature as it is
// (a manifest re-made after signing, as a forger would).
func Dir(t testing.TB, dir, version string, key *trust.SecretKey) {
	t.Helper()
	m := &medium.Manifest{Version: version, Date: time.Now().UTC().Truncate(time.Second)}
	err := filepath.WalkDir(dir, func(p string, e fs.DirEntry, err error) error {
		if err != nil || !e.Type().IsRegular() {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		name := filepath.ToSlash(rel)
		if name == medium.ManifestFile || name == medium.SignatureFile {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(b)
		m.Add(medium.File{Name: name, Size: int64(len(b)), SHA256: hex.EncodeToString(sum[:])})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	b, err := m.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, medium.ManifestFile), b, 0o644); err != nil {
		t.Fatal(err)
	}
	if key != nil {
		if _, err := trust.SignDir(dir, key); err != nil {
			t.Fatal(err)
		}
	}
}
