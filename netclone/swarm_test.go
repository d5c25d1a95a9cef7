package netclone

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/clonecd/clonecd/internal/testenv"
	"github.com/clonecd/clonecd/internal/testimage"
	"github.com/clonecd/clonecd/swarm"
	"github.com/clonecd/clonecd/versions"
)

const swarmLayout = `label: dos
size=8MiB, type=83
# clonecd: part=1 fs=ext4 mount=/
`

// TestSwarmStreamFallsBack: a node told to use the swarm of a server
// whose swarm has no peer (a tracker, no seeder) and whose webseed it
// would try only after 15 s gets no byte from the swarm; after the
// stream's idle timeout it goes on over HTTP, and the image arrives
// whole, its sha256 checked.
func TestSwarmStreamFallsBack(t *testing.T) {
	dir := t.TempDir()
	lay := filepath.Join(t.TempDir(), "node.sfdisk")
	if err := os.WriteFile(lay, []byte(swarmLayout), 0o600); err != nil {
		t.Fatal(err)
	}
	img := testimage.Write(t, t.TempDir(), "swarm-fallback")
	if _, err := openStore(t, dir).Publish(img, versions.PublishOptions{Layout: lay}); err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(serverWith(t, dir, ServerOptions{Swarm: swarm.NewTracker(swarm.TrackerOptions{})}))
	defer hs.Close()
	var log testenv.SyncBuffer
	m, err := NewMedia(context.Background(), hs.URL, MediaOptions{Access: admin(), IdleTimeout: time.Second,
		Swarm: &SwarmOptions{Dir: t.TempDir(), Listen: "127.0.0.1:0"},
		Logf:  func(format string, a ...any) { fmt.Fprintf(&log, format+"\n", a...) }})
	if err != nil {
		t.Fatal(err)
	}
	s, err := m.OpenImage()
	if err != nil {
		t.Fatal(err)
	}
	if !s.fromSwarm {
		t.Fatalf("OpenImage did not join the swarm:\n%s", log.String())
	}
	got, err := io.ReadAll(s)
	s.Close()
	want, _ := os.ReadFile(img)
	if err != nil || !bytes.Equal(got, want) {
		t.Errorf("image after the swarm failed: %d bytes, %v; want the %d bytes of %s", len(got), err, len(want), img)
	}
	if !strings.Contains(log.String(), "the swarm failed at byte 0") {
		t.Errorf("log does not say the stream left the swarm:\n%s", log.String())
	}
}
