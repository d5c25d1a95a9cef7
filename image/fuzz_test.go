package image

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/clonecd/clonecd/cpio"
)

// FuzzUnpack: whatever the image, gzip'd, zstd'd or plain, Unpack never
// writes outside DIR and never panics. A plain input is also tried
// zstd'd, so that archives behind a valid zstd stream are fuzzed too.
// The committed corpus (testdata/fuzz/FuzzUnpack) holds newc, crc and GNU
// archives, gzip and zstd images, truncated ones, an xattr record.
func FuzzUnpack(f *testing.F) {
	f.Add(rawArchive(f, cpio.Newc, sym("esc", "../outside"), reg("esc/passwd", "pwned")))
	f.Add(rawArchive(f, cpio.CRC, dirEnt("d"), reg("d/f", "x"), sym("d/l", "/"), reg("d/l/x", "y")))
	f.Add(rawArchive(f, cpio.Newc, ent{name: "a", mode: cpio.TypeReg | 0o644, nlink: 2, ino: 3},
		sym("a2", "../outside/passwd"), ent{name: "b", data: "data", mode: cpio.TypeReg | 0o644, nlink: 2, ino: 3}))
	f.Fuzz(func(t *testing.T, raw []byte) {
		unpackConfined(t, raw)
		if !bytes.HasPrefix(raw, magicGzip) && !isZstd(raw) {
			unpackConfined(t, compress(t, Zstd, raw))
		}
	})
}

// sandbox makes BASE/outside/passwd ("root") and an empty BASE/dir.
func sandbox(t *testing.T) (base, outside, dir string) {
	base = t.TempDir()
	outside = filepath.Join(base, "outside")
	dir = filepath.Join(base, "dir")
	os.Mkdir(outside, 0o755)
	os.Mkdir(dir, 0o755)
	os.WriteFile(filepath.Join(outside, "passwd"), []byte("root"), 0o644)
	return base, outside, dir
}

func unpackConfined(t *testing.T, img []byte) {
	base, outside, dir := sandbox(t)
	Unpack(bytes.NewReader(img), dir, UnpackOptions{NoChown: true})
	entries, _ := os.ReadDir(base)
	if len(entries) != 2 {
		t.Fatalf("written beside DIR: %v", entries)
	}
	entries, _ = os.ReadDir(outside)
	b, _ := os.ReadFile(filepath.Join(outside, "passwd"))
	if len(entries) != 1 || string(b) != "root" {
		t.Fatalf("outside changed: %v %q", entries, b)
	}
}
