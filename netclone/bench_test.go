package netclone

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/clonecd/clonecd/internal/testenv"
)

// BenchmarkNetRestore: one node's image stream as the network cloner
// reads it (resumable stream, sha256 checked) against curl of the same
// file from the same server over the same link (loopback).
func BenchmarkNetRestore(b *testing.B) {
	testenv.NeedTools(b, "curl")
	const size = 256 << 20
	dir := b.TempDir()
	imageDir(b, dir, "1.0", size, 5)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	hs := &http.Server{Handler: newServer(b, dir, 4)}
	go hs.Serve(ln)
	defer hs.Close()
	url := "http://" + ln.Addr().String()
	var ours, curl time.Duration
	for i := 0; i < b.N; i++ {
		t0 := time.Now()
		res, err := Fetch(b.Context(), url, FetchOptions{Open: func() (io.Writer, error) { return io.Discard, nil }})
		if err != nil || res.Bytes != size {
			b.Fatalf("fetch: %v (%d bytes)", err, res.Bytes)
		}
		ours += time.Since(t0)
		t0 = time.Now()
		testenv.Run(b, "curl", "-sS", "-f", "-o", "/dev/null", url+"/node.cpio.gz")
		curl += time.Since(t0)
	}
	mbs := func(d time.Duration) float64 { return float64(size) * float64(b.N) / 1e6 / d.Seconds() }
	b.ReportMetric(mbs(ours), "netclone-MB/s")
	b.ReportMetric(mbs(curl), "curl-MB/s")
	b.ReportMetric(mbs(ours)/mbs(curl), "rate-ratio")
}

// BenchmarkRecloneAll: wall time of reclone-all for 16 simulated nodes
// (namespaces, real sshd, 16 MiB image, --max-streams 4, --parallel 8,
// --delay 100ms), against the floor set by the delays alone.
func BenchmarkRecloneAll(b *testing.B) {
	const nodes = 16
	c := newSimCluster(b, nodes, 0, 4, 16<<20, 0)
	delay := 100 * time.Millisecond
	var wall time.Duration
	for i := 0; i < b.N; i++ {
		os.RemoveAll(filepath.Join(c.dir, "nodes"))
		t0 := time.Now()
		res, err := c.recloner(delay, 8, io.Discard).Run(b.Context(), c.nodes)
		if err != nil {
			b.Fatal(err)
		}
		wall += time.Since(t0)
		for _, r := range res {
			if !r.OK {
				b.Fatalf("%s: %s %s", r.Node, r.Result, r.Error)
			}
		}
	}
	per := wall / time.Duration(b.N)
	floor := delay * (nodes - 1)
	b.ReportMetric(per.Seconds(), fmt.Sprintf("s/%dnodes", nodes))
	b.ReportMetric(per.Seconds()/floor.Seconds(), "wall/delay-floor")
}
