package swarm

import (
	"bytes"
	"crypto/sha1"
	"encoding/hex"
	"strings"
	"testing"

	"github.com/anacrolix/torrent/bencode"
	"github.com/anacrolix/torrent/metainfo"
)

func TestPieceLength(t *testing.T) {
	for _, tt := range []struct {
		size, want int64
	}{
		{1, 256 << 10},
		{64 << 20, 256 << 10},
		{256 << 20, 256 << 10},
		{256<<20 + 1, 512 << 10},
		{260e6, 256 << 10},
		{1 << 30, 1 << 20},
		{50 << 30, 16 << 20},
		{1 << 50, 16 << 20},
	} {
		if got := PieceLength(tt.size); got != tt.want {
			t.Errorf("PieceLength(%d) = %d; want %d", tt.size, got, tt.want)
		}
	}
}

// TestMakeTorrent: the pieces are the SHA-1s of the image's pieces, the
// same image gives the same bytes, ParseTorrent takes them back with the
// infohash and refuses another; a reader shorter or longer than the size
// is refused.
func TestMakeTorrent(t *testing.T) {
	img := bytes.Repeat([]byte("0123456789abcdef"), 40000) // 640,000 bytes: 3 pieces of 256 KiB
	o := MakeOptions{WebSeeds: []string{"http://server:8080/v/1.20/node.cpio.gz"}}
	tor, err := MakeTorrent(bytes.NewReader(img), int64(len(img)), o)
	if err != nil {
		t.Fatal(err)
	}
	if tor.NumPieces() != 3 || tor.Name != "node.cpio.gz" || tor.Length != int64(len(img)) || tor.PieceLength != 256<<10 {
		t.Fatalf("MakeTorrent = %d pieces, name %q, length %d, piece length %d; want 3, node.cpio.gz, %d, 262144",
			tor.NumPieces(), tor.Name, tor.Length, tor.PieceLength, len(img))
	}
	for i := range 3 {
		p := img[i*256<<10 : min(len(img), (i+1)*256<<10)]
		if h := sha1.Sum(p); !bytes.Equal(tor.info.Pieces[i*20:i*20+20], h[:]) {
			t.Errorf("piece %d: hash %x; want %x", i, tor.info.Pieces[i*20:i*20+20], h)
		}
	}
	if h := sha1.Sum(tor.mi.InfoBytes); hex.EncodeToString(h[:]) != tor.InfoHash {
		t.Errorf("InfoHash = %s; want the SHA-1 of the info dictionary %x", tor.InfoHash, h)
	}
	again, _ := MakeTorrent(bytes.NewReader(img), int64(len(img)), o)
	if !bytes.Equal(again.Bytes, tor.Bytes) {
		t.Errorf("MakeTorrent twice gave different bytes")
	}
	if !bytes.Contains(tor.Bytes, []byte("8:url-listl38:http://server:8080/v/1.20/node.cpio.gze")) {
		t.Errorf("no url-list in %q", tor.Bytes)
	}
	back, err := ParseTorrent(tor.Bytes, strings.ToUpper(tor.InfoHash))
	if err != nil || back.InfoHash != tor.InfoHash || back.WebSeeds[0] != o.WebSeeds[0] {
		t.Errorf("ParseTorrent(made) = %+v, %v", back, err)
	}
	other := strings.Repeat("0", 40)
	if _, err := ParseTorrent(tor.Bytes, other); err == nil || !strings.Contains(err.Error(), "manifest names "+other) {
		t.Errorf("ParseTorrent with another infohash = %v; want a refusal naming it", err)
	}
	for _, tt := range []struct {
		name string
		r    []byte
		size int64
		o    MakeOptions
		want string
	}{
		{"short", img[:1000], 2000, MakeOptions{}, "ends at byte 1000"},
		{"long", img, 1000, MakeOptions{}, "longer than 1000"},
		{"empty", nil, 0, MakeOptions{}, "at least one byte"},
		{"piece length", img, int64(len(img)), MakeOptions{PieceLength: 100000}, "power of two"},
		{"webseed", img, int64(len(img)), MakeOptions{WebSeeds: []string{"ftp://x/"}}, "webseed"},
		{"name", img, int64(len(img)), MakeOptions{Name: "../x"}, "component"},
		{"dir name", img, int64(len(img)), MakeOptions{Name: "a/b"}, "single component"},
	} {
		if _, err := MakeTorrent(bytes.NewReader(tt.r), tt.size, tt.o); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("MakeTorrent(%s) = %v; want an error with %q", tt.name, err, tt.want)
		}
	}
}

// torrentOf bencodes a metainfo around info.
func torrentOf(t testing.TB, info any) ([]byte, string) {
	ib, err := bencode.Marshal(info)
	if err != nil {
		t.Fatal(err)
	}
	b, err := bencode.Marshal(metainfo.MetaInfo{InfoBytes: ib})
	if err != nil {
		t.Fatal(err)
	}
	h := sha1.Sum(ib)
	return b, hex.EncodeToString(h[:])
}

// TestParseTorrent refuses what MakeTorrent never makes.
func TestParseTorrent(t *testing.T) {
	hashes := string(make([]byte, 20))
	for _, tt := range []struct {
		name string
		info any
		want string
	}{
		{"files", map[string]any{"name": "d", "piece length": 1 << 18, "pieces": hashes,
			"files": []map[string]any{{"length": 1, "path": []string{"a"}}, {"length": 1, "path": []string{"b"}}}}, "2 files"},
		{"length", map[string]any{"name": "x", "piece length": 1 << 18, "pieces": hashes, "length": 0}, "length 0"},
		{"pieces", map[string]any{"name": "x", "piece length": 1 << 18, "pieces": hashes + hashes, "length": 10}, "40 bytes of piece hashes"},
		{"piece length", map[string]any{"name": "x", "piece length": 1000, "pieces": hashes, "length": 10}, "piece length 1000"},
		{"name", map[string]any{"name": "..", "piece length": 1 << 18, "pieces": hashes, "length": 10}, "file name"},
	} {
		b, ih := torrentOf(t, tt.info)
		if _, err := ParseTorrent(b, ih); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("ParseTorrent(%s) = %v; want an error with %q", tt.name, err, tt.want)
		}
	}
	for _, ih := range []string{"", "xyz", strings.Repeat("a", 39)} {
		if _, err := ParseTorrent(nil, ih); err == nil || !strings.Contains(err.Error(), "40 hex digits") {
			t.Errorf("ParseTorrent(nil, %q) = %v; want a refusal of the infohash", ih, err)
		}
	}
	if _, err := ParseTorrent([]byte("d4:infoi3ee"), strings.Repeat("a", 40)); err == nil {
		t.Errorf("ParseTorrent(an info that is a number) = nil error")
	}
}

func FuzzParseTorrent(f *testing.F) {
	tor, _ := MakeTorrent(bytes.NewReader(make([]byte, 300000)), 300000, MakeOptions{WebSeeds: []string{"http://s/x"}})
	f.Add(tor.Bytes, tor.InfoHash)
	f.Add([]byte("d4:infod6:lengthi1e4:name1:x12:piece lengthi262144e6:pieces20:aaaaaaaaaaaaaaaaaaaaee"), strings.Repeat("0", 40))
	f.Fuzz(func(t *testing.T, b []byte, ih string) {
		tor, err := ParseTorrent(b, ih)
		if err != nil {
			return
		}
		if tor.InfoHash != strings.ToLower(ih) || tor.Length <= 0 || tor.NumPieces() != int((tor.Length+tor.PieceLength-1)/tor.PieceLength) {
			t.Errorf("ParseTorrent accepted %q: infohash %s, length %d, %d pieces of %d", b, tor.InfoHash, tor.Length, tor.NumPieces(), tor.PieceLength)
		}
	})
}
