package image

import (
	"io"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/klauspost/pgzip"
)

type countW struct{ n int64 }

func (c *countW) Write(p []byte) (int, error) { c.n += int64(len(p)); return len(p), nil }

func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func TestZZLevels(t *testing.T) {
	data, err := os.ReadFile("/tmp/golden.cpio")
	if err != nil {
		t.Skip()
	}
	for _, lvl := range []int{1, 2, 3, 4, 5, 6} {
		c := &countW{}
		c0 := cpuTime()
		s := time.Now()
		w, _ := pgzip.NewWriterLevel(c, lvl)
		w.SetConcurrency(1<<20, 4)
		w.Write(data)
		w.Close()
		t.Logf("level %d: %.1f MB, cpu %.1fs wall %.1fs", lvl, float64(c.n)/1e6, (cpuTime() - c0).Seconds(), time.Since(s).Seconds())
	}
	_ = io.Discard
}
