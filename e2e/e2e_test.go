package e2e

import (
	"crypto/tls"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/clonecd/clonecd/internal/testenv"
	"github.com/clonecd/clonecd/internal/vm"
	"github.com/clonecd/clonecd/medium"
	"github.com/clonecd/clonecd/trust"
)

const (
	version   = "9.9"
	diskSize  = 4 << 30
	cloneWait = 30 * time.Minute // TCG, shared machine
	bootWait  = 8 * time.Minute
)

// dosLayout: swap, root, preserved /data (the Medusa shape) on 4 GiB.
const dosLayout = `label: dos
unit: sectors

/dev/sda1 : start=2048, size=524288, type=82
/dev/sda2 : start=526336, size=5242880, type=83, bootable
/dev/sda3 : start=5769216, type=83
# clonecd: part=1 fs=swap label=swap
# clonecd: part=2 fs=ext4 mount=/ label=root
# clonecd: part=3 fs=ext4 mount=/data label=data preserve=yes
`

// gptLayout boots both ways: a BIOS boot partition for GRUB i386-pc and an
// EFI system partition for the removable-path UEFI GRUB.
const gptLayout = `label: gpt
unit: sectors

/dev/sda1 : start=2048, size=2048, type=21686148-6449-6E6F-744E-656564454649, name="bios"
/dev/sda2 : start=4096, size=204800, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B, name="esp"
/dev/sda3 : start=208896, size=524288, type=0657FD6D-A4AB-43C4-84E5-0933C84B4F4F, name="swap"
/dev/sda4 : start=733184, size=5242880, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4, name="root"
/dev/sda5 : start=5976064, size=2097152, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4, name="data"
# clonecd: part=2 fs=vfat mount=/boot/efi label=ESP
# clonecd: part=3 fs=swap label=swap
# clonecd: part=4 fs=ext4 mount=/ label=root
# clonecd: part=5 fs=ext4 mount=/data label=data preserve=yes
`

// ksPost is the ISOs' ks.cfg (next to --layout, which wins for the
// partitioning): a chroot %post and a --nochroot one that writes into the
// new root through INSTALL_ROOT, both run at the end of the identity step.
const ksPost = `# clonecd e2e kickstart: only %post
%post
echo "$HOSTNAME" > /etc/clonecd-post
%end
%post --nochroot
echo "nochroot:$HOSTNAME:$CLONECD_VERSION" > "$INSTALL_ROOT/etc/clonecd-post-nochroot"
%end
`

// macs name the test nodes through the media's nodes table.
var macs = map[string]string{
	"node01": "52:54:00:c1:00:01", "node02": "52:54:00:c1:00:02", "node03": "52:54:00:c1:00:03",
	"node04": "52:54:00:c1:00:04", "node05": "52:54:00:c1:00:05", "node06": "52:54:00:c1:00:06",
	"node07": "52:54:00:c1:00:07",
}

// work is what the tests share: the ISOs and the kernel/initrd in them.
type work struct {
	dir       string
	bin       string
	iso       string // clonecd pack image, dos layout
	gnuISO    string // GNU find|cpio -o --format=crc|gzip image, gpt layout
	badISO    string // iso with node.cpio.gz corrupted
	plain     string // iso of the zstd image built as a new user would: --append clonecd.hostname=node06, no nodes table
	kernel    string // from the ISO, for direct kernel boots with extra keys
	initrd    string // trusts key (its public key, built with --trust)
	key       string // the master's signing key: every ISO and version is signed
	golden    string // the cloner's kernel and modules (build --root)
	node      string // the nodes' root, packed into the images: testenv.NodeRoot
	image     string
	zstd      string          // clonecd pack --compress zstd image (node.cpio.zst)
	cert      tls.Certificate // the image servers' certificate (for 10.0.2.2 and 127.0.0.1)
	pin       string          // its pin: build --tls-pin, the master's commands' --tls-pin
	consMu    sync.Mutex
	prints    map[string]string // node → ssh host key fingerprint
	nodes     string
	ks        string
	dos       string
	gpt       string
	gnuOnce   sync.Once
	badOnce   sync.Once
	plainOnce sync.Once
	zstdOnce  sync.Once
}

// build makes an ISO of img and layout with the e2e kickstart, the
// server's URL and extra build arguments (default: the nodes table).
func (w *work) build(t testing.TB, iso, img, layout string, extra ...string) {
	t.Helper()
	if extra == nil {
		extra = []string{"--nodes", w.nodes}
	}
	args := append([]string{"build", "-q", "--root", w.golden, "--image", img, "--layout", layout, "--kickstart", w.ks,
		"--version", version, "--server", serverURL(), "--tls-pin", w.pin, "-o", iso}, extra...)
	if w.initrd != "" { // the first ISO's initramfs: building one takes minutes here
		args = append(args, "--initrd", w.initrd, "--kernel", w.kernel)
	} else { // it trusts the master's key, and so do the ISOs built with it
		args = append(args, "--trust", w.key+trust.PubSuffix)
	}
	args = append(args, "--key", w.key)
	run(t, w.bin, args...)
}

// serverTLS is the image servers' TLS: HTTP/1.1, the certificate the
// ISOs pin.
func (w *work) serverTLS() *tls.Config {
	cfg := trust.ServerTLSConfig(w.cert)
	cfg.NextProtos = []string{"http/1.1"}
	return cfg
}

// zstdImage packs (once) the golden root with --compress zstd.
func (w *work) zstdImage(t testing.TB) string {
	w.zstdOnce.Do(func() {
		img := filepath.Join(w.dir, "zstd", medium.ImageZstd)
		os.MkdirAll(filepath.Dir(img), 0o755)
		run(t, w.bin, "pack", "-q", "--compress", "zstd", "-o", img, w.node)
		w.zstd = img
	})
	if w.zstd == "" {
		t.Fatal("no zstd image (see above)")
	}
	return w.zstd
}

// plainISO builds (once) the ISO a new user makes for one node: its name
// on the kernel command line, no nodes table, and the zstd image (the CD
// carries node.cpio.zst).
func (w *work) plainISO(t testing.TB) string {
	w.plainOnce.Do(func() {
		iso := filepath.Join(w.dir, "plain.iso")
		w.build(t, iso, w.zstdImage(t), w.dos, "--append", "clonecd.hostname=node06")
		w.plain = iso
	})
	if w.plain == "" {
		t.Fatal("no plain ISO (see above)")
	}
	return w.plain
}

// gnuISO builds (once) an ISO from the Medusa page's archive: GNU
// find | cpio -o --format=crc | gzip, with the GPT layout.
func (w *work) gnu(t testing.TB) string {
	w.gnuOnce.Do(func() {
		gnu := filepath.Join(w.dir, "gnu", "node.cpio.gz")
		os.MkdirAll(filepath.Dir(gnu), 0o755)
		start := time.Now()
		if out, err := exec.Command("sh", "-c", fmt.Sprintf("cd %q && find . -xdev | cpio -o --quiet --format=crc | pigz -c > %q", w.node, gnu)).CombinedOutput(); err != nil {
			t.Errorf("GNU cpio: %v\n%s", err, out)
			return
		}
		t.Logf("GNU find|cpio|pigz: %.1fs", time.Since(start).Seconds())
		ensureSum(t, gnu)
		iso := filepath.Join(w.dir, "gnu.iso")
		w.build(t, iso, gnu, w.gpt)
		w.gnuISO = iso
	})
	if w.gnuISO == "" {
		t.Fatal("no GNU cpio ISO (see above)")
	}
	return w.gnuISO
}

// corrupt makes (once) a copy of the ISO with node.cpio.gz damaged.
func (w *work) corrupt(t testing.TB) string {
	w.badOnce.Do(func() { corruptCopy(t, w.iso, w.badISO) })
	return w.badISO
}

func run(t testing.TB, name string, args ...string) string {
	t.Helper()
	start := time.Now()
	out := testenv.Run(t, name, args...)
	t.Logf("%s %s: %.1fs", filepath.Base(name), strings.Join(args[:min(len(args), 2)], " "), time.Since(start).Seconds())
	return out
}

// shared is the work every test of the package uses, made once: packing
// the golden root and building the ISOs take minutes of the machine's two
// cores. TestMain removes its directory.
var shared struct {
	mu    sync.Mutex
	w     *work
	dir   string
	tried bool
}

// setup packs the golden root, builds the ISO and extracts its cloner
// (once for the package; the GNU cpio and corrupted ISOs are made when a
// test first asks).
func setup(t testing.TB) *work {
	t.Helper()
	testenv.NeedRoot(t)
	testenv.NeedTools(t, "qemu-system-x86_64", "xorriso", "cpio", "pigz", "sfdisk", "losetup", "partx", "sha256sum")
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if shared.w != nil {
		return shared.w
	}
	if shared.tried {
		t.Fatal("the shared e2e setup failed in another test")
	}
	shared.tried = true
	dir, err := os.MkdirTemp("", "clonecd-e2e-")
	if err != nil {
		t.Fatal(err)
	}
	shared.dir = dir
	w := &work{dir: dir, bin: testenv.Clonecd(t), golden: testenv.GoldenRoot(t), node: testenv.NodeRoot(t), prints: map[string]string{}}
	write := func(name, s string) string {
		p := filepath.Join(w.dir, name)
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	var nodes strings.Builder
	for h, m := range macs {
		if h != "node06" { // named by the plain ISO's command line, not a table
			fmt.Fprintf(&nodes, "%s %s\n", m, h)
		}
	}
	w.nodes = write("nodes", nodes.String())
	w.key = filepath.Join(w.dir, "clonecd.key")
	run(t, w.bin, "key", "generate", "-o", w.key)
	// The image servers speak HTTPS with a pinned self-signed certificate,
	// as clonecd serve does: the ISOs carry the pin (build --tls-pin).
	tlsDir := filepath.Join(w.dir, "tls")
	if err := os.Mkdir(tlsDir, 0o700); err != nil {
		t.Fatal(err)
	}
	if w.cert, w.pin, err = trust.LoadOrCreateServerCert(tlsDir, []string{"10.0.2.2", "127.0.0.1"}); err != nil {
		t.Fatal(err)
	}
	w.ks = write("ks.cfg", ksPost)
	w.dos, w.gpt = write("dos.sfdisk", dosLayout), write("gpt.sfdisk", gptLayout)
	img := filepath.Join(w.dir, "node.cpio.gz")
	run(t, w.bin, "pack", "-q", "-o", img, w.node)
	ensureSum(t, img)
	w.image = img
	w.iso = filepath.Join(w.dir, "clonecd.iso")
	w.build(t, w.iso, img, w.dos)
	w.badISO = filepath.Join(w.dir, "corrupt.iso")
	w.kernel, w.initrd = filepath.Join(w.dir, "vmlinuz"), filepath.Join(w.dir, "initrd.img")
	run(t, "xorriso", "-osirrox", "on", "-indev", w.iso, "-extract", "/isolinux/vmlinuz", w.kernel, "-extract", "/isolinux/initrd.img", w.initrd)
	shared.w = w
	return w
}

func ensureSum(t testing.TB, img string) {
	t.Helper()
	if _, err := os.Stat(img + ".sha256"); err == nil {
		return
	}
	out := testenv.Run(t, "sh", "-c", "cd "+filepath.Dir(img)+" && sha256sum "+filepath.Base(img))
	if err := os.WriteFile(img+".sha256", []byte(out), 0o644); err != nil {
		t.Fatal(err)
	}
}

// corruptCopy copies iso and flips bytes in the middle of its node.cpio.gz.
func corruptCopy(t testing.TB, iso, dst string) {
	t.Helper()
	out := testenv.Run(t, "xorriso", "-indev", iso, "-find", "/node.cpio.gz", "-exec", "report_lba", "--")
	// File data lba:  0 ,       30 ,   122589 , 251061503 , '/node.cpio.gz'
	m := regexp.MustCompile(`File data lba:\s*\d+\s*,\s*(\d+)\s*,\s*(\d+)\s*,\s*(\d+)\s*,\s*'/node\.cpio\.gz'`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no extent of node.cpio.gz in xorriso's report:\n%s", out)
	}
	lba, _ := strconv.ParseInt(m[1], 10, 64)
	size, _ := strconv.ParseInt(m[3], 10, 64)
	testenv.Run(t, "cp", "--sparse=always", iso, dst)
	f, err := os.OpenFile(dst, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	off := lba*2048 + size/2
	b := make([]byte, 64)
	f.ReadAt(b, off)
	for i := range b {
		b[i] ^= 0xa5
	}
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
}

func blankDisk(t testing.TB, name string) string {
	return testenv.Sparse(t, name, diskSize)
}

// consoleLog is where a VM's serial console is copied (kept on failure).
func consoleLog(t testing.TB, w *work, name string) *os.File { return vm.ConsoleLog(t, w.dir, name) }

func nic(host string) string { return "e1000,mac=" + macs[host] }

// cloneFromISO boots iso with disk and waits for the clone to finish and
// the VM to power off (wait-eject: QEMU's tray opens on eject).
func cloneFromISO(t testing.TB, w *work, name, iso string, disk vm.Disk, uefi bool, host string) *vm.VM {
	t.Helper()
	v, err := vm.Start(vm.Options{Name: name, CDROM: iso, Disks: []vm.Disk{disk}, UEFI: uefi, MemMB: 2048, NIC: nic(host), Boot: "d", Log: consoleLog(t, w, name)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(v.Kill)
	start := time.Now()
	m, err := v.Expect(`clonecd: (clone done|FAILED at step .*)`, cloneWait)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(m, "clone done") {
		time.Sleep(3 * time.Second) // let the log tail arrive for the failure message
		t.Fatalf("%s: %s", name, m)
	}
	t.Logf("%s: clone done %.0fs after power-on", name, time.Since(start).Seconds())
	if err := v.Wait(5 * time.Minute); err != nil {
		t.Fatalf("after clone done: %v", err)
	}
	return v
}

// facts is what a booted clone reports on its serial console.
type facts struct {
	host, version, rootUUID, dataUUID, fp string
	swaps, fstabUUIDs                     int
	fstabRoot                             bool
	machineID, dataSum                    string // dataSum: sha256 of /data/cut.bin ("" if none)
}

var factsRE = regexp.MustCompile(`R1 host=(\S+) ver=(\S+) root=(\S+) data=(\S*) swap=(\d+) fp=(\S+) fstab=(\d+) rootline=(\d+) mid=(\S*) dsum=(\S*) END`)

// bootAndCheck boots disk alone, waits for HOST login:, logs in as root on
// the serial console and reads the node's identity. It leaves the VM
// running at a root prompt.
func bootAndCheck(t testing.TB, w *work, name string, disk vm.Disk, uefi bool, host, ver string) (*vm.VM, facts) {
	t.Helper()
	v, err := vm.Start(vm.Options{Name: name, Disks: []vm.Disk{disk}, UEFI: uefi, MemMB: 2048, NIC: nic(host), Boot: "c", Log: consoleLog(t, w, name)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(v.Kill)
	start := time.Now()
	if _, err := v.Expect(host+` login: `, bootWait); err != nil {
		t.Fatalf("the clone did not boot to %s login: %v", host, err)
	}
	t.Logf("%s: %s login: after %.0fs", name, host, time.Since(start).Seconds())
	v.Send("root\r")
	if _, err := v.Expect(`Password: `, time.Minute); err != nil {
		t.Fatal(err)
	}
	v.Send("clonecd\r")
	if _, err := v.Expect(`root@`+host+`:~# `, 2*time.Minute); err != nil {
		t.Fatal(err)
	}
	// "R""1" keeps the echo of the typed line from matching.
	v.Send(`echo "R""1 host=$(hostname) ver=$(cat /etc/clonecd-version) root=$(findmnt -n -o UUID /) data=$(findmnt -n -o UUID /data) swap=$(swapon --noheadings --show=NAME | wc -l) fp=$(ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub | cut -d' ' -f2) fstab=$(grep -c '^UUID=' /etc/fstab) rootline=$(grep -c "^UUID=$(findmnt -n -o UUID /) / " /etc/fstab) mid=$(cat /etc/machine-id) dsum=$(sha256sum /data/cut.bin 2>/dev/null | cut -c1-64) END"` + "\r")
	line, err := v.Expect(factsRE.String(), 2*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	m := factsRE.FindStringSubmatch(line)
	f := facts{host: m[1], version: m[2], rootUUID: m[3], dataUUID: m[4], fp: m[6]}
	f.swaps, _ = strconv.Atoi(m[5])
	f.fstabUUIDs, _ = strconv.Atoi(m[7])
	f.fstabRoot = m[8] == "1"
	f.machineID, f.dataSum = m[9], m[10]
	if f.host != host || f.version != ver || !f.fstabRoot || f.swaps != 1 || f.dataUUID == "" || f.fstabUUIDs < 3 {
		t.Errorf("%s: booted clone reports %+v; want host %s, version %s, / and /data and swap by UUID", name, f, host, ver)
	}
	w.consMu.Lock()
	for other, fp := range w.prints {
		if fp == f.fp && other != host {
			t.Errorf("%s has the same ssh host key as %s (%s)", host, other, fp)
		}
	}
	w.prints[host] = f.fp
	w.consMu.Unlock()
	return v, f
}

func powerOff(t testing.TB, v *vm.VM) {
	t.Helper()
	v.Send("poweroff\r")
	if err := v.Wait(3 * time.Minute); err != nil {
		t.Fatalf("poweroff: %v", err)
	}
}

// onHost attaches a disk image, mounts its partition n (read-write when
// rw), runs fn on the mount, then unmounts and detaches it again: a VM
// may use the image next, and the host must not cache its blocks.
func onHost(t testing.TB, img string, n int, rw bool, fn func(dir string)) {
	t.Helper()
	loop := strings.TrimSpace(testenv.Run(t, "losetup", "--find", "--show", img))
	defer testenv.Output("losetup", "-d", loop)
	testenv.Output("partx", "-a", loop)
	defer testenv.Output("partx", "-d", loop)
	dir := t.TempDir()
	opt := "ro"
	if rw {
		opt = "rw"
	}
	testenv.Run(t, "mount", "-o", opt, fmt.Sprintf("%sp%d", loop, n), dir)
	defer func() {
		if out, err := testenv.Output("umount", dir); err != nil {
			t.Errorf("umount %s: %v %s", dir, err, out)
		}
	}()
	fn(dir)
}

// TestE2E is the QEMU tests of the CD that clone nothing: data=keep and a
// damaged image; the sub-tests run two VMs at a time (with TestNetReclone's
// and TestPowerCut's) through vm's machine-wide slots. A fresh BIOS clone
// from the CD with its %post scripts is TestNetReclone's first step; a
// fresh UEFI clone on a blank disk from the GNU cpio archive, CD reclones
// on SATA and virtio keeping /data, network reclones on IDE and virtio and
// the power cuts are TestPowerCut's chains.
func TestE2E(t *testing.T) {
	t.Parallel()
	w := setup(t)
	t.Run("vms", func(t *testing.T) {
		t.Run("data-keep", func(t *testing.T) { t.Parallel(); testDataKeep(t, w) })
		t.Run("corrupt-image", func(t *testing.T) { t.Parallel(); testCorrupt(t, w) })
	})
}

// testDataKeep: clonecd.data=keep from the kernel command line on a disk
// whose table differs from the layout (/data moved) stops in the check
// step and writes nothing. (Repartitioning a differing table and the rest
// of data=keep are clone's loop-device tests, clone.TestCloneLoop; a
// fresh BIOS clone from the CD and its %post scripts are TestNetReclone's
// first step.)
func testDataKeep(t *testing.T, w *work) {
	img := blankDisk(t, "datakeep.img")
	other := strings.Replace(dosLayout, "start=5769216", "start=5773312", 1)
	if out, err := exec.Command("sh", "-c", "sfdisk -q --no-reread --no-tell-kernel "+img+" <<'E'\n"+other+"E\n").CombinedOutput(); err != nil {
		t.Fatalf("sfdisk: %v\n%s", err, out)
	}
	before := testenv.Run(t, "sfdisk", "-d", img)
	kv, err := vm.Start(vm.Options{Name: "datakeep", CDROM: w.iso, Disks: []vm.Disk{{Path: img, Bus: "virtio"}}, MemMB: 2048, NIC: nic("node01"),
		Kernel: w.kernel, Initrd: w.initrd, Append: "console=tty0 console=ttyS0,115200 clonecd.data=keep", Log: consoleLog(t, w, "datakeep")})
	if err != nil {
		t.Fatal(err)
	}
	defer kv.Kill()
	if _, err := kv.Expect(`clonecd: FAILED at step check: .*clonecd\.data=keep`, cloneWait); err != nil {
		t.Error(err)
	}
	kv.Kill()
	if after := testenv.Run(t, "sfdisk", "-d", img); after != before {
		t.Errorf("clonecd.data=keep: the table was written:\n%s\nwas\n%s", after, before)
	}
}

// testCorrupt: a corrupted node.cpio.gz stops the run in setup, before
// anything is written (C09), with the step and the log's tail on the
// console, and the rescue shell runs with /tmp/clone.log holding the error.
func testCorrupt(t *testing.T, w *work) {
	img := blankDisk(t, "corrupt.img")
	v, err := vm.Start(vm.Options{Name: "corrupt", CDROM: w.corrupt(t), Disks: []vm.Disk{{Path: img}}, MemMB: 2048, NIC: nic("node05"), Boot: "d", Log: consoleLog(t, w, "corrupt")})
	if err != nil {
		t.Fatal(err)
	}
	defer v.Kill()
	if _, err := v.Expect(`clonecd: FAILED at step setup: node\.cpio\.gz is damaged, nothing was written to the disk`, cloneWait); err != nil {
		t.Fatal(err)
	}
	if _, err := v.Expect(`clonecd: last lines of /tmp/clone.log:\s+\|.*`, time.Minute); err != nil {
		t.Error(err)
	}
	if _, err := v.Expect(`rescue shell`, time.Minute); err != nil {
		t.Fatal(err)
	}
	v.Send("\rgrep -q 'step setup failed' /tmp/clone.log && echo LOG''-HAS-ERROR\r")
	if _, err := v.Expect(`LOG-HAS-ERROR`, 2*time.Minute); err != nil {
		t.Error(err)
	}
	v.Kill()
	if out, _ := testenv.Output("sfdisk", "-d", img); strings.Contains(out, "start=") {
		t.Errorf("a partition table was written:\n%s", out)
	}
}
