package swarm

import (
	"context"
	"crypto/sha256"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"
)

// TestWebSeedFallback (loopback): the webseed is the fallback. With a
// seeder to ask, the node takes nothing from the webseed; with a tracker
// that knows no peer, it turns to the webseed after WebSeedAfter and
// completes from it; either way the sha256 is the image's.
func TestWebSeedFallback(t *testing.T) {
	dir := t.TempDir()
	img, sum := writeImage(t, dir, 8<<20)
	tor, err := MakeTorrentFile(img, MakeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	web := httptest.NewServer(http.FileServer(http.Dir(dir)))
	defer web.Close()
	tracker := httptest.NewServer(NewTracker(TrackerOptions{}))
	defer tracker.Close()
	seeder, err := NewSeeder(context.Background(), tor, img, Options{Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	defer seeder.Close()
	for _, tt := range []struct {
		name    string
		peers   []string
		fromWeb bool
	}{
		{"seeder", []string{seeder.Addr()}, false},
		{"no peer", nil, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			start := time.Now()
			n, err := Open(tor, Options{
				Dir: t.TempDir(), Listen: "127.0.0.1:0", Peers: tt.peers, Tracker: tracker.URL + "/announce",
				WebSeeds: []string{web.URL + "/" + filepath.Base(img)}, WebSeedAfter: time.Second,
			})
			if err != nil {
				t.Fatal(err)
			}
			defer n.Close()
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			h := sha256.New()
			r := n.Reader(ctx)
			if _, err := progressCopy(ctx, func(error) { cancel() }, h, r, 30*time.Second); err != nil {
				t.Fatal(err)
			}
			r.Close()
			if got := h.Sum(nil); string(got) != string(sum[:]) {
				t.Errorf("sha256 differs from the image's")
			}
			s := n.Stats()
			if got := s.FromWebSeeds > 0; got != tt.fromWeb {
				t.Errorf("%d bytes from the webseed, %d from peers; want webseed used = %v", s.FromWebSeeds, s.FromPeers, tt.fromWeb)
			}
			if tt.fromWeb && time.Since(start) < time.Second {
				t.Errorf("the webseed was used before WebSeedAfter")
			}
		})
	}
}
