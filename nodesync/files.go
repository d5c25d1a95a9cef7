package nodesync

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"sort"

	"github.com/clonecd/clonecd/medium"
)

// Format is the first line of a version 1 node.files.
const Format = "clonecd-files 1"

// Type is the kind of an entry, the letter that starts its line.
type Type byte

// Entry types.
const (
	Dir      Type = 'd'
	Regular  Type = 'f'
	Hardlink Type = 'h' // another name of an earlier regular file
	Symlink  Type = 'l'
	Char     Type = 'c'
	Block    Type = 'b'
	Fifo     Type = 'p'
	Socket   Type = 's'
)

func (t Type) String() string {
	switch t {
	case Dir:
		return "directory"
	case Regular:
		return "regular file"
	case Hardlink:
		return "hard link"
	case Symlink:
		return "symlink"
	case Char:
		return "char device"
	case Block:
		return "block device"
	case Fifo:
		return "fifo"
	case Socket:
		return "socket"
	}
	return fmt.Sprintf("type %q", byte(t))
}

// MarshalText writes a type by its name (for --json).
func (t Type) MarshalText() ([]byte, error) { return []byte(t.String()), nil }

// Sum is the sha256 of a file's content, the name of its blob.
type Sum [32]byte

// EmptySum is the sha256 of no bytes: an empty file needs no blob.
var EmptySum = Sum(sha256.Sum256(nil))

func (s Sum) String() string { return hex.EncodeToString(s[:]) }

// MarshalText writes a sum in hex.
func (s Sum) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// ParseSum reads 64 lower case hex digits.
func ParseSum(s string) (Sum, error) {
	var sum Sum
	if len(s) != 64 {
		return sum, fmt.Errorf("sha256 %.70q: want 64 hex digits", s)
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return sum, fmt.Errorf("sha256 %q: want lower case hex digits", s)
		}
	}
	hex.Decode(sum[:], []byte(s))
	return sum, nil
}

// Xattr is one extended attribute.
type Xattr struct {
	Name  string
	Value []byte
}

// Entry is one entry of an image.
type Entry struct {
	Path string // "/" or "/etc/passwd": absolute inside the node, clean
	Type Type
	// Mode is the permission bits with setuid, setgid and sticky (07777);
	// a symlink's is 0777.
	Mode  uint32
	Uid   int
	Gid   int
	Mtime int64 // seconds since the epoch
	Size  int64 // regular files and hard links: bytes of content
	Sum   Sum   // regular files and hard links: sha256 of the content
	// Target is a symlink's target, or for a hard link the path of the
	// regular file whose other name it is (the group's first path).
	Target       string
	Major, Minor uint32 // char and block devices
	// Xattrs of a regular file or directory, sorted by name, names
	// unique.
	Xattrs []Xattr
}

// Files is a node.files: every entry of an image, sorted by path (so each
// directory comes before what it holds).
type Files struct {
	Entries []Entry
}

// Lookup returns the entry of path ("/etc/passwd").
func (f *Files) Lookup(path string) (*Entry, bool) {
	i := sort.Search(len(f.Entries), func(i int) bool { return f.Entries[i].Path >= path })
	if i < len(f.Entries) && f.Entries[i].Path == path {
		return &f.Entries[i], true
	}
	return nil, false
}

// Blobs returns the sums of every non-empty content, each once, with its
// size, in the order of the entries.
func (f *Files) Blobs() ([]Sum, map[Sum]int64) {
	sizes := map[Sum]int64{}
	var sums []Sum
	for i := range f.Entries {
		e := &f.Entries[i]
		if e.Type != Regular || e.Size == 0 {
			continue
		}
		if _, ok := sizes[e.Sum]; !ok {
			sizes[e.Sum] = e.Size
			sums = append(sums, e.Sum)
		}
	}
	return sums, sizes
}

// Bytes is the sum of the sizes of the regular files (each inode once).
func (f *Files) Bytes() int64 {
	var n int64
	for i := range f.Entries {
		if f.Entries[i].Type == Regular {
			n += f.Entries[i].Size
		}
	}
	return n
}

// LineError is a node.files parse error at a line.
type LineError struct {
	Line int
	Err  error
}

func (e *LineError) Error() string {
	return fmt.Sprintf("%s: line %d: %v", medium.Files, e.Line, e.Err)
}

func (e *LineError) Unwrap() error { return e.Err }

// ErrFormat is a node.files that does not start with Format.
var ErrFormat = errors.New("nodesync: not a clonecd-files 1 file")
