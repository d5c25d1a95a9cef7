package image

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/clonecd/clonecd/cpio"
	"github.com/clonecd/clonecd/internal/testenv"
)

// compress compresses raw as Pack would (one thread).
func compress(t testing.TB, c Compression, raw []byte) []byte {
	t.Helper()
	var b bytes.Buffer
	w, err := compressor(&b, c, 0, 1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(raw); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// gzStored is gzip without compression: a flipped data byte decodes
// without error, and only the CRC at the end can tell.
func gzStored(raw []byte) []byte {
	var b bytes.Buffer
	w, _ := gzip.NewWriterLevel(&b, gzip.NoCompression)
	w.Write(raw)
	w.Close()
	return b.Bytes()
}

// says reports whether err says one of the |-separated texts in want.
func says(err error, want string) bool {
	if err == nil {
		return false
	}
	for _, w := range strings.Split(want, "|") {
		if strings.Contains(err.Error(), w) {
			return true
		}
	}
	return false
}

func flip(b []byte, i int) []byte {
	b = append([]byte(nil), b...)
	if i < 0 {
		i += len(b)
	}
	b[i] ^= 0x40
	return b
}

// damaged are images each reader must refuse, for both compressions,
// with what the error must say. The trailer of the compressed stream
// (gzip's CRC, zstd's frame checksum) comes after the cpio trailer: only
// a reader that reads to the end sees it.
func damaged(t testing.TB) (good map[Compression][]byte, bad []struct {
	name, want string
	in         []byte
}) {
	// 256 KiB that compress to several zstd blocks and deflate blocks
	motdText := strings.Repeat("hello cluster ", 1000) + fmt.Sprintf("%x", sha256.Sum256(nil))
	for len(motdText) < 256<<10 {
		motdText += fmt.Sprintf("%x", sha256.Sum256([]byte(motdText[len(motdText)-64:])))
	}
	raw := rawArchive(t, cpio.Newc, dirEnt("etc"), reg("etc/motd", motdText))
	good = map[Compression][]byte{Gzip: gz(raw), Zstd: compress(t, Zstd, raw), None: raw}
	stored := gzStored(raw)
	motd := bytes.Index(stored, []byte("hello cluster"))
	add := func(name, want string, in []byte) {
		bad = append(bad, struct {
			name, want string
			in         []byte
		}{name, want, in})
	}
	for _, c := range []Compression{Gzip, Zstd} {
		g := good[c]
		add(c.String()+"/truncated", `entry "etc/motd" at offset 116: truncated data`, g[:len(g)/2])
		// wrong output or a decoding error, named by entry and offset
		add(c.String()+"/flipped byte", "at offset|"+c.String()+": ", flip(g, len(g)/2))
		add(c.String()+"/stream trailer", c.String()+": ", flip(g, -3)) // CRC32 / xxhash of the data
		add(c.String()+"/garbage after", c.String()+": ", append(append([]byte(nil), g...), "garbage"...))
	}
	add("gzip/stored, data byte", "gzip: ", flip(stored, motd+5))
	add("gzip/stored, padding byte", "data after the cpio trailer at offset", flip(stored, len(stored)-8-20))
	add("plain/garbage after", "data after the cpio trailer at offset", append(append([]byte(nil), raw...), "extra!"...))
	add("random", "uncompressed data: cpio: header at offset 0: not a cpio archive", bytes.Repeat([]byte{0x5a, 0x17}, 4096))
	add("gzip'd text", `gzip'd data: cpio: header at offset 0: not a cpio archive (it starts with "hello world\n")`, gz([]byte("hello world\n")))
	add("zstd text", `zstd data: cpio: header at offset 0: not a cpio archive`, compress(t, Zstd, []byte("hello world\n")))
	add("empty", "image is empty", nil)
	return good, bad
}

// TestCheck: a sound image passes in every compression; each kind of
// damage a build or publish must refuse is named.
func TestCheck(t *testing.T) {
	good, bad := damaged(t)
	for c, in := range good {
		res, err := Check(bytes.NewReader(in))
		if err != nil || res.Entries != 2 || res.Size != int64(len(in)) || res.Compression != c {
			t.Errorf("Check(good %s) = %+v, %v; want 2 entries, %d bytes, %s", c, res, err, len(in), c)
		}
	}
	for _, c := range bad {
		if _, err := Check(bytes.NewReader(c.in)); !says(err, c.want) {
			t.Errorf("Check(%s) = %v; want an error with %q", c.name, err, c.want)
		}
	}
}

// TestReadersReadToEnd: Unpack and Verify refuse what Check refuses, a
// flipped byte after the cpio trailer included, and the error names the
// image.
func TestReadersReadToEnd(t *testing.T) {
	_, bad := damaged(t)
	for _, c := range bad {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			img := filepath.Join(dir, "node.img")
			if err := os.WriteFile(img, c.in, 0o600); err != nil {
				t.Fatal(err)
			}
			out := filepath.Join(dir, "out")
			_, err := UnpackFile(img, out, UnpackOptions{})
			if !says(err, c.want) || !strings.HasPrefix(err.Error(), img+": ") {
				t.Errorf("UnpackFile = %v; want an error naming %s, with %q", err, img, c.want)
			}
			os.MkdirAll(out, 0o755)
			if _, err := Verify(bytes.NewReader(c.in), out, VerifyOptions{}); !says(err, c.want) {
				t.Errorf("Verify = %v; want an error with %q", err, c.want)
			}
		})
	}
}

// TestUnsupportedCompression: xz, bzip2, lz4 and lzop images are named
// and refused before DIR is created.
func TestUnsupportedCompression(t *testing.T) {
	raw := rawArchive(t, cpio.Newc, reg("a", "b"))
	for _, tool := range []string{"xz", "bzip2", "lz4", "lzop"} {
		t.Run(tool, func(t *testing.T) {
			if _, err := exec.LookPath(tool); err != nil {
				testenv.Missing(t, "%s not installed", tool)
			}
			cmd := exec.Command(tool, "-c")
			cmd.Stdin = bytes.NewReader(raw)
			in, err := cmd.Output()
			if err != nil {
				t.Fatalf("%s -c: %v", tool, err)
			}
			dir := filepath.Join(t.TempDir(), "out")
			_, err = Unpack(bytes.NewReader(in), dir, UnpackOptions{})
			name := map[string]string{"lz4": "lz4"}[tool]
			if name == "" {
				name = tool
			}
			if !errors.Is(err, ErrUnsupported) || !strings.Contains(err.Error(), name+"-compressed") {
				t.Errorf("Unpack(%s image) = %v; want %s named as unsupported", tool, err, tool)
			}
			if _, err := os.Stat(dir); err == nil {
				t.Errorf("Unpack(%s image) created %s", tool, dir)
			}
		})
	}
}
