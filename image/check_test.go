package image

import (
	"bytes"
	"strings"
	"testing"

	"github.com/clonecd/clonecd/cpio"
)

// TestCheck: a sound image passes; each kind of damage a build or publish
// must refuse is named.
func TestCheck(t *testing.T) {
	raw := rawArchive(t, cpio.Newc, dirEnt("etc"), reg("etc/motd", strings.Repeat("hello cluster ", 4000)))
	good := gz(raw)
	flipped := append([]byte(nil), good...)
	flipped[len(flipped)/2] ^= 0x40
	crc := append([]byte(nil), good...)
	crc[len(crc)-6] ^= 0xff // the gzip trailer's CRC32
	for _, c := range []struct {
		name string
		in   []byte
		want string // "" = accepted
	}{
		{"good", good, ""},
		{"plain cpio", raw, ""},
		{"truncated", good[:len(good)/2], "unexpected EOF"},
		{"flipped deflate byte", flipped, "gzip"},
		{"bad crc", crc, "gzip"},
		{"random", bytes.Repeat([]byte{0x5a, 0x17}, 4096), "uncompressed data: cpio: header at offset 0: not a cpio archive"},
		{"empty", nil, "empty"},
		{"garbage after trailer", append(append([]byte(nil), raw...), []byte("extra!")...), "after the cpio trailer"},
	} {
		res, err := Check(bytes.NewReader(c.in))
		switch {
		case c.want == "" && err != nil:
			t.Errorf("Check(%s) = %v; want it accepted", c.name, err)
		case c.want == "" && (res.Entries != 2 || res.Size != int64(len(c.in))):
			t.Errorf("Check(%s) = %+v; want 2 entries, %d bytes", c.name, res, len(c.in))
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("Check(%s) = %v; want an error with %q", c.name, err, c.want)
		}
	}
}
