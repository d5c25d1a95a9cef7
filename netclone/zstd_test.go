package netclone

import (
	"errors"
	"io"
	"io/fs"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/clonecd/clonecd/internal/testimage"
	"github.com/clonecd/clonecd/medium"
	"github.com/clonecd/clonecd/versions"
)

// TestMediaZstd: a version whose image is zstd is streamed under its own
// name, node.cpio.zst (OpenImage finds it, Open of it streams it, its
// Stat names it), while the gzip name is not there; a gzip version of
// the same server still streams node.cpio.gz; FetchFile names its
// output after the version's image and refuses a name for the other
// compression before it downloads.
func TestMediaZstd(t *testing.T) {
	t.Parallel()
	dir, src := t.TempDir(), t.TempDir()
	s := openStore(t, dir)
	lay := filepath.Join(src, medium.Layout)
	os.WriteFile(lay, []byte("label: dos\n,,L\n"), 0o644)
	images := map[string]string{"1.0": testimage.WriteZstd(t, src, "z"), "1.1": testimage.Write(t, src, "g")}
	for _, v := range []string{"1.0", "1.1"} {
		if _, err := s.Publish(images[v], versions.PublishOptions{Version: v, Layout: lay}); err != nil {
			t.Fatal(err)
		}
	}
	ts := httptest.NewServer(newServer(t, dir, 2))
	defer ts.Close()
	for _, tt := range []struct{ version, image, other string }{
		{"1.0", medium.ImageZstd, medium.ImageGzip},
		{"1.1", medium.ImageGzip, medium.ImageZstd},
	} {
		o := fastOpts()
		o.Version = tt.version
		m, err := NewMedia(t.Context(), ts.URL, o)
		if err != nil {
			t.Fatal(err)
		}
		want, _ := os.ReadFile(images[tt.version])
		for _, open := range []struct {
			how  string
			open func() (fs.File, error)
		}{
			{"OpenImage", func() (fs.File, error) { return m.OpenImage() }},
			{"Open(" + tt.image + ")", func() (fs.File, error) { return m.Open(tt.image) }},
		} {
			f, err := open.open()
			if err != nil {
				t.Fatalf("version %s: %s: %v", tt.version, open.how, err)
			}
			st, _ := f.Stat()
			got, err := io.ReadAll(f)
			f.Close()
			if err != nil || string(got) != string(want) || st.Name() != tt.image || f.(*Stream).Name() != tt.image {
				t.Errorf("version %s: %s = %d bytes, %v, named %s; want the %d bytes of %s", tt.version, open.how, len(got), err, st.Name(), len(want), tt.image)
			}
		}
		if f, err := m.Open(tt.other); !errors.Is(err, fs.ErrNotExist) {
			if f != nil {
				f.Close()
			}
			t.Errorf("version %s: Open(%s) = %v; want fs.ErrNotExist", tt.version, tt.other, err)
		}

		out := t.TempDir()
		bad := filepath.Join(out, "node"+filepath.Ext(tt.other))
		if _, err := FetchFile(t.Context(), ts.URL, bad, FetchOptions{MediaOptions: o}); err == nil || !strings.Contains(err.Error(), "name it") {
			t.Errorf("version %s: FetchFile(%s) = %v; want a refusal", tt.version, bad, err)
		}
		if ents, _ := os.ReadDir(out); len(ents) != 0 {
			t.Errorf("version %s: the refused fetch wrote %v", tt.version, ents)
		}
		p := filepath.Join(out, tt.image)
		res, err := FetchFile(t.Context(), ts.URL, p, FetchOptions{MediaOptions: o})
		if err != nil || res.Image != tt.image || res.Path != p {
			t.Fatalf("version %s: FetchFile = %+v, %v", tt.version, res, err)
		}
		if got, _ := os.ReadFile(p); string(got) != string(want) {
			t.Errorf("version %s: FetchFile wrote other bytes than %s", tt.version, tt.image)
		}
	}
}
