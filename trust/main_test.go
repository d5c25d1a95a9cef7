package trust

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/clonecd/clonecd/internal/testenv"
	"github.com/clonecd/clonecd/medium"
)

// The tests run HTTP(S) servers on loopback and the real minisign and
// curl.
func TestMain(m *testing.M) { os.Exit(testenv.GuardEtc(m)) }

// The files of the test medium, version 1.20.
var mediumFiles = map[string]string{
	medium.ImageGzip: "not really gzip, but what the manifest says\n",
	medium.Layout:    "label: dos\n,1GiB,L,*\n",
	medium.Kickstart: "%post\necho hi\n%end\n",
	medium.Kernel:    "a kernel",
}

// testManifest returns a manifest of version listing files.
func testManifest(t testing.TB, version string, files map[string]string) []byte {
	t.Helper()
	m := &medium.Manifest{Version: version, Date: time.Date(2026, 12, 1, 19, 11, 2, 0, time.UTC)}
	for name, content := range files {
		s := sha256.Sum256([]byte(content))
		m.Add(medium.File{Name: name, Size: int64(len(content)), SHA256: hex.EncodeToString(s[:])})
	}
	b, err := m.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// testMedium is a signed medium of version 1.20 (key signs it).
func testMedium(t testing.TB, key *SecretKey) fstest.MapFS {
	t.Helper()
	fsys := fstest.MapFS{medium.Version: {Data: []byte("1.20\n")}}
	for n, c := range mediumFiles {
		fsys[n] = &fstest.MapFile{Data: []byte(c)}
	}
	man := testManifest(t, "1.20", mediumFiles)
	sig, err := Sign(man, key)
	if err != nil {
		t.Fatal(err)
	}
	fsys[medium.ManifestFile] = &fstest.MapFile{Data: man}
	fsys[medium.SignatureFile] = &fstest.MapFile{Data: sig}
	return fsys
}

// newKey makes a key pair under a temp dir.
func newKey(t testing.TB) *SecretKey {
	t.Helper()
	k, err := GenerateKey(filepath.Join(t.TempDir(), "clonecd.key"))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// wantErr checks err against a reason (nil: no error) and words the
// message must hold.
func wantErr(t *testing.T, what string, err, reason error, words ...string) {
	t.Helper()
	if reason == nil {
		if err != nil {
			t.Errorf("%s = %v; want no error", what, err)
		}
		return
	}
	if !errors.Is(err, reason) {
		t.Errorf("%s = %v; want %v", what, err, reason)
		return
	}
	for _, w := range words {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("%s = %q; want it to say %q", what, err, w)
		}
	}
}

// run runs a tool with stdin and returns its combined output and error.
func run(stdin string, name string, args ...string) (string, error) {
	cmd := exec.Command(testenv.Tool(name), args...)
	cmd.Stdin = strings.NewReader(stdin)
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}
