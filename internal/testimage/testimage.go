// Package testimage writes tiny but real clone images for tests: a gzip'd
// cpio archive that image.Check accepts, so tests of publish, the store
// and the commands need no golden root.
package testimage

import (
	"bytes"
	"compress/gzip"
	"os"
	"path/filepath"
	"testing"

	"github.com/clonecd/clonecd/cpio"
)

// Write writes DIR/CONTENT.cpio.gz: one file, "content", holding
// content, so that images with different content differ.
func Write(t testing.TB, dir, content string) string {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
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
	p := filepath.Join(dir, content+".cpio.gz")
	if err := os.WriteFile(p, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}
