package partition

import (
	"testing"
	"time"

	"github.com/clonecd/clonecd/internal/testenv"
)

// BenchmarkDumpVsSfdisk reads the same gpt table with Dump and with
// `sfdisk -d` and reports the time ratio (sfdisk / clonecd).
func BenchmarkDumpVsSfdisk(b *testing.B) {
	testenv.NeedTools(b, "sfdisk")
	var c tableCase
	for _, tc := range tableCases {
		if tc.name == "gpt-lba34-names" { // names, attrs and a gap
			c = tc
		}
	}
	img := testenv.Sparse(b, "bench.img", c.mib<<20)
	sfdiskScript(b, img, c.script)
	const n = 20
	var ours, theirs time.Duration
	for i := 0; i < b.N; i++ {
		t0 := time.Now()
		for j := 0; j < n; j++ {
			if _, err := Dump(img); err != nil {
				b.Fatal(err)
			}
		}
		t1 := time.Now()
		for j := 0; j < n; j++ {
			testenv.Run(b, "sfdisk", "-d", img)
		}
		ours += t1.Sub(t0)
		theirs += time.Since(t1)
	}
	b.ReportMetric(float64(ours.Microseconds())/float64(n*b.N), "clonecd-µs/dump")
	b.ReportMetric(float64(theirs.Microseconds())/float64(n*b.N), "sfdisk-µs/dump")
	b.ReportMetric(float64(theirs)/float64(ours), "speedup")
}
