package versions

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/clonecd/clonecd/image"
	"github.com/clonecd/clonecd/internal/atomicfile"
	"github.com/clonecd/clonecd/medium"
	"github.com/clonecd/clonecd/nodesync"
	"github.com/clonecd/clonecd/swarm"
	"github.com/clonecd/clonecd/trust"
)

// The files of a version directory as Publish writes them: copied with
// progress told, the image's node.files, blobs and torrent, then the
// sha256 file, CLONE_CD_VERSION, meta.json and the (signed) MANIFEST.

// stage binds a Progress function to a stage ("": none).
func stage(fn func(stage string, done, total int64), name string) func(done, total int64) {
	if fn == nil {
		return nil
	}
	return func(done, total int64) { fn(name, done, total) }
}

// progressReader tells fn how many bytes were read so far of total.
type progressReader struct {
	r           io.Reader
	done, total int64
	fn          func(done, total int64)
}

func (p *progressReader) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	if n > 0 {
		p.done += int64(n)
		p.fn(p.done, p.total)
	}
	return n, err
}

// reader returns f, or f telling fn about its progress (fn nil: none).
func reader(f *os.File, fn func(done, total int64)) (io.Reader, error) {
	if fn == nil {
		return f, nil
	}
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	fn(0, st.Size())
	return &progressReader{r: f, total: st.Size(), fn: fn}, nil
}

// checkImage is image.CheckFile with progress told to fn (nil: none).
func checkImage(img string, fn func(done, total int64)) (*image.CheckResult, error) {
	if fn == nil {
		return image.CheckFile(img)
	}
	f, err := os.Open(img)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	r, err := reader(f, fn)
	if err != nil {
		return nil, err
	}
	res, err := image.Check(r)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", img, err)
	}
	return res, nil
}

// copyInto copies the file from into dir as the medium file name (synced,
// mode 0600), records it in m and returns its sha256, size and mtime.
// fn, if not nil, is told the bytes copied so far.
func copyInto(dir, name, from string, m *medium.Manifest, fn func(done, total int64)) (string, int64, time.Time, error) {
	in, err := os.Open(from)
	if err != nil {
		return "", 0, time.Time{}, err
	}
	defer in.Close()
	src, err := reader(in, fn)
	if err != nil {
		return "", 0, time.Time{}, err
	}
	dst := filepath.Join(dir, filepath.FromSlash(name))
	if err := os.MkdirAll(filepath.Dir(dst), dirMode); err != nil {
		return "", 0, time.Time{}, err
	}
	f, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, fileMode)
	if err != nil {
		return "", 0, time.Time{}, err
	}
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(f, h), src)
	if err != nil {
		err = fmt.Errorf("copying %s to %s: %w", from, dst, err)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return "", 0, time.Time{}, err
	}
	st, err := os.Stat(dst)
	if err != nil {
		return "", 0, time.Time{}, err
	}
	sum := hex.EncodeToString(h.Sum(nil))
	m.Add(medium.File{Name: name, Size: n, SHA256: sum})
	return sum, n, st.ModTime().UTC(), nil
}

// publishFiles writes the version's node.files from its image in dir,
// fills the store's blob store with the image's contents (package
// nodesync: what `clonecd sync` fetches) and records node.files in m.
func (s *Store) publishFiles(dir string, m *medium.Manifest) error {
	img, ok := m.Image()
	if !ok {
		return fmt.Errorf("%s: the manifest lists no image", dir)
	}
	out := filepath.Join(dir, medium.Files)
	_, st, err := nodesync.Publish(filepath.Join(dir, img.Name), s.BlobDir(), out, nodesync.BuildOptions{})
	if err != nil {
		return err
	}
	if err := os.Chmod(out, fileMode); err != nil {
		return err
	}
	m.Add(medium.File{Name: medium.Files, Size: st.FilesSize, SHA256: st.FilesSum.String()})
	return nil
}

// addTorrent writes the image's torrent (package swarm: no webseed, no
// tracker in it, so the same image always gives the same file) into dir
// and lists its infohash in m: the swarm is trusted only through the
// signed manifest.
func addTorrent(dir string, m *medium.Manifest) error {
	img, ok := m.Image()
	if !ok {
		return fmt.Errorf("%s: the manifest lists no image", dir)
	}
	t, err := swarm.MakeTorrentFile(filepath.Join(dir, img.Name), swarm.MakeOptions{})
	if err != nil {
		return err
	}
	if err := writeInto(dir, medium.Torrent, t.Bytes, m); err != nil {
		return err
	}
	m.BTIH = map[string]string{img.Name: t.InfoHash}
	return nil
}

// writeInto writes data as the medium file name in dir and records it in m.
func writeInto(dir, name string, data []byte, m *medium.Manifest) error {
	p := filepath.Join(dir, filepath.FromSlash(name))
	if err := os.MkdirAll(filepath.Dir(p), dirMode); err != nil {
		return err
	}
	if err := atomicfile.WriteFile(p, data, fileMode); err != nil {
		return err
	}
	sum := sha256.Sum256(data)
	m.Add(medium.File{Name: name, Size: int64(len(data)), SHA256: hex.EncodeToString(sum[:])})
	return nil
}

// finishDir completes the version directory dir for e: the sha256 file
// of the image dir holds, CLONE_CD_VERSION, meta.json, MANIFEST listing every file of the
// version (m, the files written so far) and, with key, its signature.
func (s *Store) finishDir(dir string, e *Entry, m *medium.Manifest, key *trust.SecretKey) error {
	img := imageIn(dir)
	if err := writeInto(dir, medium.SumName(img), medium.FormatSum(e.SHA256, img), m); err != nil {
		return err
	}
	if err := writeInto(dir, medium.Version, []byte(e.Version+"\n"), m); err != nil {
		return err
	}
	m.Version, m.Date = e.Version, e.Date
	b, err := m.Marshal()
	if err != nil {
		return fmt.Errorf("%s of version %s: %w", medium.ManifestFile, e.Version, err)
	}
	if err := atomicfile.WriteFile(filepath.Join(dir, medium.ManifestFile), b, fileMode); err != nil {
		return err
	}
	if key != nil {
		if _, err := trust.SignDir(dir, key); err != nil {
			return fmt.Errorf("signing version %s: %w", e.Version, err)
		}
	}
	if err := writeMeta(dir, e); err != nil {
		return err
	}
	return atomicfile.SyncDir(dir)
}

func writeMeta(dir string, e *Entry) error {
	b, err := json.MarshalIndent(e.Record, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(filepath.Join(dir, metaFile), append(b, '\n'), fileMode)
}
