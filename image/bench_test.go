package image

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/clonecd/clonecd/cpio"
	"github.com/clonecd/clonecd/internal/testenv"
)

// The benchmarks compare clonecd with the tools an admin would use
// instead, in the same run, on the Debian golden root, and report ratios
// (make bench). Each side runs `rounds` times, alternating, and the
// median counts: the machine may be shared. Wall time is what the goals
// are about; CPU time (user+system, every stage of a pipeline) is the
// steadier measure and is reported beside it.
const rounds = 3

// cost is the wall time and the CPU time (user+system) of one run.
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

// median of each side's runs
func median(cs []cost) cost {
	w := append([]cost(nil), cs...)
	sort.Slice(w, func(i, j int) bool { return w[i].wall < w[j].wall })
	c := append([]cost(nil), cs...)
	sort.Slice(c, func(i, j int) bool { return c[i].cpu < c[j].cpu })
	return cost{w[len(w)/2].wall, c[len(c)/2].cpu}
}

func worst(a, b cost) cost { return cost{max(a.wall, b.wall), max(a.cpu, b.cpu)} }

// report logs and reports a ratio of wall times (and of CPU times) with
// its goal.
func report(b *testing.B, name string, num, den cost, goal string) {
	r, rc := num.wall.Seconds()/den.wall.Seconds(), num.cpu.Seconds()/den.cpu.Seconds()
	b.ReportMetric(r, name)
	b.ReportMetric(rc, "cpu-"+name)
	b.Logf("%-34s %5.2f (cpu %5.2f)  %s  [%.2fs / %.2fs]", name, r, rc, goal, num.wall.Seconds(), den.wall.Seconds())
}

func fileSize(b *testing.B, p string) int64 {
	fi, err := os.Stat(p)
	if err != nil {
		b.Fatal(err)
	}
	return fi.Size()
}

// BenchmarkPackGolden packs the golden root with clonecd (gzip newc and
// crc, zstd) and with find | cpio -o | pigz, gzip and zstd -T0 -3.
// Goals: gzip <= 0.33 of pigz's time at <= 1.03 of its size; zstd <= 1.0
// of `zstd -T0 -3`'s time at <= 1.03 of its size.
func BenchmarkPackGolden(b *testing.B) {
	testenv.NeedRoot(b)
	testenv.NeedTools(b, "cpio", "pigz", "gzip", "zstd", "find")
	golden := testenv.GoldenRoot(b)
	dir := b.TempDir()
	// warm the page cache so that no side pays for the disk
	timeShell(b, golden, "find . -xdev | cpio -o -H crc > /dev/null 2>&1")
	// the same input on both sides: no default excludes
	all, err := NewFilter(true, nil, nil)
	if err != nil {
		b.Fatal(err)
	}
	out := func(name string) string { return filepath.Join(dir, name) }
	pack := func(name string, o PackOptions) cost {
		o.Filter = all
		var err error
		c := measure(func() { _, _, err = PackFile(golden, out(name), o) })
		if err != nil {
			b.Fatal(err)
		}
		return c
	}
	for i := 0; i < b.N; i++ {
		var ours, oursCRC, oursZstd, pigz, gz, zst []cost
		for r := 0; r < rounds; r++ {
			ours = append(ours, pack("ours.cpio.gz", PackOptions{}))
			oursCRC = append(oursCRC, pack("ours-crc.cpio.gz", PackOptions{Format: cpio.CRC}))
			oursZstd = append(oursZstd, pack("ours.cpio.zst", PackOptions{Compress: Zstd}))
			pigz = append(pigz, timeShell(b, golden, "find . -xdev | cpio -o -H crc 2>/dev/null | pigz > "+out("pigz.cpio.gz")))
			zst = append(zst, timeShell(b, golden, "find . -xdev | cpio -o -H newc 2>/dev/null | zstd -q -T0 -3 > "+out("zstd.cpio.zst")))
			if r == 0 { // gzip(1) is slow and steady: once
				gz = append(gz, timeShell(b, golden, "find . -xdev | cpio -o -H crc 2>/dev/null | gzip > "+out("gzip.cpio.gz")))
			}
		}
		o, oc, oz, p, g, z := median(ours), median(oursCRC), median(oursZstd), median(pigz), median(gz), median(zst)
		report(b, "pack-gzip/pigz", o, p, "goal <= 0.33")
		report(b, "pack-gzip-crc/pigz", oc, p, "")
		report(b, "pack-gzip/gzip", o, g, "")
		report(b, "pack-zstd/zstd-T0-3", oz, z, "goal <= 1.0")
		for _, s := range []struct{ name, ours, theirs string }{
			{"size-gzip/pigz", "ours.cpio.gz", "pigz.cpio.gz"},
			{"size-zstd/zstd-3", "ours.cpio.zst", "zstd.cpio.zst"},
		} {
			r := float64(fileSize(b, out(s.ours))) / float64(fileSize(b, out(s.theirs)))
			b.ReportMetric(r, s.name)
			b.Logf("%-34s %5.3f         goal <= 1.03  [%d / %d bytes]", s.name, r, fileSize(b, out(s.ours)), fileSize(b, out(s.theirs)))
		}
		b.ReportMetric(float64(fileSize(b, out("ours.cpio.gz")))/1e6, "gzip-MB")
		b.ReportMetric(float64(fileSize(b, out("ours.cpio.zst")))/1e6, "zstd-MB")
	}
}

// BenchmarkUnpackGolden restores the golden root's image, gzip and zstd,
// into a tmpfs and compares with decompressing alone (zstd -dc, pigz -dc
// > /dev/null), with copying the tree (cp -a, tmpfs to tmpfs) and with
// pigz -dc | cpio -idmu. Goals: zstd unpack <= 1.3 of max(zstd -dc, cp -a)
// and <= 0.5 of gzip unpack; gzip unpack <= 1.3 of max(pigz -dc, cp -a).
func BenchmarkUnpackGolden(b *testing.B) {
	testenv.NeedRoot(b)
	testenv.NeedTools(b, "cpio", "pigz", "zstd", "cp")
	golden := testenv.GoldenRoot(b)
	dir := b.TempDir()
	imgs := map[Compression]string{}
	for _, c := range []Compression{Gzip, Zstd} {
		imgs[c] = filepath.Join(dir, c.ImageName())
		if _, _, err := PackFile(golden, imgs[c], PackOptions{Compress: c}); err != nil {
			b.Fatal(err)
		}
	}
	mnt := filepath.Join(dir, "tmpfs")
	os.Mkdir(mnt, 0o755)
	if err := unix.Mount("tmpfs", mnt, "tmpfs", 0, "size=6g"); err != nil {
		b.Fatalf("mount tmpfs: %v", err)
	}
	b.Cleanup(func() { unix.Unmount(mnt, unix.MNT_DETACH) })
	at := func(name string) string { return filepath.Join(mnt, name) }
	clean := func(names ...string) {
		for _, n := range names {
			if err := os.RemoveAll(at(n)); err != nil {
				b.Fatal(err)
			}
		}
	}
	unpack := func(c Compression, o UnpackOptions) cost {
		var err error
		res := measure(func() { _, err = UnpackFile(imgs[c], at("ours"), o) })
		if err != nil {
			b.Fatal(err)
		}
		return res
	}
	for i := 0; i < b.N; i++ {
		var zs, gs, zs1, zdc, pdc, cpa, gnu []cost
		for r := 0; r < rounds; r++ {
			zs = append(zs, unpack(Zstd, UnpackOptions{}))
			cpa = append(cpa, timeShell(b, mnt, "cp -a ours copy"))
			clean("ours", "copy")
			gs = append(gs, unpack(Gzip, UnpackOptions{}))
			clean("ours")
			zs1 = append(zs1, unpack(Zstd, UnpackOptions{Workers: 1}))
			clean("ours")
			zdc = append(zdc, timeShell(b, mnt, "zstd -q -dc "+imgs[Zstd]+" > /dev/null"))
			pdc = append(pdc, timeShell(b, mnt, "pigz -dc "+imgs[Gzip]+" > /dev/null"))
			os.Mkdir(at("gnu"), 0o755)
			gnu = append(gnu, timeShell(b, at("gnu"), "pigz -dc "+imgs[Gzip]+" | cpio -idmu --quiet"))
			clean("gnu")
		}
		z, g, z1, zd, pd, cp, gn := median(zs), median(gs), median(zs1), median(zdc), median(pdc), median(cpa), median(gnu)
		report(b, "unpack-zstd/max(zstd-dc,cp-a)", z, worst(zd, cp), "goal <= 1.3")
		report(b, "unpack-zstd/unpack-gzip", z, g, "goal <= 0.5")
		report(b, "unpack-gzip/max(pigz-dc,cp-a)", g, worst(pd, cp), "keep <= 1.3")
		report(b, "unpack-gzip/pigz-cpio", g, gn, "goal <= 0.9")
		report(b, "unpack-zstd/sequential", z, z1, "the writers' gain")
		for _, s := range []struct {
			name string
			c    cost
		}{{"zstd-unpack", z}, {"gzip-unpack", g}, {"zstd-sequential", z1}, {"zstd-dc", zd}, {"pigz-dc", pd}, {"cp-a", cp}, {"pigz-cpio", gn}} {
			b.ReportMetric(s.c.wall.Seconds(), s.name+"-s")
			b.Logf("%-16s %6.2fs wall %6.2fs cpu", s.name, s.c.wall.Seconds(), s.c.cpu.Seconds())
		}
		b.Logf("images: %s", fmt.Sprint(fileSize(b, imgs[Gzip]), " bytes gzip, ", fileSize(b, imgs[Zstd]), " bytes zstd"))
	}
}
