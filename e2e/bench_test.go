package e2e

import (
	"os"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/clonecd/clonecd/internal/vm"
)

var (
	stepRE = regexp.MustCompile(`clonecd: step (\w+) done in ([0-9.]+)s`)
	zcatRE = regexp.MustCompile(`ZCAT ([0-9]+) END`)
)

// BenchmarkCloneTCG clones the Debian golden root in QEMU TCG and reports
// seconds per step, boot to first step, and clonecd's unpack against a
// plain `zcat | cpio -idm` of the same image in the same VM (run in the
// rescue shell at clonecd.break=unpack, onto the /data partition).
func BenchmarkCloneTCG(b *testing.B) {
	w := setup(b)
	for i := 0; i < b.N; i++ {
		img := blankDisk(b, "bench.img")
		v, err := vm.Start(vm.Options{Name: "bench", CDROM: w.iso, Disks: []vm.Disk{{Path: img}}, MemMB: 2048, NIC: nic("node06"),
			Kernel: w.kernel, Initrd: w.initrd, Append: "console=tty0 console=ttyS0,115200 clonecd.break=unpack clonecd.after=poweroff",
			Log: consoleLog(b, w, "bench")})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(v.Kill)
		start := time.Now()
		if _, err := v.Expect(`clonecd: \[1/10\] setup`, cloneWait); err != nil {
			b.Fatal(err)
		}
		boot := time.Since(start).Seconds()
		if _, err := v.Expect(`break before step unpack`, cloneWait); err != nil {
			b.Fatal(err)
		}
		v.Send("\rM=$(busybox awk '$3==\"iso9660\"{print $2; exit}' /proc/mounts); busybox mkdir -p /mnt/b && busybox mount -t ext4 /dev/vda3 /mnt/b && cd /mnt/b && S=$(busybox date +%s) && busybox zcat $M/node.cpio.gz | busybox cpio -idm 2>/dev/null; E=$(busybox date +%s); cd /; busybox umount /mnt/b; echo \"ZC\"\"AT $((E-S)) END\"\r")
		m, err := v.Expect(zcatRE.String(), cloneWait)
		if err != nil {
			b.Fatal(err)
		}
		zcat, _ := strconv.ParseFloat(zcatRE.FindStringSubmatch(m)[1], 64)
		v.Send("exit\r")
		if _, err := v.Expect(`clonecd: clone done`, cloneWait); err != nil {
			b.Fatal(err)
		}
		v.Wait(5 * time.Minute)
		total := boot
		var unpack float64
		for _, m := range stepRE.FindAllStringSubmatch(v.Output(), -1) {
			sec, _ := strconv.ParseFloat(m[2], 64)
			b.ReportMetric(sec, m[1]+"-s")
			total += sec
			if m[1] == "unpack" {
				unpack = sec
			}
		}
		st, _ := os.Stat(w.image)
		mb := float64(st.Size()) / 1e6
		b.ReportMetric(boot, "boot-to-setup-s")
		b.ReportMetric(total, "poweron-to-done-s")
		if unpack > 0 && zcat > 0 {
			b.ReportMetric(mb/unpack, "unpack-gzMB/s")
			b.ReportMetric(mb/zcat, "zcat-cpio-gzMB/s")
			b.ReportMetric(zcat/unpack, "clonecd-vs-zcat-cpio-x")
		}
	}
}
