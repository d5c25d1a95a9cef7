package cpio

import (
	"fmt"
	"io"
)

// Writer writes a cpio archive to an io.Writer, one entry at a time:
// WriteHeader, then Size bytes of data with Write, and Close at the end.
type Writer struct {
	w         io.Writer
	off       int64
	name      string
	remaining int64
	pad       int
	crc       bool
	sum, want uint32
	buf       []byte
	closed    bool
	format    Format
	err       error
}

// NewWriter returns a Writer writing to w. It does not buffer: give it a
// buffered or compressing writer.
func NewWriter(w io.Writer) *Writer {
	return &Writer{w: w, buf: make([]byte, 0, 512)}
}

// Offset returns the number of bytes written so far.
func (w *Writer) Offset() int64 { return w.off }

func (w *Writer) write(p []byte) error {
	if w.err != nil {
		return w.err
	}
	n, err := w.w.Write(p)
	w.off += int64(n)
	if err != nil {
		w.err = err
	}
	return err
}

var zeros [512]byte

// finish ends the current entry: checks that all data was written and the
// checksum matched, and writes the padding.
func (w *Writer) finish() error {
	if w.err != nil {
		return w.err
	}
	if w.remaining > 0 {
		w.err = fmt.Errorf("cpio: entry %q: %d bytes of data missing", w.name, w.remaining)
		return w.err
	}
	if w.crc && w.sum != w.want {
		w.err = fmt.Errorf("cpio: entry %q: data sums to %08x, header says %08x: %w", w.name, w.sum, w.want, ErrChecksum)
		return w.err
	}
	if w.pad > 0 {
		if err := w.write(zeros[:w.pad]); err != nil {
			return err
		}
		w.pad = 0
	}
	w.crc = false
	return nil
}

func checkField(name, field string, v int64) error {
	if v < 0 || v > MaxSize {
		return fmt.Errorf("cpio: entry %q: %s %d does not fit in a newc/crc header", name, field, v)
	}
	return nil
}

// WriteHeader ends the previous entry and writes h. A symlink with Size 0
// gets Linkname as its data. A Size of 4 GiB or more is ErrTooLarge.
func (w *Writer) WriteHeader(h *Header) error {
	if w.closed {
		return fmt.Errorf("cpio: write after Close")
	}
	if err := w.finish(); err != nil {
		return err
	}
	size := h.Size
	var body []byte
	if h.Mode&TypeMask == TypeSymlink && size == 0 && h.Linkname != "" {
		body = []byte(h.Linkname)
		size = int64(len(body))
	}
	if size > MaxSize {
		return fmt.Errorf("cpio: %s: %d bytes: %w", h.Name, size, ErrTooLarge)
	}
	for _, f := range []struct {
		n string
		v int64
	}{{"uid", int64(h.Uid)}, {"gid", int64(h.Gid)}, {"nlink", int64(h.Nlink)}, {"mtime", h.Mtime}, {"size", size}} {
		if err := checkField(h.Name, f.n, f.v); err != nil {
			return err
		}
	}
	if len(h.Name) == 0 {
		return fmt.Errorf("cpio: entry with an empty name")
	}
	namesize := len(h.Name) + 1
	if len(h.Ext) > 0 {
		namesize += len(h.Ext) + 1
	}
	if namesize > maxNameLen {
		return fmt.Errorf("cpio: entry %q: name field of %d bytes is too long", h.Name, namesize)
	}
	magic := "070701"
	check := uint32(0)
	if h.Format == CRC {
		magic = "070702"
		check = h.Checksum
		if body != nil {
			check = 0 // GNU cpio does not sum symlink targets
		}
	}
	b := append(w.buf[:0], magic...)
	for _, v := range []uint32{h.Ino, h.Mode, uint32(h.Uid), uint32(h.Gid), uint32(h.Nlink),
		uint32(h.Mtime), uint32(size), h.Devmajor, h.Devminor, h.Rdevmajor, h.Rdevminor,
		uint32(namesize), check} {
		b = appendHex8(b, v)
	}
	b = append(b, h.Name...)
	b = append(b, 0)
	if len(h.Ext) > 0 {
		b = append(b, h.Ext...)
		b = append(b, 0)
	}
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	w.buf = b[:0]
	if err := w.write(b); err != nil {
		return err
	}
	w.name = h.Name
	w.format = h.Format
	w.remaining = size
	w.pad = int((4 - size%4) % 4)
	w.crc = h.Format == CRC && h.Mode&TypeMask == TypeReg
	w.sum, w.want = 0, check
	if body != nil {
		if _, err := w.Write(body); err != nil {
			return err
		}
	}
	return nil
}

func appendHex8(b []byte, v uint32) []byte {
	const digits = "0123456789ABCDEF"
	for i := 28; i >= 0; i -= 4 {
		b = append(b, digits[(v>>uint(i))&0xf])
	}
	return b
}

// Write writes data of the current entry.
func (w *Writer) Write(p []byte) (int, error) {
	if w.err != nil {
		return 0, w.err
	}
	if int64(len(p)) > w.remaining {
		return 0, fmt.Errorf("cpio: entry %q: %w", w.name, ErrWriteTooLong)
	}
	if w.crc {
		w.sum = Sum(w.sum, p)
	}
	n, err := w.w.Write(p)
	w.off += int64(n)
	w.remaining -= int64(n)
	if err != nil {
		w.err = err
	}
	return n, err
}

// Close ends the last entry, writes the trailer and pads the archive to a
// multiple of 512 bytes, as GNU cpio does. It does not close the
// underlying writer.
func (w *Writer) Close() error {
	if w.closed {
		return w.err
	}
	if err := w.WriteHeader(&Header{Name: Trailer, Nlink: 1, Format: w.format}); err != nil {
		return err
	}
	w.closed = true
	if err := w.finish(); err != nil {
		return err
	}
	if r := w.off % 512; r != 0 {
		return w.write(zeros[:512-r])
	}
	return nil
}
