package image

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/clonecd/clonecd/cpio"
	"github.com/clonecd/clonecd/internal/testenv"
)

func timeShell(b *testing.B, dir, script string) time.Duration {
	b.Helper()
	start := time.Now()
	cmd := exec.Command("bash", "-c", "set -o pipefail; "+script)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("%s: %v\n%s", script, err, out)
	}
	return time.Since(start)
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
	for i := 0; i < b.N; i++ {
		var ours, oursCRC time.Duration
		for _, f := range []cpio.Format{cpio.Newc, cpio.CRC} {
			start := time.Now()
			if _, _, err := PackFile(golden, filepath.Join(dir, "ours-"+f.String()+".cpio.gz"), PackOptions{Format: f}); err != nil {
				b.Fatal(err)
			}
			if f == cpio.Newc {
				ours = time.Since(start)
			} else {
				oursCRC = time.Since(start)
			}
		}
		pigz := timeShell(b, golden, "find . -xdev | cpio -o -H crc 2>/dev/null | pigz > "+filepath.Join(dir, "pigz.cpio.gz"))
		gz := timeShell(b, golden, "find . -xdev | cpio -o -H crc 2>/dev/null | gzip > "+filepath.Join(dir, "gzip.cpio.gz"))
		oursSize := fileSize(b, filepath.Join(dir, "ours-newc.cpio.gz"))
		pigzSize := fileSize(b, filepath.Join(dir, "pigz.cpio.gz"))
		b.ReportMetric(ours.Seconds(), "clonecd-s")
		b.ReportMetric(oursCRC.Seconds(), "clonecd-crc-s")
		b.ReportMetric(pigz.Seconds(), "pigz-s")
		b.ReportMetric(gz.Seconds(), "gzip-s")
		b.ReportMetric(ours.Seconds()/pigz.Seconds(), "time/pigz")
		b.ReportMetric(ours.Seconds()/gz.Seconds(), "time/gzip")
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
		start := time.Now()
		if _, err := UnpackFile(img, ours, UnpackOptions{}); err != nil {
			b.Fatal(err)
		}
		t1 := time.Since(start)
		t2 := timeShell(b, gnu, "pigz -dc "+img+" | cpio -idmu --quiet")
		b.StopTimer()
		b.ReportMetric(t1.Seconds(), "clonecd-s")
		b.ReportMetric(t2.Seconds(), "pigz-cpio-s")
		b.ReportMetric(t1.Seconds()/t2.Seconds(), "time/pigz-cpio")
		os.RemoveAll(ours)
		os.RemoveAll(gnu)
		b.StartTimer()
	}
}
