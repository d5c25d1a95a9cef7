package swarm

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/anacrolix/torrent"
)

// Seeder serves a published image to the swarm as a peer (the master's
// side, beside or instead of the webseed): read-only, from the image
// file itself.
type Seeder struct {
	cl *torrent.Client
	t  *torrent.Torrent
}

// DefaultSeederConns is the Seeder's MaxConns when Options.MaxConns is 0.
const DefaultSeederConns = 4

// NewSeeder checks every piece of the image file at path against t
// (SHA-1, about 1 s for 260 MB here) and serves it. Of o, Listen, PEX,
// MaxConns (0: DefaultSeederConns), UploadRate, Tracker, Peers and Logf
// apply; Dir and WebSeeds do not.
func NewSeeder(ctx context.Context, t *Torrent, path string, o Options) (*Seeder, error) {
	return newSeeder(ctx, t, fileStore{path: path, readOnly: true}, o)
}

func newSeeder(ctx context.Context, t *Torrent, store fileStore, o Options) (*Seeder, error) {
	o.WebSeeds = nil
	if o.MaxConns == 0 {
		o.MaxConns = DefaultSeederConns
	}
	cl, err := newClient(o)
	if err != nil {
		return nil, err
	}
	tt, err := addTorrent(cl, t, store, o)
	if err == nil && !store.trusted {
		err = tt.VerifyDataContext(ctx)
		if err == nil {
			// The last pieces' completion is recorded just after.
			wait, cancel := context.WithTimeout(ctx, 5*time.Second)
			select {
			case <-tt.Complete().On():
			case <-wait.Done():
			}
			cancel()
		}
		if err == nil && !tt.Complete().Bool() {
			err = fmt.Errorf("%s: %d of %d pieces do not match the torrent", store.path,
				tt.NumPieces()-tt.Stats().PiecesComplete, tt.NumPieces())
		}
	}
	if err != nil {
		cl.Close()
		return nil, err
	}
	return &Seeder{cl: cl, t: tt}, nil
}

// Addr is the address the seeder accepts peers on.
func (s *Seeder) Addr() string {
	if a := s.cl.ListenAddrs(); len(a) > 0 {
		return a[0].String()
	}
	return ""
}

// Stats returns the seeder's byte counts (Uploaded: what the master sent
// as a peer).
func (s *Seeder) Stats() Stats { return stats(s.t) }

// Close stops serving.
func (s *Seeder) Close() error { return errors.Join(s.cl.Close()...) }
