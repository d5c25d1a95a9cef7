package netclone

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/clonecd/clonecd/internal/testenv"
	"github.com/clonecd/clonecd/trust"
)

// BenchmarkNetRestore: one node's image stream as the network cloner
// reads it (resumable stream, sha256 checked, HTTPS with a pin and a
// credential, as `clonecd serve` serves it) against curl of the same file
// from the same server over the same link (loopback), and against the
// same stream over plain HTTP (serve --plain-http).
func BenchmarkNetRestore(b *testing.B) {
	testenv.NeedTools(b, "curl")
	const size = 256 << 20
	dir := b.TempDir()
	imageDir(b, dir, "1.0", size, 5)
	tlsCert, pin, err := trust.LoadOrCreateServerCert(b.TempDir(), []string{"127.0.0.1"})
	if err != nil {
		b.Fatal(err)
	}
	srvTLS := trust.ServerTLSConfig(tlsCert)
	cliTLS, _ := trust.ClientTLSConfig(pin, "")
	serve := func(tlsCfg *tls.Config) string {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		b.Cleanup(cancel)
		go serverWith(b, dir, ServerOptions{MaxStreams: 4, TLS: tlsCfg}).Serve(ctx, ln)
		if tlsCfg != nil {
			return "https://" + ln.Addr().String()
		}
		return "http://" + ln.Addr().String()
	}
	url, plain := serve(srvTLS), serve(nil)
	a := admin()
	a.TLS = cliTLS
	var ours, curl, plainT time.Duration
	for i := 0; i < b.N; i++ {
		t0 := time.Now()
		res, err := Fetch(b.Context(), url, FetchOptions{MediaOptions: MediaOptions{Access: a}, Open: func() (io.Writer, error) { return io.Discard, nil }})
		if err != nil || res.Bytes != size {
			b.Fatalf("fetch: %v (%d bytes)", err, res.Bytes)
		}
		ours += time.Since(t0)
		t0 = time.Now()
		testenv.Run(b, "curl", "-sS", "-f", "-k", "--pinnedpubkey", pin, "-u", a.Credential.String(), "-o", "/dev/null", url+"/node.cpio.gz")
		curl += time.Since(t0)
		t0 = time.Now()
		if _, err := Fetch(b.Context(), plain, FetchOptions{MediaOptions: MediaOptions{Access: admin()}, Open: func() (io.Writer, error) { return io.Discard, nil }}); err != nil {
			b.Fatalf("fetch over plain HTTP: %v", err)
		}
		plainT += time.Since(t0)
	}
	mbs := func(d time.Duration) float64 { return float64(size) * float64(b.N) / 1e6 / d.Seconds() }
	b.ReportMetric(mbs(ours), "netclone-MB/s")
	b.ReportMetric(mbs(curl), "curl-MB/s")
	b.ReportMetric(mbs(ours)/mbs(curl), "rate-ratio")
	b.ReportMetric(mbs(plainT), "plain-http-MB/s")
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
