package cpio

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
)

// Reader reads a newc or crc archive from an io.Reader as a stream. Next
// returns the next header; Read reads its data. crc checksums are verified
// when an entry's data has been read or skipped.
type Reader struct {
	r         *bufio.Reader
	off       int64 // bytes consumed
	hdr       *Header
	remaining int64
	pad       int64
	crc       bool
	sum       uint32
	err       error
	done      bool
	raw       [headerLen]byte
}

// NewReader returns a Reader reading from r, through r itself when it is
// a bufio.Reader of at least 4 KiB: data reads larger than its buffer go
// straight to the reader under it (one copy less), so a small buffer
// suits a caller that reads whole files.
func NewReader(r io.Reader) *Reader {
	br, ok := r.(*bufio.Reader)
	if !ok || br.Size() < 4<<10 {
		br = bufio.NewReaderSize(r, 256<<10)
	}
	return &Reader{r: br}
}

// Offset returns the number of archive bytes consumed so far.
func (r *Reader) Offset() int64 { return r.off }

// Error is a reading error tied to an entry of the archive.
type Error struct {
	Name   string // entry name, "" when the header itself is bad
	Offset int64  // byte offset of the entry's header
	Err    error
}

func (e *Error) Error() string {
	if e.Name == "" {
		return fmt.Sprintf("cpio: header at offset %d: %v", e.Offset, e.Err)
	}
	return fmt.Sprintf("cpio: entry %q at offset %d: %v", e.Name, e.Offset, e.Err)
}

func (e *Error) Unwrap() error { return e.Err }

func (r *Reader) entryErr(h *Header, off int64, err error) error {
	e := &Error{Offset: off, Err: err}
	if h != nil {
		e.Name = h.Name
	}
	return e
}

// truncated describes a read error: "truncated WHAT" for an early end,
// "reading WHAT" for others.
func truncated(what string, err error) error {
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("truncated %s: %w", what, err)
	}
	return fmt.Errorf("reading %s: %w", what, err)
}

// skip discards the rest of the current entry, checking its checksum.
func (r *Reader) skip() error {
	if r.hdr == nil {
		return nil
	}
	if r.remaining > 0 {
		if r.crc {
			if _, err := io.Copy(io.Discard, readerOnly{r}); err != nil {
				return err
			}
		} else {
			n, err := r.r.Discard(int(min(r.remaining, 1<<62)))
			r.off += int64(n)
			r.remaining -= int64(n)
			if err != nil {
				r.err = r.entryErr(r.hdr, r.hdr.Offset, truncated("data", err))
				return r.err
			}
		}
	}
	if r.err != nil {
		return r.err
	}
	if r.pad > 0 {
		n, err := r.r.Discard(int(r.pad))
		r.off += int64(n)
		if err != nil {
			r.err = r.entryErr(r.hdr, r.hdr.Offset, truncated("padding", err))
			return r.err
		}
		r.pad = 0
	}
	r.hdr = nil
	return nil
}

type readerOnly struct{ r *Reader }

func (o readerOnly) Read(p []byte) (int, error) { return o.r.Read(p) }

// badMagic returns nil when b, the first bytes of a header, may start a
// newc or crc header. At offset 0 the data is not a cpio archive at all
// (ErrNotArchive, naming the older cpio formats); further on the archive
// is damaged (ErrHeader).
func badMagic(b []byte, off int64) error {
	m := b[:min(len(b), 6)]
	if bytes.HasPrefix([]byte("070701"), m) || bytes.HasPrefix([]byte("070702"), m) {
		return nil
	}
	if off > 0 {
		return fmt.Errorf("%w: bad magic %q (not a newc/crc header)", ErrHeader, m)
	}
	switch {
	case string(m) == "070707":
		return fmt.Errorf("%w in the newc or crc format: it is the old portable format (odc, 070707); repack it with cpio -H newc", ErrNotArchive)
	case len(b) >= 2 && (b[0] == 0xc7 && b[1] == 0x71 || b[0] == 0x71 && b[1] == 0xc7):
		return fmt.Errorf("%w in the newc or crc format: it is the old binary format; repack it with cpio -H newc", ErrNotArchive)
	}
	return fmt.Errorf("%w (it starts with %q)", ErrNotArchive, b[:min(len(b), 16)])
}

func parseHex(b []byte) (uint32, bool) {
	var v uint32
	for _, c := range b {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c -= 'a' - 10
		case 'A' <= c && c <= 'F':
			c -= 'A' - 10
		default:
			return 0, false
		}
		v = v<<4 | uint32(c)
	}
	return v, true
}

var fieldNames = [...]string{"ino", "mode", "uid", "gid", "nlink", "mtime", "filesize",
	"devmajor", "devminor", "rdevmajor", "rdevminor", "namesize", "check"}

// Next skips the rest of the current entry and returns the next header.
// It returns io.EOF after the trailer.
func (r *Reader) Next() (*Header, error) {
	if r.err != nil {
		return nil, r.err
	}
	if r.done {
		return nil, io.EOF
	}
	if err := r.skip(); err != nil {
		return nil, err
	}
	off := r.off
	n, err := io.ReadFull(r.r, r.raw[:])
	r.off += int64(n)
	if n > 0 {
		if merr := badMagic(r.raw[:n], off); merr != nil {
			r.err = r.entryErr(nil, off, merr)
			return nil, r.err
		}
	}
	if err != nil {
		if err == io.EOF && off == 0 {
			r.err = fmt.Errorf("cpio: empty archive (no trailer)")
		} else if err == io.EOF {
			r.err = fmt.Errorf("cpio: archive ends at offset %d without a trailer: %w", off, io.ErrUnexpectedEOF)
		} else {
			r.err = r.entryErr(nil, off, truncated("header", err))
		}
		return nil, r.err
	}
	h := &Header{Offset: off}
	if r.raw[5] == '2' {
		h.Format = CRC
	}
	var f [13]uint32
	for i := range f {
		v, ok := parseHex(r.raw[6+8*i : 14+8*i])
		if !ok {
			r.err = r.entryErr(nil, off, fmt.Errorf("%w: %s field %q is not hex", ErrHeader, fieldNames[i], r.raw[6+8*i:14+8*i]))
			return nil, r.err
		}
		f[i] = v
	}
	h.Ino, h.Mode, h.Uid, h.Gid, h.Nlink = f[0], f[1], int(f[2]), int(f[3]), int(f[4])
	h.Mtime, h.Size = int64(f[5]), int64(f[6])
	h.Devmajor, h.Devminor, h.Rdevmajor, h.Rdevminor = f[7], f[8], f[9], f[10]
	namesize := int64(f[11])
	h.Checksum = f[12]
	if namesize == 0 || namesize > maxNameLen {
		r.err = r.entryErr(nil, off, fmt.Errorf("%w: name size %d", ErrHeader, namesize))
		return nil, r.err
	}
	namePad := (4 - (headerLen+namesize)%4) % 4
	name := make([]byte, namesize+namePad)
	n, err = io.ReadFull(r.r, name)
	r.off += int64(n)
	if err != nil {
		r.err = r.entryErr(nil, off, truncated("name", err))
		return nil, r.err
	}
	name = name[:namesize]
	if name[namesize-1] != 0 {
		r.err = r.entryErr(nil, off, fmt.Errorf("%w: name not NUL-terminated", ErrHeader))
		return nil, r.err
	}
	name = name[:namesize-1]
	if i := bytes.IndexByte(name, 0); i >= 0 {
		h.Ext = name[i+1:]
		name = name[:i]
	}
	h.Name = string(name)
	if h.Name == "" {
		r.err = r.entryErr(nil, off, fmt.Errorf("%w: empty name", ErrHeader))
		return nil, r.err
	}
	if h.Name == Trailer {
		r.done = true
		return nil, io.EOF
	}
	if h.Format == CRC && h.Type() != TypeReg && h.Type() != TypeSymlink && h.Checksum != 0 && h.Size == 0 {
		r.err = r.entryErr(h, off, fmt.Errorf("%w: checksum %08x on an entry without data", ErrChecksum, h.Checksum))
		return nil, r.err
	}
	r.hdr = h
	r.remaining = h.Size
	r.pad = (4 - h.Size%4) % 4
	// GNU cpio sums regular files only (symlinks get 0).
	r.crc = h.Format == CRC && (h.Type() == TypeReg || h.Checksum != 0)
	r.sum = 0
	if h.Type() == TypeSymlink {
		if h.Size > maxLinkLen {
			r.err = r.entryErr(h, off, fmt.Errorf("%w: symlink target of %d bytes", ErrHeader, h.Size))
			return nil, r.err
		}
		target, err := io.ReadAll(readerOnly{r})
		if err != nil {
			return nil, err
		}
		h.Linkname = string(target)
	}
	return h, nil
}

// Read reads data of the current entry. At the end of the data it returns
// io.EOF, or an error if a crc checksum does not match.
func (r *Reader) Read(p []byte) (int, error) {
	if r.err != nil {
		return 0, r.err
	}
	if r.hdr == nil || r.remaining == 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > r.remaining {
		p = p[:r.remaining]
	}
	n, err := r.r.Read(p)
	r.off += int64(n)
	r.remaining -= int64(n)
	if r.crc {
		r.sum = Sum(r.sum, p[:n])
	}
	if r.remaining == 0 {
		if r.crc && r.sum != r.hdr.Checksum {
			r.err = r.entryErr(r.hdr, r.hdr.Offset, fmt.Errorf("%w: data sums to %08x, header says %08x", ErrChecksum, r.sum, r.hdr.Checksum))
			return n, r.err
		}
		return n, nil
	}
	if err != nil {
		r.err = r.entryErr(r.hdr, r.hdr.Offset, dataErr(r.remaining, r.hdr.Size, err))
		return n, r.err
	}
	return n, nil
}

// WriteTo copies the current entry's data to w (used by io.Copy).
func (r *Reader) WriteTo(w io.Writer) (int64, error) {
	var total int64
	for r.hdr != nil && r.remaining > 0 && r.err == nil {
		chunk := min(r.remaining, int64(r.r.Size()))
		b, err := r.r.Peek(int(chunk))
		if len(b) == 0 && err != nil {
			r.err = r.entryErr(r.hdr, r.hdr.Offset, dataErr(r.remaining, r.hdr.Size, err))
			return total, r.err
		}
		n, werr := w.Write(b)
		r.r.Discard(n)
		r.off += int64(n)
		r.remaining -= int64(n)
		total += int64(n)
		if r.crc {
			r.sum = Sum(r.sum, b[:n])
		}
		if werr != nil {
			return total, werr
		}
		if r.remaining == 0 && r.crc && r.sum != r.hdr.Checksum {
			r.err = r.entryErr(r.hdr, r.hdr.Offset, fmt.Errorf("%w: data sums to %08x, header says %08x", ErrChecksum, r.sum, r.hdr.Checksum))
			return total, r.err
		}
	}
	return total, r.err
}

func dataErr(missing, size int64, err error) error {
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("truncated data (%d of %d bytes missing): %w", missing, size, err)
	}
	return fmt.Errorf("reading data: %w", err)
}
