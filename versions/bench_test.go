package versions

import (
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// BenchmarkPublish publishes a 128 MiB image (copy and sha256 in one pass)
// and, in the same run, does what an admin would by hand: cp into the
// store and sha256sum it. Reports MB/s and the ratio hand/publish (>1:
// Publish is faster).
func BenchmarkPublish(b *testing.B) {
	const size = 128 << 20
	src := b.TempDir()
	img := filepath.Join(src, "node.cpio.gz")
	data := make([]byte, size)
	rand.New(rand.NewSource(1)).Read(data)
	data[0], data[1] = 0x1f, 0x8b
	if err := os.WriteFile(img, data, 0o644); err != nil {
		b.Fatal(err)
	}
	lay := filepath.Join(src, "node.sfdisk")
	os.WriteFile(lay, []byte("label: dos\n\n/dev/sda1 : start=2048, size=2048, type=83\n"), 0o644)
	var pub, hand time.Duration
	for i := 0; i < b.N; i++ {
		s, err := Open(b.TempDir())
		if err != nil {
			b.Fatal(err)
		}
		t0 := time.Now()
		if _, err := s.Publish(img, lay, "", ""); err != nil {
			b.Fatal(err)
		}
		pub += time.Since(t0)

		dst := filepath.Join(b.TempDir(), "node.cpio.gz")
		t0 = time.Now()
		if out, err := exec.Command("cp", img, dst).CombinedOutput(); err != nil {
			b.Fatalf("cp: %v %s", err, out)
		}
		if out, err := exec.Command("sha256sum", dst).CombinedOutput(); err != nil {
			b.Fatalf("sha256sum: %v %s", err, out)
		}
		hand += time.Since(t0)
	}
	b.SetBytes(size)
	b.ReportMetric(float64(size)*float64(b.N)/pub.Seconds()/1e6, "publish-MB/s")
	b.ReportMetric(float64(size)*float64(b.N)/hand.Seconds()/1e6, "cp+sha256sum-MB/s")
	b.ReportMetric(hand.Seconds()/pub.Seconds(), "hand/publish")
}
