package swarm

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"io"
	"os"
	"path/filepath"
	"runtime/pprof"
	"testing"
	"time"
)

// writeImage writes size random bytes to dir/name and returns its path
// and sha256.
func writeImage(t testing.TB, dir string, size int) (string, [32]byte) {
	t.Helper()
	b := make([]byte, size)
	rand.Read(b)
	p := filepath.Join(dir, "node.cpio.gz")
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p, sha256.Sum256(b)
}

// progressCopy copies r to w and, when no byte arrives for stall, calls
// cancel (which must end r's reads) with a *stallError.
func progressCopy(ctx context.Context, cancel context.CancelCauseFunc, w io.Writer, r io.Reader, stall time.Duration) (int64, error) {
	var n int64
	got := make(chan int64, 1)
	go func() {
		last := time.Now()
		var seen int64
		for {
			select {
			case <-ctx.Done():
				return
			case v := <-got:
				seen, last = v, time.Now()
			case <-time.After(100 * time.Millisecond):
			}
			if time.Since(last) > stall {
				cancel(&stallError{at: seen})
				return
			}
		}
	}()
	buf := make([]byte, 256<<10)
	for {
		m, err := r.Read(buf)
		w.Write(buf[:m])
		n += int64(m)
		select {
		case got <- n:
		default:
		}
		if err == io.EOF {
			return n, nil
		}
		if err != nil {
			if c := context.Cause(ctx); c != nil {
				return n, c
			}
			return n, err
		}
	}
}

type stallError struct{ at int64 }

func (e *stallError) Error() string { return "no data for too long" }

// TestAllocStall: one seeder, one leecher, loopback, no webseed. With
// anacrolix/torrent's default MaxAllocPeerRequestDataPerConn (1 MiB) the
// upload stalls for good after about 2 MB (the library's bug: see
// allocLimit); with allocLimit the image arrives whole. If the first row
// fails, the library no longer stalls: re-read allocLimit's reasoning.
func TestAllocStall(t *testing.T) {
	for _, tt := range []struct {
		name      string
		limit     int
		wantStall bool
	}{
		{"library default 1 MiB", 1 << 20, true},
		{"allocLimit", allocLimit, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			img, sum := writeImage(t, dir, 64<<20)
			tor, err := MakeTorrentFile(img, MakeOptions{PieceLength: 1 << 20})
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancelT := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancelT()
			ctx, cancel := context.WithCancelCause(ctx)
			defer cancel(nil)
			o := Options{Listen: "127.0.0.1:0"}
			seedCl, err := newClientLimit(o, tt.limit)
			if err != nil {
				t.Fatal(err)
			}
			defer seedCl.Close()
			st, err := addTorrent(seedCl, tor, fileStore{path: img, readOnly: true}, o)
			if err != nil {
				t.Fatal(err)
			}
			if err := st.VerifyDataContext(ctx); err != nil {
				t.Fatal(err)
			}
			lo := Options{Listen: "127.0.0.1:0", Peers: []string{seedCl.ListenAddrs()[0].String()}}
			leechCl, err := newClientLimit(lo, tt.limit)
			if err != nil {
				t.Fatal(err)
			}
			defer leechCl.Close()
			lt, err := addTorrent(leechCl, tor, fileStore{path: filepath.Join(t.TempDir(), tor.Name)}, lo)
			if err != nil {
				t.Fatal(err)
			}
			r := lt.NewReader()
			r.SetContext(ctx)
			r.SetReadahead(16 << 20)
			h := sha256.New()
			n, err := progressCopy(ctx, cancel, h, r, 10*time.Second)
			if os.Getenv("STALL_DUMP") != "" {
				pprof.Lookup("goroutine").WriteTo(os.Stderr, 1)
			}
			var se *stallError
			stalled := err != nil && errorsAs(err, &se)
			switch {
			case tt.wantStall && !stalled:
				t.Errorf("limit %d: read %d bytes, err %v; want a stall (the library's bug is gone?)", tt.limit, n, err)
			case tt.wantStall:
				t.Logf("limit %d: stalled at %d bytes", tt.limit, n)
			case err != nil:
				t.Fatalf("limit %d: read %d bytes: %v", tt.limit, n, err)
			case !bytes.Equal(h.Sum(nil), sum[:]):
				t.Errorf("limit %d: sha256 of the %d bytes read differs from the image's", tt.limit, n)
			}
		})
	}
}
