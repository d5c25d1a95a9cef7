package pxe

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/clonecd/clonecd/builder"
	"github.com/clonecd/clonecd/internal/testenv"
	"github.com/clonecd/clonecd/internal/vm"
)

// The boot matrix (make matrix; not in CI, too slow under TCG): the ISO in
// probe mode (clonecd.mode=probe: drivers by modalias, the media found and
// its sha256 checked, power off) under SeaBIOS and OVMF, with each disk
// bus (IDE, SATA/AHCI, virtio, NVMe: one blank 4 GiB disk) and each NIC
// (e1000, virtio-net, rtl8139): 24 boots. Then one full clone per disk
// type (SeaBIOS, e1000), booted to login. The table goes to the test log
// and to $CLONECD_MATRIX_OUT.

var (
	matrixDisks = []struct{ bus, name, driver string }{
		{"ide", "IDE", "ata_piix"}, {"ahci", "SATA", "ahci"}, {"virtio", "virtio", "virtio_blk"}, {"nvme", "NVMe", "nvme"}}
	matrixNICs = []struct{ model, name, driver string }{
		{"e1000", "e1000", "e1000"}, {"virtio-net-pci", "virtio-net", "virtio_net"}, {"rtl8139", "rtl8139", "8139"}}
)

type matrixResult struct {
	fw, disk, nic string
	ok            bool
	secs          float64
	note          string
}

func TestMatrix(t *testing.T) {
	if !testenv.Matrix() {
		t.Skip("the boot matrix runs with make matrix (CLONECD_MATRIX=1)")
	}
	testenv.NeedRoot(t)
	m := newMedia(t)
	dir := t.TempDir()
	build := func(name, appendArgs string) string {
		out := filepath.Join(dir, name)
		if _, err := builder.Build(builder.Options{Output: out, Image: m.image, Layout: m.layout, Nodes: m.nodes, Version: labVersion,
			Kernel: m.kernel, Initrd: m.initrd, Append: appendArgs, Quiet: true}); err != nil {
			t.Fatal(err)
		}
		return out
	}
	probeISO, cloneISO := build("probe.iso", "clonecd.mode=probe"), build("clone.iso", "")

	var mu sync.Mutex
	var results []matrixResult
	out := os.Getenv("CLONECD_MATRIX_OUT")
	record := func(r matrixResult) { // the table so far, after every boot
		mu.Lock()
		defer mu.Unlock()
		results = append(results, r)
		t.Logf("%s %s %s: ok=%v %.0fs %s", r.fw, r.disk, r.nic, r.ok, r.secs, r.note)
		if out != "" {
			os.WriteFile(out, []byte(matrixTable(results)), 0o644)
		}
	}
	var wg sync.WaitGroup
	sem := make(chan struct{}, vm.Slots())
	for _, fw := range []string{"BIOS", "UEFI"} {
		for _, d := range matrixDisks {
			for _, n := range matrixNICs {
				wg.Add(1)
				go func() {
					defer wg.Done()
					sem <- struct{}{}
					defer func() { <-sem }()
					r := probe(t, dir, probeISO, fw, d.bus, d.driver, n.model, n.driver)
					r.disk, r.nic = d.name, n.name
					record(r)
				}()
			}
		}
	}
	wg.Wait()
	for _, d := range matrixDisks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			r := fullClone(t, dir, cloneISO, d.bus)
			r.disk = d.name
			record(r)
		}()
	}
	wg.Wait()
	t.Logf("boot matrix:\n%s", matrixTable(results))
	for _, r := range results {
		if !r.ok {
			t.Errorf("%s %s %s: %s", r.fw, r.disk, r.nic, r.note)
		}
	}
}

// boundRE waits for the end of the line: the console may deliver it in pieces.
var boundRE = regexp.MustCompile(`clonecd: devices bound: ([^\r\n]*)\r?\n`)

// probe boots the probe ISO once and checks the markers.
func probe(t *testing.T, dir, iso, fw, bus, diskDriver, nic, nicDriver string) matrixResult {
	name := fmt.Sprintf("probe-%s-%s-%s", strings.ToLower(fw), bus, nic)
	r := matrixResult{fw: fw}
	disk := filepath.Join(dir, name+".img")
	if err := sparseDisk(disk); err != nil {
		r.note = err.Error()
		return r
	}
	defer os.Remove(disk)
	v, err := vm.Start(vm.Options{Name: name, UEFI: fw == "UEFI", CDROM: iso, Disks: []vm.Disk{{Path: disk, Bus: bus}},
		NIC: nic, Boot: "d", Log: consoleLog(t, dir, name)})
	if err != nil {
		r.note = err.Error()
		return r
	}
	defer v.Kill()
	start := time.Now()
	line, err := v.Expect(boundRE.String(), 10*time.Minute)
	if err != nil {
		r.note = "no driver list: " + firstLine(err.Error())
		return r
	}
	bound := boundRE.FindStringSubmatch(line)[1]
	if _, err := v.Expect(`clonecd: media OK`, 10*time.Minute); err != nil {
		r.note = "media: " + firstLine(err.Error())
		return r
	}
	if err := v.Wait(5 * time.Minute); err != nil {
		r.note = "no power off: " + firstLine(err.Error())
		return r
	}
	r.secs = time.Since(start).Seconds()
	var missing []string
	for _, drv := range []string{diskDriver, nicDriver} {
		if !strings.Contains(bound, "="+drv) {
			missing = append(missing, drv)
		}
	}
	if len(missing) > 0 {
		r.note = "not bound: " + strings.Join(missing, " ") + " (bound: " + bound + ")"
		return r
	}
	r.ok = true
	return r
}

// fullClone clones the ISO onto a disk on bus under SeaBIOS with e1000
// and boots it to login.
func fullClone(t *testing.T, dir, iso, bus string) matrixResult {
	r := matrixResult{fw: "BIOS", nic: "e1000 (clone, login)"}
	name := "clone-" + bus
	disk := filepath.Join(dir, name+".img")
	if err := sparseDisk(disk); err != nil {
		r.note = err.Error()
		return r
	}
	defer os.Remove(disk)
	opts := vm.Options{Name: name, CDROM: iso, Disks: []vm.Disk{{Path: disk, Bus: bus}}, MemMB: 2048, NIC: "e1000,mac=52:54:00:7e:00:01",
		Boot: "d", Log: consoleLog(t, dir, name)}
	v, err := vm.Start(opts)
	if err != nil {
		r.note = err.Error()
		return r
	}
	start := time.Now()
	m, err := v.Expect(`clonecd: (clone done|FAILED at step .*)`, 30*time.Minute)
	if err != nil || !strings.Contains(m, "clone done") {
		v.Kill()
		r.note = "clone: " + m + firstLine(fmt.Sprint(err))
		return r
	}
	v.Wait(5 * time.Minute)
	v.Kill()
	opts.Name, opts.CDROM, opts.Boot, opts.Log = name+"-boot", "", "c", consoleLog(t, dir, name+"-boot")
	cloned := time.Since(start)
	v, err = vm.Start(opts)
	if err != nil {
		r.note = err.Error()
		return r
	}
	defer v.Kill()
	start = time.Now().Add(-cloned)
	if _, err := v.Expect(`pxe01 login: `, 15*time.Minute); err != nil {
		r.note = "login: " + firstLine(err.Error())
		return r
	}
	r.secs, r.ok = time.Since(start).Seconds(), true
	return r
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

// matrixTable renders the results as a Markdown table: one row per
// firmware and disk, one column per NIC, seconds from power-on to
// power-off (probe) or to login (full clone).
func matrixTable(rs []matrixResult) string {
	cell := map[string]string{}
	for _, r := range rs {
		v := fmt.Sprintf("ok %.0f s", r.secs)
		if !r.ok {
			v = "FAIL: " + r.note
		}
		cell[r.fw+"|"+r.disk+"|"+r.nic] = v
	}
	var b strings.Builder
	b.WriteString("| firmware | disk |")
	for _, n := range matrixNICs {
		b.WriteString(" " + n.name + " |")
	}
	b.WriteString(" full clone to login |\n|---|---|---|---|---|---|\n")
	for _, fw := range []string{"BIOS", "UEFI"} {
		for _, d := range matrixDisks {
			fmt.Fprintf(&b, "| %s | %s |", fw, d.name)
			for _, n := range matrixNICs {
				fmt.Fprintf(&b, " %s |", cell[fw+"|"+d.name+"|"+n.name])
			}
			c := cell[fw+"|"+d.name+"|e1000 (clone, login)"]
			if c == "" {
				c = "-"
			}
			fmt.Fprintf(&b, " %s |\n", c)
		}
	}
	return b.String()
}

// sparseDisk makes a blank 4 GiB sparse disk image at path.
func sparseDisk(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	err = f.Truncate(4 << 30)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}
