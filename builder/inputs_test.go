package builder

import (
	"crypto/sha256"
	"encoding/hex"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/clonecd/clonecd/internal/testenv"
	"github.com/clonecd/clonecd/medium"
)

// smallImage makes a gzip'd cpio image of a two-file tree with GNU cpio.
func smallImage(t *testing.T, dir string) string {
	t.Helper()
	testenv.NeedTools(t, "cpio", "gzip")
	root := filepath.Join(dir, "root")
	os.MkdirAll(filepath.Join(root, "etc"), 0o755)
	os.WriteFile(filepath.Join(root, "etc", "hostname"), []byte("golden\n"), 0o644)
	noise := make([]byte, 256<<10)
	rand.NewChaCha8([32]byte{1}).Read(noise)
	os.WriteFile(filepath.Join(root, "etc", "noise"), noise, 0o644)
	img := filepath.Join(dir, "node.cpio.gz")
	cmd := exec.Command("sh", "-c", "find . | cpio -o --format=newc --quiet | gzip > "+img)
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("making %s: %v\n%s", img, err, out)
	}
	return img
}

func fileSHA(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// buildOptions are the inputs of a quick build: no UEFI entry and a
// prebuilt (dummy) initramfs, so only the checks and the ISO writer run.
func buildOptions(t *testing.T) Options {
	t.Helper()
	for _, p := range []string{IsolinuxBin, LdlinuxC32} {
		if _, err := os.Stat(p); err != nil {
			testenv.Missing(t, "%s (packages isolinux, syslinux-common)", p)
		}
	}
	kernel, err := DefaultKernel("")
	if err != nil {
		testenv.Missing(t, "a kernel in /boot (package linux-image-amd64)")
	}
	dir := t.TempDir()
	layout := filepath.Join(dir, "node.sfdisk")
	os.WriteFile(layout, []byte("label: dos\nsize=1G\n,\n# clonecd: part=1 fs=ext4 mount=/\n"), 0o644)
	initrd := filepath.Join(dir, "initrd.img")
	os.WriteFile(initrd, []byte("not really an initramfs"), 0o644)
	return Options{Output: filepath.Join(dir, "out.iso"), Image: smallImage(t, dir), Layout: layout,
		Kernel: kernel, Initrd: initrd, Version: "1.19", NoUEFI: true, Log: io.Discard, Quiet: true}
}

// TestBuildRefusesBadInputs: a random or truncated image, one whose
// .sha256 disagrees, -o naming a directory or a missing one, a version
// that is not MAJOR.MINOR, a server that is not an http(s) URL, a timeout
// out of range and a missing kernel are refused before anything is
// written, each error naming the setting (usability B03, B06-B10, B12).
func TestBuildRefusesBadInputs(t *testing.T) {
	tests := []struct {
		name   string
		change func(t *testing.T, o *Options)
		want   string
	}{
		{"random image", func(t *testing.T, o *Options) {
			b := make([]byte, 64<<10)
			rand.NewChaCha8([32]byte{3}).Read(b)
			os.WriteFile(o.Image, b, 0o644)
		}, "is not a whole clonecd image"},
		{"gzip'd random bytes", func(t *testing.T, o *Options) {
			testenv.Run(t, "sh", "-c", "head -c 65536 /dev/zero | tr '\\0' x | gzip > "+o.Image)
		}, "is not a whole clonecd image"},
		{"truncated image", func(t *testing.T, o *Options) {
			st, _ := os.Stat(o.Image)
			os.Truncate(o.Image, st.Size()*2/3)
		}, "is not a whole clonecd image"},
		{"a byte flipped", func(t *testing.T, o *Options) {
			b, _ := os.ReadFile(o.Image)
			b[len(b)/2] ^= 0x40
			os.WriteFile(o.Image, b, 0o644)
		}, "is not a whole clonecd image"},
		{"uncompressed cpio", func(t *testing.T, o *Options) {
			testenv.Run(t, "sh", "-c", "gzip -dc "+o.Image+" > "+o.Image+".tmp && mv "+o.Image+".tmp "+o.Image)
		}, "uncompressed cpio archive: a CD carries a gzip or zstd image"},
		{"zstd named .gz", func(t *testing.T, o *Options) {
			testenv.NeedTools(t, "zstd")
			testenv.Run(t, "sh", "-c", "gzip -dc "+o.Image+" | zstd -q > "+o.Image+".tmp && mv "+o.Image+".tmp "+o.Image)
		}, "a .gz name for the image node.cpio.zst"},
		{"sha256 file disagrees", func(t *testing.T, o *Options) {
			os.WriteFile(medium.SumName(o.Image), medium.FormatSum(strings.Repeat("0", 64), medium.ImageGzip), 0o644)
		}, "the image or its checksum is damaged"},
		{"output is a directory", func(t *testing.T, o *Options) { o.Output = filepath.Dir(o.Output) }, "is a directory"},
		{"output directory missing", func(t *testing.T, o *Options) {
			o.Output = filepath.Join(filepath.Dir(o.Output), "nodir", "b05.iso")
		}, "no directory"},
		{"version 1.x", func(t *testing.T, o *Options) { o.Version = "1.x" }, `version "1.x"`},
		{"version one word", func(t *testing.T, o *Options) { o.Version = "latest" }, "MAJOR.MINOR"},
		{"server garbage", func(t *testing.T, o *Options) { o.Server = "garbage" }, `--server "garbage"`},
		{"server ftp", func(t *testing.T, o *Options) { o.Server = "ftp://10.0.0.1/" }, "http://"},
		{"server without host", func(t *testing.T, o *Options) { o.Server = "http://" }, "with a host"},
		{"server with query", func(t *testing.T, o *Options) { o.Server = "http://h:8080/?x=1" }, "without user, query"},
		{"timeout negative", func(t *testing.T, o *Options) { o.Timeout = -5 }, "--timeout -5"},
		{"timeout too long", func(t *testing.T, o *Options) { o.Timeout = 4000 }, "--timeout 4000"},
		{"kernel missing", func(t *testing.T, o *Options) { o.Kernel = filepath.Join(filepath.Dir(o.Output), "nope") }, "kernel: "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := buildOptions(t)
			dir := filepath.Dir(o.Output)
			tt.change(t, &o)
			before, _ := os.ReadDir(dir)
			_, err := Build(o)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Build = %v; want an error saying %q", err, tt.want)
			}
			if after, _ := os.ReadDir(dir); len(after) != len(before) {
				t.Errorf("Build refused (%v) but left files in %s: %v", err, dir, after)
			}
		})
	}
}

// TestBuildAcceptsGoodInputs: the same quick build with sound inputs makes
// the ISO: the image read whole and its sha256 on the medium, a Medusa
// version tag normalized, the default timeout for 0, an https server.
func TestBuildAcceptsGoodInputs(t *testing.T) {
	o := buildOptions(t)
	sum := fileSHA(t, o.Image)
	os.WriteFile(medium.SumName(o.Image), medium.FormatSum(sum, medium.ImageGzip), 0o644)
	o.Version, o.Server = "CLONE_1_19", "https://clone.example:8443/base"
	s, err := Build(o)
	if err != nil {
		t.Fatal(err)
	}
	if s.ImageSHA256 != sum || s.Version != "1.19" || s.Label != "CLONECD_1_19" {
		t.Errorf("Build = sha256 %s, version %q, label %q; want %s, 1.19, CLONECD_1_19", s.ImageSHA256, s.Version, s.Label, sum)
	}
	if st, err := os.Stat(o.Output); err != nil || st.Size() != s.Size {
		t.Errorf("ISO %s: %v", o.Output, err)
	}
}

// TestBuildZstd: a CD built from a zstd image carries it as node.cpio.zst
// with its .sha256, lists it in MANIFEST, and holds no node.cpio.gz.
func TestBuildZstd(t *testing.T) {
	testenv.NeedTools(t, "zstd", "xorriso")
	o := buildOptions(t)
	zst := filepath.Join(filepath.Dir(o.Image), "golden.cpio.zst")
	testenv.Run(t, "sh", "-c", "gzip -dc "+o.Image+" | zstd -q -T0 > "+zst)
	o.Image = zst
	s, err := Build(o)
	if err != nil {
		t.Fatal(err)
	}
	sum := fileSHA(t, zst)
	if s.ImageName != medium.ImageZstd || s.ImageSHA256 != sum {
		t.Errorf("Build(zstd image) = image %s sha256 %s; want %s %s", s.ImageName, s.ImageSHA256, medium.ImageZstd, sum)
	}
	out := t.TempDir()
	testenv.Run(t, "xorriso", "-osirrox", "on", "-indev", o.Output, "-extract", "/", out)
	if got := fileSHA(t, filepath.Join(out, medium.ImageZstd)); got != sum {
		t.Errorf("the CD's %s has sha256 %s; want %s", medium.ImageZstd, got, sum)
	}
	if b, err := os.ReadFile(filepath.Join(out, medium.SumName(medium.ImageZstd))); err != nil || string(b) != string(medium.FormatSum(sum, medium.ImageZstd)) {
		t.Errorf("the CD's %s = %q, %v", medium.SumName(medium.ImageZstd), b, err)
	}
	if _, err := os.Stat(filepath.Join(out, medium.ImageGzip)); err == nil {
		t.Errorf("the CD of a zstd image has a %s", medium.ImageGzip)
	}
	f, err := os.Open(filepath.Join(out, medium.ManifestFile))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	m, err := medium.ParseManifest(f)
	if err != nil {
		t.Fatal(err)
	}
	if img, ok := m.Image(); !ok || img.Name != medium.ImageZstd || img.SHA256 != sum {
		t.Errorf("MANIFEST's image = %+v, %v; want %s with sha256 %s", img, ok, medium.ImageZstd, sum)
	}
}
