package image

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"runtime"
	"strings"

	"github.com/klauspost/compress/zstd"
	"github.com/klauspost/pgzip"

	"github.com/clonecd/clonecd/medium"
)

// Compression is how an image's cpio archive is compressed. Readers tell
// them apart by their magic bytes, never by the file name.
type Compression int

const (
	// Gzip is the default: the Medusa format, and what GNU cpio and
	// every initramfs tool read.
	Gzip Compression = iota
	// Zstd restores about twice as fast, in fewer bytes (docs/image.md).
	Zstd
	// None is a plain cpio archive.
	None
)

func (c Compression) String() string {
	switch c {
	case Gzip:
		return "gzip"
	case Zstd:
		return "zstd"
	case None:
		return "none"
	}
	return fmt.Sprintf("compression(%d)", int(c))
}

// ParseCompression maps "gzip" (or ""), "zstd" and "none" to a Compression.
func ParseCompression(s string) (Compression, error) {
	switch s {
	case "gzip", "gz", "":
		return Gzip, nil
	case "zstd", "zst":
		return Zstd, nil
	case "none":
		return None, nil
	}
	return Gzip, fmt.Errorf("unknown compression %q (want gzip or zstd)", s)
}

// ImageName is the medium's name for an image in this compression
// (medium.ImageGzip, medium.ImageZstd); "" for None.
func (c Compression) ImageName() string {
	switch c {
	case Gzip:
		return medium.ImageGzip
	case Zstd:
		return medium.ImageZstd
	}
	return ""
}

// DefaultLevel is the level Pack uses when PackOptions.Level is 0: gzip's
// own default, and for zstd the level measured to match `zstd -T0 -3` in
// size at less time (docs/image.md).
func (c Compression) DefaultLevel() int {
	if c == Zstd {
		return 3
	}
	return 6
}

// CheckLevel reports whether level is valid for c: 0 (the default), gzip
// 1-9, zstd 1-19 (as zstd(1) numbers them).
func (c Compression) CheckLevel(level int) error {
	hi := 9
	switch c {
	case Zstd:
		hi = 19
	case None:
		hi = 0
	}
	if level < 0 || level > hi {
		if hi == 0 {
			return fmt.Errorf("level %d: an uncompressed image has no level", level)
		}
		return fmt.Errorf("%s level %d: want 1-%d", c, level, hi)
	}
	return nil
}

// The magic numbers of compressed streams.
var (
	magicGzip = []byte{0x1f, 0x8b}
	magicZstd = []byte{0x28, 0xb5, 0x2f, 0xfd}
	// others, to name them in the refusal
	unsupported = []struct {
		magic []byte
		name  string
		tool  string
	}{
		{[]byte{0xfd, '7', 'z', 'X', 'Z', 0}, "xz", "xz -dc"},
		{[]byte("BZh"), "bzip2", "bzip2 -dc"},
		{[]byte{0x04, 0x22, 0x4d, 0x18}, "lz4", "lz4 -dc"},
		{[]byte{0x02, 0x21, 0x4c, 0x18}, "lz4 (legacy)", "lz4 -dc"},
		{[]byte{0x89, 'L', 'Z', 'O'}, "lzop", "lzop -dc"},
		{[]byte{0x5d, 0, 0}, "lzma", "xz --format=lzma -dc"},
	}
)

// isZstd reports whether b starts a zstd frame or a skippable frame
// (0x184D2A50-5F, which zstd(1) and the decoder pass over).
func isZstd(b []byte) bool {
	if bytes.HasPrefix(b, magicZstd) {
		return true
	}
	return len(b) >= 4 && b[0]&0xf0 == 0x50 && b[1] == 0x2a && b[2] == 0x4d && b[3] == 0x18
}

// ErrUnsupported is a compressed stream in a format images do not use.
var ErrUnsupported = errors.New("compression not supported")

// sniff peeks at the start of br and names its compression.
func sniff(br *bufio.Reader) (Compression, error) {
	magic, err := br.Peek(6)
	if len(magic) == 0 {
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			return None, errors.New("image is empty")
		}
		return None, err
	}
	switch {
	case bytes.HasPrefix(magic, magicGzip):
		return Gzip, nil
	case isZstd(magic):
		return Zstd, nil
	}
	for _, u := range unsupported {
		if bytes.HasPrefix(magic, u.magic) {
			return None, fmt.Errorf("%s-compressed: %w: images are gzip or zstd (decompress it first: %s IMAGE | clonecd unpack - DIR)",
				u.name, ErrUnsupported, u.tool)
		}
	}
	return None, nil
}

// zstdMaxWindow bounds the memory a zstd frame can make the decoder take:
// zstd(1) itself refuses windows over 128 MiB unless told (--long, --memory).
const zstdMaxWindow = 128 << 20

// Decompress returns a reader of the archive in r, decompressed by its
// magic: gzip (all members), zstd (all frames), else r itself. xz, bzip2,
// lz4, lzop and lzma are refused by name (ErrUnsupported). Decompression
// errors name the format ("zstd: ..."); checksums (gzip's CRC and length,
// zstd's frame checksum) are verified as the end of each member or frame
// is read, so read to io.EOF. Close releases the decoder's goroutines.
func Decompress(r io.Reader) (io.ReadCloser, error) {
	rc, _, err := decompress(r)
	return rc, err
}

func decompress(r io.Reader) (io.ReadCloser, Compression, error) {
	br := bufio.NewReaderSize(r, 1<<20)
	c, err := sniff(br)
	if err != nil {
		return nil, c, err
	}
	switch c {
	case Gzip:
		gz, err := pgzip.NewReaderN(br, 1<<20, 8)
		if err != nil {
			return nil, c, fmt.Errorf("gzip: %w", err)
		}
		gz.Multistream(true)
		return namedReader{gz, "gzip", gz.Close}, c, nil
	case Zstd:
		zr, err := zstd.NewReader(br, zstd.WithDecoderConcurrency(min(4, runtime.GOMAXPROCS(0))),
			zstd.WithDecoderMaxWindow(zstdMaxWindow), zstd.WithDecoderLowmem(false))
		if err != nil {
			return nil, c, fmt.Errorf("zstd: %w", err)
		}
		return namedReader{zr, "zstd", func() error { zr.Close(); return nil }}, c, nil
	}
	return io.NopCloser(br), c, nil
}

// namedReader prefixes decompression errors with the format's name.
type namedReader struct {
	r     io.Reader
	name  string
	close func() error
}

func (n namedReader) Read(p []byte) (int, error) {
	k, err := n.r.Read(p)
	if err != nil && err != io.EOF && !strings.HasPrefix(err.Error(), n.name+": ") {
		err = fmt.Errorf("%s: %w", n.name, err)
	}
	return k, err
}

func (n namedReader) Close() error { return n.close() }

// compressor returns a writer compressing to w with c at level (0: the
// default) on threads goroutines (0: one per CPU).
func compressor(w io.Writer, c Compression, level, threads int) (io.WriteCloser, error) {
	if err := c.CheckLevel(level); err != nil {
		return nil, err
	}
	if level == 0 {
		level = c.DefaultLevel()
	}
	if threads <= 0 {
		threads = runtime.GOMAXPROCS(0)
	}
	switch c {
	case Gzip:
		gz, err := pgzip.NewWriterLevel(w, level)
		if err != nil {
			return nil, fmt.Errorf("gzip level %d: %w", level, err)
		}
		if err := gz.SetConcurrency(1<<20, 2*threads); err != nil {
			return nil, err
		}
		return gz, nil
	case Zstd:
		zw, err := zstd.NewWriter(w, zstd.WithEncoderLevel(zstd.EncoderLevelFromZstd(level)),
			zstd.WithEncoderConcurrency(threads), zstd.WithConcurrentBlocks(threads > 1))
		if err != nil {
			return nil, fmt.Errorf("zstd level %d: %w", level, err)
		}
		return zw, nil
	}
	return nopWriteCloser{bufio.NewWriterSize(w, 1<<20)}, nil
}

type nopWriteCloser struct{ *bufio.Writer }

func (n nopWriteCloser) Close() error { return n.Flush() }
