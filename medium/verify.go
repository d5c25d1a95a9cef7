package medium

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
)

// ErrNotListed is returned for a file a manifest does not name.
var ErrNotListed = errors.New("not in the manifest")

// MismatchError says a file's content is not what the manifest says.
type MismatchError struct {
	Name   string
	Size   int64 // bytes read
	SHA256 string
	Want   File
}

func (e *MismatchError) Error() string {
	if e.Size != e.Want.Size {
		return fmt.Sprintf("%s: %d bytes, the manifest says %d", e.Name, e.Size, e.Want.Size)
	}
	return fmt.Sprintf("%s: sha256 %s, the manifest says %s", e.Name, e.SHA256, e.Want.SHA256)
}

// CheckBytes checks a whole file's content against the manifest.
func (m *Manifest) CheckBytes(name string, b []byte) error {
	want, ok := m.Lookup(name)
	if !ok {
		return fmt.Errorf("%s: %w", name, ErrNotListed)
	}
	got := hexSum(b)
	if int64(len(b)) != want.Size || got != want.SHA256 {
		return &MismatchError{Name: name, Size: int64(len(b)), SHA256: got, Want: want}
	}
	return nil
}

// NewReader returns a reader of r, the content of name, that fails instead
// of returning io.EOF when the content is not what the manifest says (and
// as soon as it is longer). A streamed image is checked this way: what was
// read before the end is only trusted once EOF came without an error.
func (m *Manifest) NewReader(name string, r io.Reader) (io.Reader, error) {
	want, ok := m.Lookup(name)
	if !ok {
		return nil, fmt.Errorf("%s: %w", name, ErrNotListed)
	}
	return &checkedReader{r: r, name: name, want: want, h: sha256.New()}, nil
}

type checkedReader struct {
	r    io.Reader
	name string
	want File
	h    hash.Hash
	n    int64
	err  error
}

func (c *checkedReader) Read(p []byte) (int, error) {
	if c.err != nil {
		return 0, c.err
	}
	n, err := c.r.Read(p)
	c.h.Write(p[:n])
	c.n += int64(n)
	if c.n > c.want.Size {
		c.err = &MismatchError{Name: c.name, Size: c.n, Want: c.want}
		return n, c.err
	}
	if err == io.EOF {
		if got := hex.EncodeToString(c.h.Sum(nil)); c.n != c.want.Size || got != c.want.SHA256 {
			c.err = &MismatchError{Name: c.name, Size: c.n, SHA256: got, Want: c.want}
			return n, c.err
		}
	}
	if err != nil {
		c.err = err
	}
	return n, err
}

func hexSum(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}
