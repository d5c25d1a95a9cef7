package nodesync

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"fmt"
	"io"
	"strconv"
)

// escape writes s with every byte outside '!'..'~' and the backslash as
// \xHH (lower case), so that a field never holds a space or a newline.
func escape(b []byte, s string) []byte {
	const digits = "0123456789abcdef"
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || c == '\\' {
			b = append(b, '\\', 'x', digits[c>>4], digits[c&15])
			continue
		}
		b = append(b, c)
	}
	return b
}

// appendLine appends e's line (and its xattr lines) to b.
func appendLine(b []byte, e *Entry) []byte {
	b = append(b, byte(e.Type), ' ')
	meta := func() {
		b = fmt.Appendf(b, "%04o %d %d %d ", e.Mode&0o7777, e.Uid, e.Gid, e.Mtime)
	}
	switch e.Type {
	case Dir, Fifo, Socket:
		meta()
	case Regular:
		meta()
		b = strconv.AppendInt(b, e.Size, 10)
		b = append(b, ' ')
		b = hex.AppendEncode(b, e.Sum[:])
		b = append(b, ' ')
	case Hardlink:
		b = escape(b, e.Target)
		b = append(b, ' ')
	case Symlink:
		b = fmt.Appendf(b, "%d %d %d ", e.Uid, e.Gid, e.Mtime)
		b = escape(b, e.Target)
		b = append(b, ' ')
	case Char, Block:
		meta()
		b = fmt.Appendf(b, "%d %d ", e.Major, e.Minor)
	}
	b = escape(b, e.Path)
	b = append(b, '\n')
	for _, x := range e.Xattrs {
		b = append(b, "x "...)
		b = escape(b, x.Name)
		b = append(b, ' ')
		if len(x.Value) == 0 {
			b = append(b, '-')
		} else {
			b = hex.AppendEncode(b, x.Value)
		}
		b = append(b, '\n')
	}
	return b
}

// WriteTo writes f in the node.files format (see the package comment).
// It does not check f: Marshal does.
func (f *Files) WriteTo(w io.Writer) (int64, error) {
	bw := bufio.NewWriterSize(w, 256<<10)
	var n int64
	line := make([]byte, 0, 512)
	write := func(p []byte) error {
		m, err := bw.Write(p)
		n += int64(m)
		return err
	}
	if err := write([]byte(Format + "\n")); err != nil {
		return n, err
	}
	for i := range f.Entries {
		line = appendLine(line[:0], &f.Entries[i])
		if err := write(line); err != nil {
			return n, err
		}
	}
	if err := write(fmt.Appendf(line[:0], "end %d\n", len(f.Entries))); err != nil {
		return n, err
	}
	return n, bw.Flush()
}

// Marshal returns f in the node.files format after checking it as Parse
// would: what Marshal returns, Parse reads back to the same Files.
func (f *Files) Marshal() ([]byte, error) {
	var b bytes.Buffer
	if _, err := f.WriteTo(&b); err != nil {
		return nil, err
	}
	if _, err := Parse(bytes.NewReader(b.Bytes())); err != nil {
		return nil, fmt.Errorf("marshalling: %w", err)
	}
	return b.Bytes(), nil
}
