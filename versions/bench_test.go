package versions

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/clonecd/clonecd/image"
	"github.com/clonecd/clonecd/internal/testenv"
)

// BenchmarkPublish publishes an image of the golden root (whole-image
// check, then copy and sha256 in one pass) and, in the same run, does
// what an admin would by hand: gzip -t, cp into the store and sha256sum
// it. Reports MB/s and the ratio hand/publish (>1: Publish is faster).
func BenchmarkPublish(b *testing.B) {
	testenv.NeedTools(b, "gzip", "cp", "sha256sum")
	src := b.TempDir()
	img := filepath.Join(src, "node.cpio.gz")
	if _, _, err := image.PackFile(testenv.GoldenRoot(b), img, image.PackOptions{}); err != nil {
		b.Fatal(err)
	}
	st, _ := os.Stat(img)
	size := st.Size()
	lay := filepath.Join(src, "node.sfdisk")
	os.WriteFile(lay, []byte("label: dos\n\n/dev/sda1 : start=2048, size=2048, type=83\n"), 0o644)
	var pub, hand time.Duration
	for range b.N {
		s, _ := Open(b.TempDir())
		t0 := time.Now()
		if _, err := s.Publish(img, PublishOptions{Layout: lay}); err != nil {
			b.Fatal(err)
		}
		pub += time.Since(t0)

		dst := filepath.Join(b.TempDir(), "node.cpio.gz")
		t0 = time.Now()
		for _, c := range [][]string{{"gzip", "-t", img}, {"cp", img, dst}, {"sha256sum", dst}} {
			if out, err := exec.Command(c[0], c[1:]...).CombinedOutput(); err != nil {
				b.Fatalf("%v: %v %s", c, err, out)
			}
		}
		hand += time.Since(t0)
	}
	b.SetBytes(size)
	b.ReportMetric(float64(size)*float64(b.N)/pub.Seconds()/1e6, "publish-MB/s")
	b.ReportMetric(float64(size)*float64(b.N)/hand.Seconds()/1e6, "gzip-t+cp+sha256sum-MB/s")
	b.ReportMetric(hand.Seconds()/pub.Seconds(), "hand/publish")
}
