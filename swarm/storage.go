package swarm

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"sync"

	"github.com/anacrolix/torrent/metainfo"
	"github.com/anacrolix/torrent/storage"
)

// fileStore keeps the one file of a torrent at path, and which pieces
// are complete in memory: a node that restarts starts over (its tmpfs is
// gone anyway), and no completion database (bbolt) is written.
type fileStore struct {
	path     string
	readOnly bool // the master's published image: never written
	// trusted marks every piece complete without hashing: only the test
	// of a lying peer uses it.
	trusted bool
}

func (s fileStore) OpenTorrent(_ context.Context, info *metainfo.Info, _ metainfo.Hash) (storage.TorrentImpl, error) {
	var f *os.File
	var err error
	if s.readOnly {
		f, err = os.Open(s.path)
	} else {
		f, err = os.OpenFile(s.path, os.O_RDWR|os.O_CREATE, 0o600)
	}
	if err != nil {
		return storage.TorrentImpl{}, err
	}
	st, err := f.Stat()
	if err == nil && st.Size() != info.TotalLength() {
		if s.readOnly {
			err = fmt.Errorf("%s: %d bytes; the torrent has %d", s.path, st.Size(), info.TotalLength())
		} else {
			err = f.Truncate(info.TotalLength())
		}
	}
	if err != nil {
		f.Close()
		return storage.TorrentImpl{}, err
	}
	t := &fileTorrent{f: f, readOnly: s.readOnly, complete: make([]bool, info.NumPieces())}
	if s.trusted {
		for i := range t.complete {
			t.complete[i] = true
		}
	}
	// The file is closed when the torrent's storage is unreachable, not
	// when the library closes it: anacrolix/torrent v1.59.1 panics
	// (peerconn.go servePeerRequest's panicif) when a peer's request is
	// read from storage after its torrent was closed and the read fails.
	// A read that still succeeds is simply never sent.
	runtime.AddCleanup(t, func(f *os.File) { f.Close() }, f)
	return storage.TorrentImpl{
		Piece: func(p metainfo.Piece) storage.PieceImpl { return filePiece{t, p} },
		Close: func() error {
			if t.readOnly {
				return nil
			}
			return f.Sync() // what the torrent wrote is on disk when it closes
		},
	}, nil
}

type fileTorrent struct {
	f        *os.File
	readOnly bool

	completeMu sync.Mutex
	complete   []bool
}

type filePiece struct {
	t *fileTorrent
	p metainfo.Piece
}

// span bounds an access of n bytes at off within the piece.
func (p filePiece) span(n int, off int64) (int, error) {
	l := p.p.Length()
	if off < 0 || off > l {
		return 0, fmt.Errorf("piece %d: offset %d outside its %d bytes", p.p.Index(), off, l)
	}
	if int64(n) > l-off {
		return int(l - off), io.EOF
	}
	return n, nil
}

func (p filePiece) ReadAt(b []byte, off int64) (int, error) {
	n, eof := p.span(len(b), off)
	if n == 0 && eof != nil {
		return 0, eof
	}
	m, err := p.t.f.ReadAt(b[:n], p.p.Offset()+off)
	if err == nil {
		err = eof
	}
	return m, err
}

func (p filePiece) WriteAt(b []byte, off int64) (int, error) {
	if p.t.readOnly {
		return 0, errors.New("read-only storage")
	}
	n, eof := p.span(len(b), off)
	if eof != nil {
		return 0, fmt.Errorf("piece %d: write of %d bytes at %d past its end", p.p.Index(), len(b), off)
	}
	return p.t.f.WriteAt(b[:n], p.p.Offset()+off)
}

func (p filePiece) setComplete(c bool) error {
	p.t.completeMu.Lock()
	p.t.complete[p.p.Index()] = c
	p.t.completeMu.Unlock()
	return nil
}

func (p filePiece) MarkComplete() error    { return p.setComplete(true) }
func (p filePiece) MarkNotComplete() error { return p.setComplete(false) }

func (p filePiece) Completion() storage.Completion {
	p.t.completeMu.Lock()
	defer p.t.completeMu.Unlock()
	return storage.Completion{Complete: p.t.complete[p.p.Index()], Ok: true}
}

// noStorage is the client's default storage: never used, since every
// torrent is added with its own.
type noStorage struct{}

func (noStorage) OpenTorrent(context.Context, *metainfo.Info, metainfo.Hash) (storage.TorrentImpl, error) {
	return storage.TorrentImpl{}, errors.New("no storage given for the torrent")
}
