package nodesync

import (
	"bufio"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// Limits of a node.files line.
const (
	maxLine     = 256 << 10
	maxPath     = 4095 // PATH_MAX without the NUL
	maxName     = 255  // a path component, an xattr name
	maxXattrVal = 64 << 10
	maxID       = 1<<32 - 2 // (uid_t)-1 means "unchanged" to chown
)

// Parse reads a node.files strictly: every field must be in the form
// WriteTo writes (Parse(Marshal(f)) == f and Marshal(Parse(b)) == b), the
// paths sorted, unique and clean, each under an earlier directory, a hard
// link naming an earlier regular file, xattrs only on regular files and
// directories. Errors are *LineError naming the line.
func Parse(r io.Reader) (*Files, error) {
	p := parser{br: bufio.NewReaderSize(r, 64<<10), index: map[string]int{}}
	f, err := p.parse()
	if err != nil {
		return nil, &LineError{Line: p.line, Err: err}
	}
	return f, nil
}

type parser struct {
	br    *bufio.Reader
	line  int
	index map[string]int // path -> entry, for directories and regular files
	buf   []byte
}

// next returns the next line without its newline; io.EOF at the end.
func (p *parser) next() (string, error) {
	p.buf = p.buf[:0]
	for {
		chunk, err := p.br.ReadSlice('\n')
		p.buf = append(p.buf, chunk...)
		if len(p.buf) > maxLine {
			p.line++
			return "", fmt.Errorf("line longer than %d bytes", maxLine)
		}
		if err == bufio.ErrBufferFull {
			continue
		}
		if err == io.EOF {
			if len(p.buf) == 0 {
				return "", io.EOF
			}
			p.line++
			return "", errors.New("last line does not end in a newline")
		}
		if err != nil {
			return "", err
		}
		p.line++
		return string(p.buf[:len(p.buf)-1]), nil
	}
}

func (p *parser) parse() (*Files, error) {
	line, err := p.next()
	if err == io.EOF {
		p.line = 1
		return nil, ErrFormat
	}
	if err != nil {
		return nil, err
	}
	if line != Format {
		return nil, ErrFormat
	}
	f := &Files{}
	for {
		line, err := p.next()
		if err == io.EOF {
			p.line++
			return nil, errors.New("no end line (file truncated)")
		}
		if err != nil {
			return nil, err
		}
		fields := strings.Split(line, " ")
		switch fields[0] {
		case "end":
			if len(fields) != 2 {
				return nil, errors.New("end: want a count")
			}
			n, err := parseUint(fields[1], 1<<62)
			if err != nil {
				return nil, fmt.Errorf("end: %w", err)
			}
			if len(f.Entries) == 0 {
				return nil, errors.New("no entries: an image holds at least its root")
			}
			if int(n) != len(f.Entries) {
				return nil, fmt.Errorf("end: count %d, but %d entries", n, len(f.Entries))
			}
			if _, err := p.next(); err != io.EOF {
				if err == nil {
					err = errors.New("text after the end line")
				}
				return nil, err
			}
			return f, nil
		case "x":
			if err := p.xattr(f, fields); err != nil {
				return nil, err
			}
		default:
			e, err := p.entry(f, fields)
			if err != nil {
				return nil, err
			}
			f.Entries = append(f.Entries, e)
		}
	}
}

// fieldCounts: the number of fields of each entry type's line.
var fieldCounts = map[Type]int{Dir: 6, Fifo: 6, Socket: 6, Regular: 8, Hardlink: 3, Symlink: 6, Char: 8, Block: 8}

func (p *parser) entry(f *Files, fields []string) (Entry, error) {
	var e Entry
	if len(fields[0]) != 1 || fieldCounts[Type(fields[0][0])] == 0 {
		return e, fmt.Errorf("unknown record %.20q", fields[0])
	}
	e.Type = Type(fields[0][0])
	if len(fields) != fieldCounts[e.Type] {
		return e, fmt.Errorf("%s: %d fields, want %d", e.Type, len(fields), fieldCounts[e.Type])
	}
	path, err := parsePath(fields[len(fields)-1])
	if err != nil {
		return e, err
	}
	e.Path = path
	if err := p.place(f, &e); err != nil {
		return e, err
	}
	rest := fields[1 : len(fields)-1]
	switch e.Type {
	case Hardlink:
		target, err := unescape(rest[0])
		if err != nil {
			return e, fmt.Errorf("hard link target: %w", err)
		}
		i, ok := p.index[target]
		if !ok || f.Entries[i].Type != Regular {
			return e, fmt.Errorf("%s: hard link to %q, which is not an earlier regular file", path, target)
		}
		t := f.Entries[i]
		t.Path, t.Type, t.Target, t.Xattrs = path, Hardlink, target, nil
		return t, nil
	case Symlink:
		e.Mode = 0o777
		if err := parseOwner(&e, rest[:3]); err != nil {
			return e, err
		}
		if e.Target, err = unescape(rest[3]); err != nil {
			return e, fmt.Errorf("symlink target: %w", err)
		}
		if e.Target == "" || len(e.Target) > maxPath || strings.IndexByte(e.Target, 0) >= 0 {
			return e, fmt.Errorf("%s: symlink target empty, too long or holding a NUL", path)
		}
		return e, nil
	}
	mode, err := parseMode(rest[0])
	if err != nil {
		return e, err
	}
	e.Mode = mode
	if err := parseOwner(&e, rest[1:4]); err != nil {
		return e, err
	}
	switch e.Type {
	case Regular:
		n, err := parseUint(rest[4], 1<<62)
		if err != nil {
			return e, fmt.Errorf("size: %w", err)
		}
		e.Size = int64(n)
		if e.Sum, err = ParseSum(rest[5]); err != nil {
			return e, err
		}
		if e.Size == 0 && e.Sum != EmptySum {
			return e, fmt.Errorf("%s: empty file with the sha256 of content", path)
		}
		p.index[path] = len(f.Entries)
	case Dir:
		p.index[path] = len(f.Entries)
	case Char, Block:
		major, err1 := parseUint(rest[4], 1<<32-1)
		minor, err2 := parseUint(rest[5], 1<<32-1)
		if err := errors.Join(err1, err2); err != nil {
			return e, fmt.Errorf("device number: %w", err)
		}
		e.Major, e.Minor = uint32(major), uint32(minor)
	}
	return e, nil
}

// place checks that path comes after the previous entry and sits in an
// earlier directory; the first entry is the root directory.
func (p *parser) place(f *Files, e *Entry) error {
	if len(f.Entries) == 0 {
		if e.Path != "/" || e.Type != Dir {
			return errors.New("the first entry must be the root directory /")
		}
		return nil
	}
	if prev := f.Entries[len(f.Entries)-1].Path; e.Path <= prev {
		return fmt.Errorf("%q comes after %q: paths must be sorted and unique", e.Path, prev)
	}
	parent := e.Path[:strings.LastIndexByte(e.Path, '/')]
	if parent == "" {
		parent = "/"
	}
	if i, ok := p.index[parent]; !ok || f.Entries[i].Type != Dir {
		return fmt.Errorf("%s: parent %s is not an earlier directory", e.Path, parent)
	}
	return nil
}

func (p *parser) xattr(f *Files, fields []string) error {
	if len(fields) != 3 {
		return fmt.Errorf("x: %d fields, want 3", len(fields))
	}
	if len(f.Entries) == 0 {
		return errors.New("x before any entry")
	}
	e := &f.Entries[len(f.Entries)-1]
	if e.Type != Regular && e.Type != Dir {
		return fmt.Errorf("%s: xattrs on a %s", e.Path, e.Type)
	}
	name, err := unescape(fields[1])
	if err != nil {
		return fmt.Errorf("xattr name: %w", err)
	}
	if name == "" || len(name) > maxName || strings.IndexByte(name, 0) >= 0 {
		return fmt.Errorf("%s: xattr name empty, too long or holding a NUL", e.Path)
	}
	if n := len(e.Xattrs); n > 0 && e.Xattrs[n-1].Name >= name {
		return fmt.Errorf("%s: xattr %q after %q: names must be sorted and unique", e.Path, name, e.Xattrs[n-1].Name)
	}
	var val []byte
	if v := fields[2]; v != "-" {
		if v == "" || len(v) > 2*maxXattrVal || strings.ToLower(v) != v {
			return fmt.Errorf("%s: xattr %s: value must be lower case hex of at most %d bytes, or - when empty", e.Path, name, maxXattrVal)
		}
		if val, err = hex.DecodeString(v); err != nil {
			return fmt.Errorf("%s: xattr %s: %w", e.Path, name, err)
		}
	} else {
		val = []byte{}
	}
	e.Xattrs = append(e.Xattrs, Xattr{name, val})
	return nil
}

func parseOwner(e *Entry, f []string) error {
	uid, err1 := parseUint(f[0], maxID)
	gid, err2 := parseUint(f[1], maxID)
	if err := errors.Join(err1, err2); err != nil {
		return fmt.Errorf("owner: %w", err)
	}
	mtime, err := parseUint(f[2], 1<<62)
	if err != nil {
		return fmt.Errorf("mtime: %w", err)
	}
	e.Uid, e.Gid, e.Mtime = int(uid), int(gid), int64(mtime)
	return nil
}

func parseMode(s string) (uint32, error) {
	if len(s) != 4 {
		return 0, fmt.Errorf("mode %.20q: want 4 octal digits", s)
	}
	var m uint32
	for i := 0; i < 4; i++ {
		if s[i] < '0' || s[i] > '7' {
			return 0, fmt.Errorf("mode %q: want 4 octal digits", s)
		}
		m = m<<3 | uint32(s[i]-'0')
	}
	return m, nil
}

// parseUint reads a decimal in its canonical form (no sign, no leading
// zero) of at most max.
func parseUint(s string, max uint64) (uint64, error) {
	if s == "" || len(s) > 1 && s[0] == '0' || s[0] == '+' {
		return 0, fmt.Errorf("%.24q is not a canonical decimal", s)
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil || n > max {
		return 0, fmt.Errorf("%.24q is not a decimal of at most %d", s, max)
	}
	return n, nil
}

// parsePath unescapes a path and checks it.
func parsePath(s string) (string, error) {
	path, err := unescape(s)
	if err != nil {
		return "", fmt.Errorf("path: %w", err)
	}
	return path, validPath(path)
}

// validPath checks that a path is absolute and clean.
func validPath(path string) error {
	if path == "/" {
		return nil
	}
	if !strings.HasPrefix(path, "/") || len(path) > maxPath || strings.IndexByte(path, 0) >= 0 {
		return fmt.Errorf("path %.80q: not absolute, too long or holding a NUL", path)
	}
	for _, c := range strings.Split(path[1:], "/") {
		if c == "" || c == "." || c == ".." || len(c) > maxName {
			return fmt.Errorf("path %.80q: empty, \".\", \"..\" or overlong component", path)
		}
	}
	return nil
}

// unescape reverses escape, accepting only what escape writes.
func unescape(s string) (string, error) {
	if s == "" {
		return "", errors.New("empty field")
	}
	if strings.IndexByte(s, '\\') < 0 {
		for i := 0; i < len(s); i++ {
			if s[i] <= ' ' || s[i] >= 0x7f {
				return "", fmt.Errorf("%.40q: byte %#x must be escaped", s, s[i])
			}
		}
		return s, nil
	}
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f {
			return "", fmt.Errorf("%.40q: byte %#x must be escaped", s, c)
		}
		if c != '\\' {
			b = append(b, c)
			continue
		}
		if i+3 >= len(s) || s[i+1] != 'x' {
			return "", fmt.Errorf(`%.40q: \ must start \xHH`, s)
		}
		h := s[i+2 : i+4]
		if strings.ToLower(h) != h {
			return "", fmt.Errorf(`%.40q: \x%s: hex must be lower case`, s, h)
		}
		v, err := hex.DecodeString(h)
		if err != nil {
			return "", fmt.Errorf(`%.40q: \x%s: %w`, s, h, err)
		}
		if c := v[0]; c > ' ' && c < 0x7f && c != '\\' {
			return "", fmt.Errorf(`%.40q: \x%s need not be escaped`, s, h)
		}
		b = append(b, v[0])
		i += 3
	}
	return string(b), nil
}
