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
	SHA256  string // of the image's bytes as stored (compressed)
	Size    int64  // compressed bytes
	Entries int    // cpio entries before the trailer
	Data    int64  // bytes of file data in the archive
}

// Check reads a whole image from r and accepts it only when it is sound:
// the compressed stream decompresses to its end with its checksums right
// (gzip's CRC and length), the cpio archive is well formed up to its
// trailer with every entry's data present, and nothing but padding follows
// the trailer. build and publish run it before an image becomes a CD or a
// version, so that a random or truncated file never reaches a node.
func Check(r io.Reader) (*CheckResult, error) {
	h := sha256.New()
	cnt := &countWriter{}
	rc, err := Decompress(io.TeeReader(r, io.MultiWriter(h, cnt)))
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	res := &CheckResult{}
	br := bufio.NewReaderSize(rc, 256<<10) // shared with cpio, read on after the trailer
	cr := cpio.NewReader(br)
	for {
		hdr, err := cr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		res.Entries++
		n, err := io.Copy(io.Discard, cr)
		res.Data += n
		if err != nil {
			return nil, fmt.Errorf("entry %q at offset %d: %w", hdr.Name, hdr.Offset, err)
		}
	}
	// After the trailer: only the zero padding GNU cpio and the kernel
	// write (to a 512-byte block), then the end of the compressed stream,
	// whose checksum is verified on the way.
	var buf [32 << 10]byte
	for {
		n, err := br.Read(buf[:])
		for _, b := range buf[:n] {
			if b != 0 {
				return nil, fmt.Errorf("data after the cpio trailer at offset %d", cr.Offset())
			}
		}
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("after the cpio trailer: %w", err)
		}
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
