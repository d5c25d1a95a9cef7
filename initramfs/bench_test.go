package initramfs

import (
	"io"
	"os/exec"
	"testing"
	"time"

	"github.com/clonecd/clonecd/internal/testenv"
)

// BenchmarkBuild builds the default initramfs from the golden root and,
// in the same run, packs the same tree with `find | cpio -o -H newc |
// gzip -6`: reports the compressed size and the time ratio (ours/GNU).
func BenchmarkBuild(b *testing.B) {
	testenv.NeedTools(b, "cpio", "gzip")
	o := goldenOptions(b)
	var s *Summary
	start := time.Now()
	for i := 0; i < b.N; i++ {
		var err error
		if s, err = Build(io.Discard, o); err != nil {
			b.Fatal(err)
		}
	}
	ours := time.Since(start) / time.Duration(b.N)
	b.StopTimer()
	img, _ := build(b, o)
	dir := extract(b, img)
	start = time.Now()
	cmd := exec.Command("sh", "-c", "find . | cpio -o -H newc --quiet | gzip -6 | wc -c")
	cmd.Dir = dir
	out, err := cmd.Output()
	if err != nil {
		b.Fatalf("cpio|gzip: %v", err)
	}
	gnu := time.Since(start)
	var gnuSize int64
	for _, c := range out {
		if c >= '0' && c <= '9' {
			gnuSize = gnuSize*10 + int64(c-'0')
		}
	}
	b.ReportMetric(float64(s.Compressed)/(1<<20), "MiB-compressed")
	b.ReportMetric(float64(s.Uncompressed)/(1<<20), "MiB-cpio")
	b.ReportMetric(float64(s.Modules), "modules")
	b.ReportMetric(ours.Seconds()/gnu.Seconds(), "time-vs-cpio|gzip")
	b.ReportMetric(float64(s.Compressed)/float64(gnuSize), "size-vs-cpio|gzip")
}
