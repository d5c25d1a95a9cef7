package nodesync

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/clonecd/clonecd/internal/testenv"
)

// A bench scenario turns a copy of the golden root (version A) into
// version B.
type scenario struct {
	name   string
	mutate func(b *testing.B, dir string) string // returns what it did
}

var scenarios = []scenario{
	{"a-no-change", func(*testing.B, string) string { return "nothing" }},
	{"b-one-package", onePackage},
	{"c-10pct-rebuilt", func(b *testing.B, dir string) string { return tenth(b, dir, true) }},
	{"d-10pct-small-edit", func(b *testing.B, dir string) string { return tenth(b, dir, false) }},
}

// onePackage rebuilds every file of the installed package whose files
// come nearest 3 MB among those with 30 to 80 files of 1 to 10 MB.
func onePackage(b *testing.B, dir string) string {
	lists, _ := filepath.Glob(filepath.Join(dir, "var/lib/dpkg/info/*.list"))
	sort.Strings(lists)
	best, bestFiles, bestBytes := "", []string(nil), int64(0)
	for _, l := range lists {
		data, err := os.ReadFile(l)
		if err != nil {
			b.Fatal(err)
		}
		var files []string
		var n int64
		for _, p := range strings.Split(string(data), "\n") {
			fi, err := os.Lstat(filepath.Join(dir, p))
			if p == "" || err != nil || !fi.Mode().IsRegular() {
				continue
			}
			files = append(files, p)
			n += fi.Size()
		}
		if len(files) < 30 || len(files) > 80 || n < 1<<20 || n > 10<<20 {
			continue
		}
		if best == "" || abs(n-3<<20) < abs(bestBytes-3<<20) {
			best, bestFiles, bestBytes = filepath.Base(l), files, n
		}
	}
	if best == "" {
		b.Fatal("no package of 30 to 80 files and 1 to 10 MB in the golden root")
	}
	for i, p := range bestFiles {
		rebuild(b, filepath.Join(dir, p), i%3)
	}
	return fmt.Sprintf("package %s rebuilt: %d files, %.1f MB", strings.TrimSuffix(best, ".list"), len(bestFiles), float64(bestBytes)/1e6)
}

func abs(n int64) int64 {
	if n < 0 {
		return -n
	}
	return n
}

// tenth rebuilds (or edits 16 bytes of) every tenth regular file.
func tenth(b *testing.B, dir string, rebuilt bool) string {
	files := regularFiles(b, dir)
	var n, bytes int64
	for i, f := range files {
		if i%10 != 3 {
			continue
		}
		p := filepath.Join(dir, f)
		fi, _ := os.Stat(p)
		if rebuilt {
			rebuild(b, p, i%3)
		} else {
			edit(b, p)
		}
		n++
		bytes += fi.Size()
	}
	what := "rebuilt"
	if !rebuilt {
		what = "16 bytes edited in the middle"
	}
	return fmt.Sprintf("%d of %d files %s, %.1f MB", n, len(files), what, float64(bytes)/1e6)
}

// daemon is an rsync daemon on loopback.
type daemon struct {
	addr string
	pid  int
}

// childCPU is the CPU time of the daemon's finished children (one per
// connection), from /proc/PID/stat's cutime and cstime.
func (d *daemon) childCPU(b *testing.B) time.Duration {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", d.pid))
	if err != nil {
		b.Fatal(err)
	}
	f := strings.Fields(string(raw[strings.LastIndexByte(string(raw), ')')+2:]))
	cu, _ := strconv.ParseInt(f[13], 10, 64)
	cs, _ := strconv.ParseInt(f[14], 10, 64)
	return time.Duration(cu+cs) * time.Second / 100 // USER_HZ
}

// rsyncd runs an rsync daemon on loopback serving modules (name -> dir)
// as root, read only, with numeric ids.
func rsyncd(b *testing.B, modules map[string]string) *daemon {
	b.Helper()
	dir := b.TempDir()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	var conf strings.Builder
	fmt.Fprintf(&conf, "pid file = %s/rsyncd.pid\nuse chroot = no\nnumeric ids = yes\nuid = 0\ngid = 0\nread only = yes\n", dir)
	for name, path := range modules {
		fmt.Fprintf(&conf, "[%s]\n\tpath = %s\n", name, path)
	}
	cf := filepath.Join(dir, "rsyncd.conf")
	if err := os.WriteFile(cf, []byte(conf.String()), 0o600); err != nil {
		b.Fatal(err)
	}
	cmd := exec.Command(testenv.Tool("rsync"), "--daemon", "--no-detach", "--config="+cf,
		"--address=127.0.0.1", "--port="+strconv.Itoa(port), "--log-file="+dir+"/rsyncd.log")
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	addr := "127.0.0.1:" + strconv.Itoa(port)
	for i := 0; ; i++ {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
			return &daemon{addr, cmd.Process.Pid}
		}
		if i == 100 {
			b.Fatalf("rsync daemon on %s: %v", addr, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

var statRe = regexp.MustCompile(`Total bytes (sent|received): ([0-9,]+)`)

// runRsync pulls module into dir; it returns wall time, the CPU time of
// client and daemon and the bytes rsync counted both ways.
func runRsync(b *testing.B, d *daemon, module, dir string) (time.Duration, time.Duration, int64) {
	b.Helper()
	c0 := d.childCPU(b)
	t0 := time.Now()
	cmd := exec.Command(testenv.Tool("rsync"), "-aHAX", "--numeric-ids", "--delete", "--stats",
		"rsync://"+d.addr+"/"+module+"/", dir+"/")
	out, err := cmd.CombinedOutput()
	wall := time.Since(t0)
	if err != nil {
		b.Fatalf("rsync: %v\n%s", err, out)
	}
	ru := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	var n int64
	for _, m := range statRe.FindAllStringSubmatch(string(out), -1) {
		v, _ := strconv.ParseInt(strings.ReplaceAll(m[2], ",", ""), 10, 64)
		n += v
	}
	if n == 0 {
		b.Fatalf("no byte counts in rsync's --stats:\n%s", out)
	}
	time.Sleep(100 * time.Millisecond) // the daemon reaps its child
	return wall, time.Duration(ru.Utime.Nano()+ru.Stime.Nano()) + d.childCPU(b) - c0, n
}

// freshNode unpacks A into dir and flushes it, so neither tool pays for
// the other's writes.
func freshNode(b *testing.B, img, dir string) {
	b.Helper()
	if err := os.RemoveAll(dir); err != nil {
		b.Fatal(err)
	}
	unpack(b, img, dir)
	if err := syncfs(dir); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkSyncVsRsync syncs a node at the Debian golden root (A) to B
// with clonecd and with `rsync -aHAX --numeric-ids --delete` from an rsync
// daemon on loopback, same run, for each scenario: ratios of bytes on
// the wire (ours counted at the HTTP connections, rsync's by --stats) and
// of wall time. Goals: bytes <= 1.0 for b and c, time <= 1.0 for a, b, c.
// d (small edits in place) is the case rsync's delta transfer is made
// for, shown for honesty.
func BenchmarkSyncVsRsync(b *testing.B) {
	testenv.NeedRoot(b)
	testenv.NeedTools(b, "rsync")
	imgA := goldenImage(b)
	work := b.TempDir()
	store, err := OpenStore(filepath.Join(work, "blobs"))
	if err != nil {
		b.Fatal(err)
	}
	modules := map[string]string{}
	sums := map[string]Sum{}
	whats := map[string]string{}
	for _, sc := range scenarios {
		dir := filepath.Join(work, sc.name)
		unpack(b, imgA, dir)
		whats[sc.name] = sc.mutate(b, dir)
		imgB := pack(b, dir)
		_, st, err := Publish(imgB, store.Dir(), filepath.Join(work, sc.name+".files"), BuildOptions{Store: store})
		if err != nil {
			b.Fatal(err)
		}
		os.Remove(imgB)
		modules[sc.name] = dir
		sums[sc.name] = st.FilesSum
	}
	rsync := rsyncd(b, modules)
	srv := serve(b, store)
	node := filepath.Join(work, "node")
	for _, sc := range scenarios {
		b.Run(sc.name, func(b *testing.B) {
			b.StopTimer()
			// Best of two alternating runs each: the machine may be
			// shared, and a spike hits one run, not both.
			var wire int64
			var rep *Report
			best := func(old, d time.Duration) time.Duration {
				if old == 0 || d < old {
					return d
				}
				return old
			}
			var wall, cpu, rWall, rCPU time.Duration
			var rBytes int64
			for range 2 {
				freshNode(b, imgA, node)
				w, c, n := runRsync(b, rsync, sc.name, node)
				rWall, rCPU, rBytes = best(rWall, w), best(rCPU, c), n
				freshNode(b, imgA, node)
				var counted atomic.Int64
				src := &HTTPSource{URL: srv.URL, Client: countingClient(&counted)}
				c0 := selfCPU()
				b.StartTimer()
				t0 := time.Now()
				r, err := SyncSum(context.Background(), node, sums[sc.name], src, Options{})
				w = time.Since(t0)
				b.StopTimer()
				if err != nil {
					b.Fatal(err)
				}
				wall, cpu, wire, rep = best(wall, w), best(cpu, selfCPU()-c0), counted.Load(), r
			}
			b.ReportMetric(float64(wire)/float64(rBytes), "wire/rsync")
			b.ReportMetric(wall.Seconds()/rWall.Seconds(), "time/rsync")
			b.ReportMetric(float64(wire)/1e6, "MB")
			b.ReportMetric(float64(rBytes)/1e6, "rsync-MB")
			b.ReportMetric(wall.Seconds(), "s")
			b.ReportMetric(rWall.Seconds(), "rsync-s")
			b.ReportMetric(cpu.Seconds()/rCPU.Seconds(), "cpu/rsync")
			b.Logf("%s (%s): clonecd %d bytes, %v (cpu %v, %d changes, %d blobs, %d bytes hashed); rsync %d bytes, %v (cpu %v, client and daemon); best of 2",
				sc.name, whats[sc.name], wire, wall.Round(time.Millisecond), cpu.Round(time.Millisecond),
				len(rep.Changes), rep.FetchedBlobs, rep.Hashed, rBytes, rWall.Round(time.Millisecond), rCPU.Round(time.Millisecond))
			if sc.name == "a-no-change" && !rep.Current() {
				b.Errorf("no-change sync made %d changes: %v", len(rep.Changes), rep.Changes[:min(5, len(rep.Changes))])
			}
		})
	}
	unix.Sync()
}
