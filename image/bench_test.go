package image

import (
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/clonecd/clonecd/cpio"
	"github.com/clonecd/clonecd/internal/testenv"
)

// cost is the wall time and the CPU time (user+system) of one run. The
// machine may be shared: CPU time is the steadier measure.
type cost struct{ wall, cpu time.Duration }

func selfCPU() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func measure(fn func()) cost {
	c0, t0 := selfCPU(), time.Now()
	fn()
	return cost{time.Since(t0), selfCPU() - c0}
}

// timeShell runs a pipeline; its CPU time includes every stage (bash
// waits for them all).
func timeShell(b *testing.B, dir, script string) cost {
	b.Helper()
	start := time.Now()
	cmd := exec.Command("bash", "-c", "set -o pipefail; "+script)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("%s: %v\n%s", script, err, out)
	}
	ru := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	return cost{time.Since(start), time.Duration(ru.Utime.Nano() + ru.Stime.Nano())}
}

func fileSize(b *testing.B, p string) int64 {
	fi, err := os.Stat(p)
	if err != nil {
		b.Fatal(err)
	}
	return fi.Size()
}

// BenchmarkPackGolden packs the Debian golden root with clonecd (newc and
// crc) and with find | cpio -o -H crc | pigz and | gzip, and reports time
// and size ratios against pigz (goal: <= 0.33 of its time, <= 1.03 of its
// size).
func BenchmarkPackGolden(b *testing.B) {
	testenv.NeedRoot(b)
	testenv.NeedTools(b, "cpio", "pigz", "gzip", "find")
	golden := testenv.GoldenRoot(b)
	dir := b.TempDir()
	// warm the page cache so that no side pays for the disk
	timeShell(b, golden, "find . -xdev | cpio -o -H crc > /dev/null 2>&1")
	// the same input on both sides: no default excludes
	all, err := NewFilter(true, nil, nil)
	if err != nil {
		b.Fatal(err)
	}
	for i := 0; i < b.N; i++ {
		var ours, oursCRC cost
		for _, f := range []cpio.Format{cpio.Newc, cpio.CRC} {
			var err error
			c := measure(func() {
				_, _, err = PackFile(golden, filepath.Join(dir, "ours-"+f.String()+".cpio.gz"), PackOptions{Format: f, Filter: all})
			})
			if err != nil {
				b.Fatal(err)
			}
			if f == cpio.Newc {
				ours = c
			} else {
				oursCRC = c
			}
		}
		pigz := timeShell(b, golden, "find . -xdev | cpio -o -H crc 2>/dev/null | pigz > "+filepath.Join(dir, "pigz.cpio.gz"))
		gz := timeShell(b, golden, "find . -xdev | cpio -o -H crc 2>/dev/null | gzip > "+filepath.Join(dir, "gzip.cpio.gz"))
		oursSize := fileSize(b, filepath.Join(dir, "ours-newc.cpio.gz"))
		pigzSize := fileSize(b, filepath.Join(dir, "pigz.cpio.gz"))
		b.ReportMetric(ours.wall.Seconds(), "clonecd-s")
		b.ReportMetric(oursCRC.wall.Seconds(), "clonecd-crc-s")
		b.ReportMetric(pigz.wall.Seconds(), "pigz-s")
		b.ReportMetric(gz.wall.Seconds(), "gzip-s")
		b.ReportMetric(ours.wall.Seconds()/pigz.wall.Seconds(), "time/pigz")
		b.ReportMetric(ours.wall.Seconds()/gz.wall.Seconds(), "time/gzip")
		b.ReportMetric(oursCRC.wall.Seconds()/pigz.wall.Seconds(), "crc-time/pigz")
		b.ReportMetric(ours.cpu.Seconds()/pigz.cpu.Seconds(), "cpu/pigz")
		b.ReportMetric(ours.cpu.Seconds()/gz.cpu.Seconds(), "cpu/gzip")
		b.ReportMetric(float64(oursSize)/float64(pigzSize), "size/pigz")
		b.ReportMetric(float64(oursSize)/1e6, "clonecd-MB")
		b.ReportMetric(float64(pigzSize)/1e6, "pigz-MB")
	}
}

// BenchmarkUnpackGolden restores the golden root's image into a tmpfs with
// clonecd and with pigz -dc | cpio -idmu, and reports the time ratio
// (goal: <= 0.9).
func BenchmarkUnpackGolden(b *testing.B) {
	testenv.NeedRoot(b)
	testenv.NeedTools(b, "cpio", "pigz")
	golden := testenv.GoldenRoot(b)
	dir := b.TempDir()
	img := filepath.Join(dir, "node.cpio.gz")
	if _, _, err := PackFile(golden, img, PackOptions{}); err != nil {
		b.Fatal(err)
	}
	mnt := filepath.Join(dir, "tmpfs")
	os.Mkdir(mnt, 0o755)
	if err := unix.Mount("tmpfs", mnt, "tmpfs", 0, "size=4g"); err != nil {
		b.Fatalf("mount tmpfs: %v", err)
	}
	b.Cleanup(func() { unix.Unmount(mnt, unix.MNT_DETACH) })
	for i := 0; i < b.N; i++ {
		ours, gnu := filepath.Join(mnt, "ours"), filepath.Join(mnt, "gnu")
		os.Mkdir(ours, 0o755)
		os.Mkdir(gnu, 0o755)
		b.ResetTimer()
		var err error
		t1 := measure(func() { _, err = UnpackFile(img, ours, UnpackOptions{}) })
		if err != nil {
			b.Fatal(err)
		}
		t2 := timeShell(b, gnu, "pigz -dc "+img+" | cpio -idmu --quiet")
		b.StopTimer()
		b.ReportMetric(t1.wall.Seconds(), "clonecd-s")
		b.ReportMetric(t2.wall.Seconds(), "pigz-cpio-s")
		b.ReportMetric(t1.wall.Seconds()/t2.wall.Seconds(), "time/pigz-cpio")
		b.ReportMetric(t1.cpu.Seconds()/t2.cpu.Seconds(), "cpu/pigz-cpio")
		os.RemoveAll(ours)
		os.RemoveAll(gnu)
		b.StartTimer()
	}
}
