package swarm

import (
	"bytes"
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"strings"

	"github.com/anacrolix/torrent/bencode"
	"github.com/anacrolix/torrent/metainfo"

	"github.com/clonecd/clonecd/medium"
)

// The piece length rule (PieceLength): the smallest power of two that
// cuts the image into at most TargetPieces pieces, and at least
// MinPieceLength, at most MaxPieceLength. A 64 MiB image gets 256 KiB
// pieces (256 of them), a 260 MB image 256 KiB (about 1,000), 1 GiB
// 1 MiB, 50 GiB 16 MiB (3,200). Small pieces spread sooner (a peer serves
// only pieces it has verified) and keep node.torrent small (20 bytes a
// piece: 20 KB for 1,000); the floor keeps the per-piece overhead (one
// SHA-1, one "have" to every peer) negligible.
const (
	MinPieceLength = 256 << 10
	MaxPieceLength = 16 << 20
	TargetPieces   = 1024
)

// PieceLength is the piece length MakeTorrent uses for an image of size
// bytes.
func PieceLength(size int64) int64 {
	l := int64(MinPieceLength)
	for l < MaxPieceLength && l*TargetPieces < size {
		l *= 2
	}
	return l
}

// MakeOptions are MakeTorrent's settings.
type MakeOptions struct {
	// Name is the file's name in the torrent; "": medium.ImageGzip. It
	// is also the name a webseed URL ending in "/" is completed with.
	Name string
	// WebSeeds is the torrent's url-list (BEP 19): the image's URLs
	// (http://server:8080/v/1.20/node.cpio.gz), served with Range. nil:
	// none in the file (the node gives its server's URL to Open).
	WebSeeds []string
	// PieceLength in bytes, a power of two from 16 KiB; 0: PieceLength(size).
	PieceLength int64
}

// Torrent is an image's BitTorrent v1 metainfo.
type Torrent struct {
	Bytes       []byte // the bencoded metainfo (node.torrent)
	InfoHash    string // v1 infohash, 40 lower case hex digits (the manifest's btih)
	Name        string
	Length      int64
	PieceLength int64
	WebSeeds    []string // the url-list

	mi   *metainfo.MetaInfo
	info metainfo.Info
}

// NumPieces is the number of pieces.
func (t *Torrent) NumPieces() int { return t.info.NumPieces() }

// MakeTorrentFile makes the torrent of the image file at path.
func MakeTorrentFile(path string, o MakeOptions) (*Torrent, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	t, err := MakeTorrent(f, st.Size(), o)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return t, nil
}

// MakeTorrent reads exactly size bytes of an image from r and makes its
// torrent: one file, v1 (SHA-1 pieces), no announce list (peers come from
// the server's Tracker), no creation date (the same image always gives
// the same bytes).
func MakeTorrent(r io.Reader, size int64, o MakeOptions) (*Torrent, error) {
	if size <= 0 {
		return nil, fmt.Errorf("image size %d: want at least one byte", size)
	}
	name := o.Name
	if name == "" {
		name = medium.ImageGzip
	}
	if err := validFileName(name); err != nil {
		return nil, err
	}
	pl := o.PieceLength
	if pl == 0 {
		pl = PieceLength(size)
	}
	if pl < 16<<10 || pl&(pl-1) != 0 {
		return nil, fmt.Errorf("piece length %d: want a power of two from 16 KiB", pl)
	}
	for _, u := range o.WebSeeds {
		if err := validWebSeed(u); err != nil {
			return nil, err
		}
	}
	pieces := make([]byte, 0, (size+pl-1)/pl*sha1.Size)
	h := sha1.New()
	var done int64
	for done < size {
		h.Reset()
		n, err := io.CopyN(h, r, min(pl, size-done))
		done += n
		if err != nil {
			if errors.Is(err, io.EOF) {
				return nil, fmt.Errorf("image ends at byte %d; want %d bytes", done, size)
			}
			return nil, err
		}
		pieces = h.Sum(pieces)
	}
	if n, _ := io.CopyN(io.Discard, r, 1); n > 0 {
		return nil, fmt.Errorf("image is longer than %d bytes", size)
	}
	info := metainfo.Info{Name: name, Length: size, PieceLength: pl, Pieces: pieces}
	ib, err := bencode.Marshal(info)
	if err != nil {
		return nil, err
	}
	mi := &metainfo.MetaInfo{InfoBytes: ib, CreatedBy: "clonecd", UrlList: o.WebSeeds}
	var b bytes.Buffer
	if err := mi.Write(&b); err != nil {
		return nil, err
	}
	return parse(b.Bytes())
}

// ParseTorrent reads a torrent made by MakeTorrent (node.torrent) and
// checks that its infohash is infoHash, the one the signed manifest names
// (40 hex digits). The torrent's announce list is ignored.
func ParseTorrent(b []byte, infoHash string) (*Torrent, error) {
	want, err := hex.DecodeString(infoHash)
	if err != nil || len(want) != sha1.Size {
		return nil, fmt.Errorf("trusted infohash %q: want 40 hex digits", infoHash)
	}
	t, err := parse(b)
	if err != nil {
		return nil, err
	}
	if t.InfoHash != strings.ToLower(infoHash) {
		return nil, fmt.Errorf("%s: infohash %s, but the manifest names %s", medium.Torrent, t.InfoHash, strings.ToLower(infoHash))
	}
	return t, nil
}

// parse decodes and checks a single file v1 torrent.
func parse(b []byte) (*Torrent, error) {
	mi, err := metainfo.Load(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", medium.Torrent, err)
	}
	info, err := mi.UnmarshalInfo()
	if err != nil {
		return nil, fmt.Errorf("%s: info: %w", medium.Torrent, err)
	}
	switch {
	case !info.HasV1():
		return nil, fmt.Errorf("%s: not a BitTorrent v1 torrent", medium.Torrent)
	case len(info.Files) > 0:
		return nil, fmt.Errorf("%s: %d files; want one", medium.Torrent, len(info.Files))
	case info.Length <= 0:
		return nil, fmt.Errorf("%s: length %d", medium.Torrent, info.Length)
	case info.PieceLength < 16<<10 || info.PieceLength&(info.PieceLength-1) != 0:
		return nil, fmt.Errorf("%s: piece length %d: want a power of two from 16 KiB", medium.Torrent, info.PieceLength)
	case int64(len(info.Pieces)) != (info.Length+info.PieceLength-1)/info.PieceLength*sha1.Size:
		return nil, fmt.Errorf("%s: %d bytes of piece hashes for %d bytes in pieces of %d", medium.Torrent, len(info.Pieces), info.Length, info.PieceLength)
	}
	if err := validFileName(info.Name); err != nil {
		return nil, fmt.Errorf("%s: %w", medium.Torrent, err)
	}
	for _, u := range mi.UrlList {
		if err := validWebSeed(u); err != nil {
			return nil, fmt.Errorf("%s: %w", medium.Torrent, err)
		}
	}
	ih := mi.HashInfoBytes()
	return &Torrent{
		Bytes: b, InfoHash: ih.HexString(), Name: info.Name, Length: info.Length,
		PieceLength: info.PieceLength, WebSeeds: mi.UrlList, mi: mi, info: info,
	}, nil
}

// validFileName: one component of a medium's file name (the storage
// writes the file under this name).
func validFileName(name string) error {
	if err := medium.ValidName(name); err != nil {
		return err
	}
	if strings.Contains(name, "/") {
		return fmt.Errorf("file name %q: want a single component", name)
	}
	return nil
}

// validWebSeed: an absolute http(s) URL.
func validWebSeed(s string) error {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("webseed %q: want an http:// or https:// URL", s)
	}
	return nil
}
