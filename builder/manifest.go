package builder

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/clonecd/clonecd/internal/atomicfile"
	"github.com/clonecd/clonecd/medium"
	"github.com/clonecd/clonecd/trust"
)

// manifestFiles are the files of a CD its MANIFEST lists, by their
// medium names: what the cloner and the CD's media check read. The boot
// loaders' own files (isolinux.cfg, the ESP) are not listed.
func manifestFiles() []string {
	names := []string{medium.Version, medium.Layout, medium.Credentials}
	for _, img := range medium.Images {
		names = append(names, img, medium.SumName(img))
	}
	return append(names, medium.Optional...)
}

// writeManifest writes the CD's MANIFEST in dir, the staged medium: the
// version and the sha256 and size of each file of manifestFiles there
// (the image's record is img, read whole already), and with key its
// signature MANIFEST.minisig. It returns how the CD is signed.
func writeManifest(dir, version string, img medium.File, key *trust.SecretKey) (string, error) {
	m := &medium.Manifest{Version: version, Date: time.Now().UTC().Truncate(time.Second)}
	for _, name := range manifestFiles() {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if name == img.Name {
			m.Add(img)
			continue
		}
		sum, size, err := hashFile(p)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return "", err
		}
		m.Add(medium.File{Name: name, Size: size, SHA256: sum})
	}
	b, err := m.Marshal()
	if err != nil {
		return "", err
	}
	if err := atomicfile.WriteFile(filepath.Join(dir, medium.ManifestFile), b, 0o644); err != nil {
		return "", err
	}
	if key == nil {
		return "unsigned", nil
	}
	if _, err := trust.SignDir(dir, key); err != nil {
		return "", err
	}
	return "signed by key " + key.ID(), nil
}

func hashFile(p string) (string, int64, error) {
	f, err := os.Open(p)
	if err != nil {
		return "", 0, err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return "", 0, err
	}
	return hex.EncodeToString(h.Sum(nil)), n, nil
}
