package testimage

import (
	"bytes"
	"compress/gzip"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/klauspost/compress/zstd"

	"github.com/clonecd/clonecd/cpio"
)

// Write writes DIR/CONTENT.cpio.gz: one file, "content", holding
// content, so that images with different content differ.
func Write(t testing.TB, dir, content string) string {
	t.Helper()
	return write(t, filepath.Join(dir, content+".cpio.gz"), content, func(w io.Writer) (io.WriteCloser, error) {
		return gzip.NewWriter(w), nil
	})
}

// WriteZstd is Write in zstd: DIR/CONTENT.cpio.zst.
func WriteZstd(t testing.TB, dir, content string) string {
	t.Helper()
	return write(t, filepath.Join(dir, content+".cpio.zst"), content, func(w io.Writer) (io.WriteCloser, error) {
		return zstd.NewWriter(w)
	})
}

func write(t testing.TB, p, content string, compress func(io.Writer) (io.WriteCloser, error)) string {
	t.Helper()
	var buf bytes.Buffer
	zw, err := compress(&buf)
	if err != nil {
		t.Fatal(err)
	}
	cw := cpio.NewWriter(zw)
	data := []byte(content + "\n")
	if err := cw.WriteHeader(&cpio.Header{Name: "content", Mode: cpio.TypeReg | 0o644, Nlink: 1, Size: int64(len(data))}); err != nil {
		t.Fatal(err)
	}
	if _, err := cw.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := cw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}
