package versions

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/clonecd/clonecd/internal/testimage"
	"github.com/clonecd/clonecd/medium"
)

// TestPublishZstd: a zstd image becomes a version holding node.cpio.zst
// and its .sha256 under the medium's names, listed in MANIFEST; the flat
// aliases follow the current version's image (the other compression's
// are removed, never left dangling), through publish, promote and
// rollback; an uncompressed archive is refused before anything is
// written.
func TestPublishZstd(t *testing.T) {
	t.Parallel()
	src := t.TempDir()
	s, err := Open(filepath.Join(t.TempDir(), "store"))
	if err != nil {
		t.Fatal(err)
	}
	lay := layoutFile(t, src)
	plain := filepath.Join(src, "plain.cpio")
	gunzip(t, testimage.Write(t, src, "plain"), plain)
	if _, err := s.Publish(plain, PublishOptions{Layout: lay}); err == nil || !strings.Contains(err.Error(), "uncompressed cpio archive") {
		t.Errorf("Publish(uncompressed cpio) = %v; want a refusal", err)
	}
	if _, err := os.Stat(s.Dir); err == nil {
		t.Errorf("a refused publish made the store %s", s.Dir)
	}

	// aliases says which image the flat names point at ("" for none).
	aliases := func() string {
		var got []string
		for _, n := range medium.Images {
			for _, name := range []string{n, medium.SumName(n)} {
				if target, err := os.Readlink(filepath.Join(s.Dir, name)); err == nil {
					if _, err := os.Stat(filepath.Join(s.Dir, name)); err != nil {
						t.Errorf("DIR/%s -> %s dangles", name, target)
					}
					got = append(got, name)
				}
			}
		}
		return strings.Join(got, " ")
	}
	zst, gz := medium.ImageZstd+" "+medium.SumName(medium.ImageZstd), medium.ImageGzip+" "+medium.SumName(medium.ImageGzip)
	for _, tt := range []struct {
		what string
		do   func() (*Entry, error)
		img  string // the current version's image
	}{
		{"publish zstd", func() (*Entry, error) {
			return s.Publish(testimage.WriteZstd(t, src, "z1"), PublishOptions{Layout: lay, Version: "1.0"})
		}, medium.ImageZstd},
		{"publish gzip", func() (*Entry, error) {
			return s.Publish(testimage.Write(t, src, "g1"), PublishOptions{Version: "1.1"})
		}, medium.ImageGzip},
		{"rollback to zstd", func() (*Entry, error) { return s.Rollback("test") }, medium.ImageZstd},
		{"promote gzip", func() (*Entry, error) { return s.Promote("1.1", true) }, medium.ImageGzip},
	} {
		e, err := tt.do()
		if err != nil {
			t.Fatalf("%s: %v", tt.what, err)
		}
		cur, err := s.Current()
		if err != nil {
			t.Fatal(err)
		}
		if cur.ImageName() != tt.img || e.ImageName() != tt.img {
			t.Errorf("%s: current's image %s; want %s", tt.what, cur.ImageName(), tt.img)
		}
		want := map[string]string{medium.ImageZstd: zst, medium.ImageGzip: gz}[tt.img]
		if got := aliases(); got != want {
			t.Errorf("%s: flat aliases %q; want %q", tt.what, got, want)
		}
		sum, err := medium.ReadSum(os.DirFS(cur.Dir), tt.img)
		if err != nil || sum != cur.SHA256 || sum != hashFile(t, cur.Image()) {
			t.Errorf("%s: %s = %s, %v; the image has %s", tt.what, medium.SumName(tt.img), sum, err, hashFile(t, cur.Image()))
		}
		f, err := os.Open(filepath.Join(cur.Dir, medium.ManifestFile))
		if err != nil {
			t.Fatal(err)
		}
		m, err := medium.ParseManifest(f)
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		if img, ok := m.Image(); !ok || img.Name != tt.img || img.SHA256 != cur.SHA256 || img.Size != cur.Size {
			t.Errorf("%s: MANIFEST's image %+v; want %s %s %d", tt.what, img, tt.img, cur.SHA256, cur.Size)
		}
		if cur.Changed {
			t.Errorf("%s: the current version reads as changed", tt.what)
		}
	}
}

// gunzip writes gz decompressed to dst.
func gunzip(t *testing.T, gz, dst string) {
	t.Helper()
	out, err := exec.Command("gzip", "-dc", gz).Output()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, out, 0o644); err != nil {
		t.Fatal(err)
	}
}
