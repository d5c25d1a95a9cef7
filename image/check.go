package image

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/clonecd/clonecd/cpio"
)

// CheckResult describes an image Check read to its end.
type CheckResult struct {
	Compression Compression // by the magic: pick the medium's name with Compression.ImageName
	SHA256      string      // of the image's bytes as stored (compressed)
	Size        int64       // compressed bytes
	Entries     int         // cpio entries before the trailer
	Data        int64       // bytes of file data in the archive
}

// Check reads a whole image from r and accepts it only when it is sound:
// gzip or zstd by its magic (or a plain archive), decompressing to its end
// with its checksums right (gzip's CRC and length, zstd's frame checksums),
// a cpio archive well formed up to its trailer with every entry's data
// present, and nothing but padding after the trailer. build and publish
// run it before an image becomes a CD or a version, so that a random or
// truncated file never reaches a node. Unpack and Verify read an image by
// the same rules (the stream type below), so that what Check accepts they
// restore, and what it refuses they refuse.
func Check(r io.Reader) (*CheckResult, error) {
	h := sha256.New()
	cnt := &countWriter{}
	s, err := openStream(io.TeeReader(r, io.MultiWriter(h, cnt)))
	if err != nil {
		return nil, err
	}
	defer s.Close()
	res := &CheckResult{Compression: s.comp}
	for {
		hdr, err := s.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		res.Entries++
		n, err := io.Copy(io.Discard, onlyReader{s.cr})
		res.Data += n
		if err != nil {
			return nil, entryError(hdr, err)
		}
	}
	if err := s.End(); err != nil {
		return nil, err
	}
	res.Size = cnt.n
	res.SHA256 = hex.EncodeToString(h.Sum(nil))
	return res, nil
}

// CheckFile is Check on the image file at path; errors name the file.
func CheckFile(path string) (*CheckResult, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	res, err := Check(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return res, nil
}

type countWriter struct{ n int64 }

func (c *countWriter) Write(p []byte) (int, error) { c.n += int64(len(p)); return len(p), nil }

// stream reads one image as Check, Unpack and Verify all do: the
// compression by its magic, the cpio entries (Next, then read the entry's
// data from cr), and with End what follows the trailer, to the end of the
// compressed stream.
type stream struct {
	comp Compression
	rc   io.ReadCloser
	br   *bufio.Reader // shared with cr: End reads on after the trailer
	cr   *cpio.Reader
	n    int // headers read
}

func openStream(r io.Reader) (*stream, error) {
	rc, c, err := decompress(r)
	if err != nil {
		return nil, err
	}
	br := bufio.NewReaderSize(rc, streamBuf)
	return &stream{comp: c, rc: rc, br: br, cr: cpio.NewReader(br)}, nil
}

// Next returns the next entry's header, io.EOF after the trailer. Data
// that is not a cpio archive at all is named with its compression
// ("gzip'd data, but not a cpio archive").
func (s *stream) Next() (*cpio.Header, error) {
	h, err := s.cr.Next()
	if err != nil && err != io.EOF && s.n == 0 && errors.Is(err, cpio.ErrNotArchive) {
		return nil, fmt.Errorf("%s: %w", s.describe(), err)
	}
	s.n++
	return h, err
}

func (s *stream) describe() string {
	switch s.comp {
	case Gzip:
		return "gzip'd data"
	case Zstd:
		return "zstd data"
	}
	return "uncompressed data"
}

// End reads what follows the trailer: only the zero padding GNU cpio and
// the kernel write (to a 512-byte block), then the end of the compressed
// stream, whose checksums are verified on the way. A second archive
// (an initramfs with early microcode) is refused here too.
func (s *stream) End() error {
	var buf [32 << 10]byte
	off := s.cr.Offset()
	for {
		n, err := s.br.Read(buf[:])
		for i, b := range buf[:n] {
			if b != 0 {
				return fmt.Errorf("data after the cpio trailer at offset %d (an image holds one archive)", off+int64(i))
			}
		}
		off += int64(n)
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("after the cpio trailer: %w", err)
		}
	}
}

func (s *stream) Close() error { return s.rc.Close() }

// entryError names the entry an error happened in, unless the cpio
// reader already did.
func entryError(h *cpio.Header, err error) error {
	var ce *cpio.Error
	if errors.As(err, &ce) {
		return err
	}
	return fmt.Errorf("entry %q at offset %d: %w", h.Name, h.Offset, err)
}

type onlyReader struct{ r io.Reader }

func (o onlyReader) Read(p []byte) (int, error) { return o.r.Read(p) }

// streamBuf is the buffer headers are read through. Small, so that file
// data (read in larger pieces) goes from the decompressor straight into
// the caller's buffer, one copy less.
var streamBuf = 16 << 10
