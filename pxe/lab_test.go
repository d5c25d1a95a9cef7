package pxe

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/clonecd/clonecd/internal/testenv"
	"github.com/clonecd/clonecd/internal/vm"
)

// The PXE lab, inside the test's own network namespace (inNetns):
//
//	br0 10.77.0.1/24    the cluster network: one tap per QEMU node
//	                    full DHCP: this package's server is bound here
//	                    proxyDHCP: dnsmasq (addresses only, .100-.150) is
//	                    bound here, and this package's proxy on vB
//	vA -- vB 10.77.0.2  a veth pair, vA in br0: the master beside the site's DHCP
//	lo                  clonecd serve (the current binary) on 127.0.0.1:8081,
//	                    behind this test's HTTP server on SERVER:8080 (/pxe/: Handler;
//	                    everything else: the image server)
//
// Each node: a blank 4 GiB virtio disk, a NIC on its tap, 2 GiB. SeaBIOS
// boots with -boot n and an e1000 (QEMU's NIC ROM is iPXE); OVMF boots
// with bootindex (NIC first, then the disk) and a virtio-net NIC with
// romfile= (no iPXE ROM: OVMF's own virtio-net driver), so the firmware's
// own PXE fetches iPXE over TFTP as on real UEFI hardware; its IPv6
// network stack is off (opt/org.tianocore/IPv6Support), as on most IPv4
// clusters.
const (
	labVersion = "9.9"
	labSubnet  = "10.77.0"
)

// gptLayout boots both ways: a BIOS boot partition and an ESP.
const gptLayout = `label: gpt
unit: sectors

/dev/sda1 : start=2048, size=2048, type=21686148-6449-6E6F-744E-656564454649, name="bios"
/dev/sda2 : start=4096, size=204800, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B, name="esp"
/dev/sda3 : start=208896, size=524288, type=0657FD6D-A4AB-43C4-84E5-0933C84B4F4F, name="swap"
/dev/sda4 : start=733184, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4, name="root"
# clonecd: part=2 fs=vfat mount=/boot/efi label=ESP
# clonecd: part=3 fs=swap label=swap
# clonecd: part=4 fs=ext4 mount=/ label=root
`

// labNodes are the nodes table: the names of the MACs the lab knows.
var labNodes = map[string]string{
	"52:54:00:7e:00:01": "pxe01", "52:54:00:7e:00:02": "pxe02",
	"52:54:00:7e:00:03": "pxe03", "52:54:00:7e:00:04": "pxe04",
}

// labMedia is what a test's nodes clone: the image, the cloner's kernel
// (the golden root's, Debian-signed) and initramfs, published in a store.
type labMedia struct {
	dir, bin, golden, store string
	image, layout, nodes    string
	kernel, initrd          string
}

// clonecd runs the current clonecd binary: every invocation the tests
// make is here, so that a change of flag spelling is one edit.
func clonecd(ctx context.Context, bin string, what string, a map[string]string) *exec.Cmd {
	var args []string
	switch what {
	case "pack":
		args = []string{"pack", "-q", "-o", a["out"], a["root"]}
	case "initramfs":
		args = []string{"initramfs", "-q", "--golden", a["root"], "--root", a["root"], "-o", a["out"]}
	case "publish":
		args = []string{"publish", "--dir", a["store"], "--layout", a["layout"], "--nodes", a["nodes"], "--kernel", a["kernel"],
			"--initrd", a["initrd"], "--version", a["version"], "--unsigned", a["image"]}
	case "serve": // with --pxe: a["pxe"] is its extra flags, space separated
		args = []string{"serve", "--dir", a["store"], "--listen", a["listen"], "-q", "--pxe", "--pxe-interface", a["iface"],
			"--pxe-http-port", a["port"]}
		args = append(args, strings.Fields(a["pxe"])...)
	case "reclone --pxe":
		args = append([]string{"reclone", "--pxe", "--dir", a["store"]}, strings.Fields(a["nodes"])...)
	case "status": // a["server"]: the server's URL, else the store
		args = []string{"status", "--dir", a["store"]}
		if a["server"] != "" {
			args = append(args, "--server", a["server"])
		}
	case "token":
		args = []string{"token", "--dir", a["store"], a["node"]}
	case "build":
		args = []string{"build", "-q", "--root", a["root"], "--image", a["image"], "--layout", a["layout"], "--nodes", a["nodes"],
			"--version", a["version"], "--kernel", a["kernel"], "--initrd", a["initrd"], "-o", a["out"]}
	default:
		panic("clonecd: unknown command " + what)
	}
	return exec.CommandContext(ctx, bin, args...)
}

func runClonecd(t testing.TB, bin, what string, a map[string]string) {
	t.Helper()
	start := time.Now()
	if out, err := clonecd(context.Background(), bin, what, a).CombinedOutput(); err != nil {
		t.Fatalf("clonecd %s: %v\n%s", what, err, out)
	}
	t.Logf("clonecd %s: %.1fs", what, time.Since(start).Seconds())
}

// newMedia packs the golden root, builds the cloner's initramfs and
// publishes both into a store (about 20 s).
func newMedia(t *testing.T) *labMedia {
	t.Helper()
	testenv.NeedTools(t, "qemu-system-x86_64", "sfdisk", "mkfs.ext4", "dnsmasq")
	dir := t.TempDir()
	m := &labMedia{dir: dir, bin: testenv.Clonecd(t), golden: testenv.GoldenRoot(t), store: filepath.Join(dir, "store")}
	write := func(name, s string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	var nodes strings.Builder
	for mac, name := range labNodes {
		fmt.Fprintf(&nodes, "%s %s\n", mac, name)
	}
	m.image, m.layout, m.nodes = filepath.Join(dir, "node.cpio.gz"), write("gpt.sfdisk", gptLayout), write("nodes", nodes.String())
	var err error
	if m.kernel, err = kernelOf(m.golden); err != nil {
		t.Fatal(err)
	}
	m.initrd = filepath.Join(dir, "initrd.img")
	runClonecd(t, m.bin, "pack", map[string]string{"out": m.image, "root": testenv.NodeRoot(t)})
	runClonecd(t, m.bin, "initramfs", map[string]string{"out": m.initrd, "root": m.golden})
	runClonecd(t, m.bin, "publish", map[string]string{"store": m.store, "layout": m.layout, "nodes": m.nodes,
		"kernel": m.kernel, "initrd": m.initrd, "version": labVersion, "image": m.image})
	return m
}

// kernelOf is the golden root's newest kernel (Debian-signed).
func kernelOf(root string) (string, error) {
	m, _ := filepath.Glob(filepath.Join(root, "boot", "vmlinuz-*"))
	if len(m) == 0 {
		return "", fmt.Errorf("no kernel in %s/boot", root)
	}
	return m[len(m)-1], nil
}

// lab is one network (inside the test's namespace) with its servers.
type lab struct {
	t      *testing.T
	m      *labMedia
	dir    string
	ip     string // this package's server
	url    string // http://IP:8080
	policy *DirPolicy
	logMu  sync.Mutex
	log    bytes.Buffer // the PXE server's and the report watcher's lines
	taps   int
	cloned chan string // node names whose clone was reported done
}

type labOptions struct {
	proxy      bool // dnsmasq gives the addresses, this package is the proxyDHCP
	secureBoot bool
	pxeNew     bool
}

func ip(t testing.TB, args ...string) {
	t.Helper()
	testenv.Run(t, "ip", args...)
}

func newLab(t *testing.T, o labOptions) *lab {
	t.Helper()
	m := newMedia(t)
	l := &lab{t: t, m: m, dir: t.TempDir(), cloned: make(chan string, 8)}
	iface, rng := l.network(o.proxy)
	l.url = "http://" + l.ip + ":8080"
	// the server's host files (clonecd serve --pxe keeps them in
	// STORE/pxe/hosts), read by the tests
	l.policy = &DirPolicy{Dir: filepath.Join(m.store, "pxe", "hosts"), Names: func(mac string) string { return labNodes[mac] }}

	// clonecd serve --pxe: the image server on :8443 (HTTPS), stage 2 on :8080
	var extra []string
	if rng != nil {
		extra = append(extra, "--pxe-range", fmt.Sprintf("%s-%s/24", rng.Start, rng.End))
	}
	if o.pxeNew {
		extra = append(extra, "--pxe-new")
	}
	if o.secureBoot {
		extra = append(extra, "--pxe-secure-boot")
	}
	if o.proxy {
		// br0 (.1) and vB (.2) share the subnet in one namespace: a
		// transfer port bound to no address would answer from .1.
		extra = append(extra, "--pxe-tftp-single-port")
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	serve := clonecd(ctx, m.bin, "serve", map[string]string{"store": m.store, "listen": l.ip + ":8443", "iface": iface,
		"port": "8080", "pxe": strings.Join(extra, " ")})
	serve.Stdout, serve.Stderr = l.logWriter("serve"), l.logWriter("serve")
	if err := serve.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { serve.Process.Signal(syscall.SIGTERM); serve.Wait() })
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("PXE lab log:\n%s", l.logText())
		}
	})
	l.waitStage2()
	return l
}

// waitStage2 waits for serve --pxe's stage 2 to answer (a minute).
func (l *lab) waitStage2() {
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(200 * time.Millisecond) {
		r, err := http.Get(l.url + Prefix + "boot/" + FileBIOS)
		if err == nil {
			r.Body.Close()
			if r.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			l.t.Fatalf("clonecd serve --pxe: no stage 2 at %s within a minute (%v)\n%s", l.url, err, l.logText())
		}
	}
}

// clientLab is the lab of a test that is the DHCP client itself, in the
// test's own network namespace: dnsmasq on br0, this package's proxy on
// vB (the interface returned), and a third port of the bridge, cA -- cB,
// for the client's socket on cB. It returns nil in the parent (inNetns ran
// the test in its namespace): the test returns.
func clientLab(t *testing.T) (*lab, string) {
	t.Helper()
	if !inNetns(t, 5*time.Minute) {
		return nil, ""
	}
	testenv.NeedTools(t, "dnsmasq")
	l := &lab{t: t, dir: t.TempDir(), cloned: make(chan string, 1)}
	iface, _ := l.network(true)
	ip(t, "link", "add", "cA", "type", "veth", "peer", "name", "cB")
	ip(t, "link", "set", "cA", "master", "br0", "up")
	ip(t, "link", "set", "cB", "up")
	return l, iface
}

// network makes br0 (and, for proxyDHCP, dnsmasq on br0 and the veth
// pair) and returns the interface and range this package's server uses.
func (l *lab) network(proxy bool) (string, *Range) {
	t := l.t
	ip(t, "link", "set", "lo", "up")
	ip(t, "link", "add", "br0", "type", "bridge")
	ip(t, "addr", "add", labSubnet+".1/24", "dev", "br0")
	ip(t, "link", "set", "br0", "up")
	if proxy {
		ip(t, "link", "add", "vA", "type", "veth", "peer", "name", "vB")
		ip(t, "link", "set", "vA", "master", "br0", "up")
		ip(t, "addr", "add", labSubnet+".2/24", "dev", "vB")
		ip(t, "link", "set", "vB", "up")
		l.ip = labSubnet + ".2"
		l.dnsmasq()
		return "vB", nil
	}
	l.ip = labSubnet + ".1"
	rng, err := ParseRange(labSubnet + ".50-" + labSubnet + ".99/24")
	if err != nil {
		t.Fatal(err)
	}
	return "br0", rng
}

// dnsmasq is the site's DHCP server on br0: addresses only, no boot file,
// with its own configuration, pid and lease files.
func (l *lab) dnsmasq() {
	t := l.t
	conf := filepath.Join(l.dir, "dnsmasq.conf")
	os.WriteFile(conf, []byte(fmt.Sprintf(`port=0
interface=br0
bind-interfaces
dhcp-range=%[1]s.100,%[1]s.150,255.255.255.0,1h
dhcp-leasefile=%[2]s/dnsmasq.leases
pid-file=%[2]s/dnsmasq.pid
dhcp-authoritative
no-ping
no-hosts
no-resolv
log-dhcp
`, labSubnet, l.dir)), 0o644)
	cmd := exec.Command(testenv.Tool("dnsmasq"), "--no-daemon", "--conf-file="+conf, "--user=root", "--group=root")
	cmd.Stdout, cmd.Stderr = l.logWriter("dnsmasq"), l.logWriter("dnsmasq")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
}

type prefixWriter struct {
	l      *lab
	prefix string
}

func (w prefixWriter) Write(p []byte) (int, error) {
	w.l.logMu.Lock()
	defer w.l.logMu.Unlock()
	for _, line := range strings.SplitAfter(string(p), "\n") {
		// serve --pxe: "clonecd serve: pxe: NODE cloned: ..." when a
		// node's done report marked it (Policy.Cloned)
		if _, rest, ok := strings.Cut(line, "clonecd serve: pxe: "); ok {
			if node, _, ok := strings.Cut(rest, " cloned: "); ok {
				select {
				case w.l.cloned <- node:
				default:
				}
			}
		}
		if line != "" {
			fmt.Fprintf(&w.l.log, "%s %s: %s", time.Now().Format("15:04:05"), w.prefix, line)
		}
	}
	return len(p), nil
}

func (l *lab) logWriter(prefix string) io.Writer { return prefixWriter{l, prefix} }

func (l *lab) logText() string {
	l.logMu.Lock()
	defer l.logMu.Unlock()
	return l.log.String()
}

// node is one QEMU machine on the lab's network.
type node struct {
	name, mac  string
	disk       string
	uefi       bool
	httpBoot   bool // OVMF: PXE off, so the firmware HTTP-boots
	secureBoot bool // OVMF with Secure Boot enforced (secureBootFirmware)
	noReboot   bool // QEMU exits when the guest reboots
}

// boot starts n's QEMU with its NIC on a new tap in br0; the VM reboots
// in place (its console keeps one log) until the test kills it. It
// returns when QEMU started (after waiting for a VM slot), and that time.
func (l *lab) boot(n node) (*vm.VM, time.Time) {
	t := l.t
	l.taps++
	tap := fmt.Sprintf("tap%d", l.taps)
	ip(t, "tuntap", "add", tap, "mode", "tap")
	ip(t, "link", "set", tap, "master", "br0", "up")
	o := vm.Options{Name: n.name, MemMB: 2048, NIC: "none", Reboot: !n.noReboot, Log: consoleLog(t, l.dir, n.name+"-"+tap)}
	// OVMF has no e1000 driver of its own (it uses the NIC's iPXE ROM);
	// without a ROM only virtio-net gives the firmware a network stack.
	nic := "e1000,netdev=t0,mac=" + n.mac
	if n.uefi {
		nic = "virtio-net-pci,netdev=t0,mac=" + n.mac
	}
	o.Extra = []string{"-netdev", "tap,id=t0,ifname=" + tap + ",script=no,downscript=no"}
	if n.uefi {
		if n.secureBoot {
			o.Extra = append(o.Extra, secureBootFirmware(t, l.dir, n.name+"-"+tap)...)
		} else {
			o.UEFI = true
		}
		nic += ",bootindex=1,romfile="
		o.Extra = append(o.Extra, "-drive", "id=d0,file="+n.disk+",format=raw,if=none", "-device", "virtio-blk-pci,drive=d0,bootindex=2",
			"-fw_cfg", "name=opt/org.tianocore/IPv6Support,string=no")
		if n.httpBoot {
			o.Extra = append(o.Extra, "-fw_cfg", "name=opt/org.tianocore/IPv4PXESupport,string=no")
		}
	} else {
		o.Boot = "n"
		o.Disks = []vm.Disk{{Path: n.disk, Bus: "virtio"}}
	}
	o.Extra = append(o.Extra, "-device", nic)
	v, err := vm.Start(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(v.Kill)
	return v, time.Now()
}

// consoleLog is where a VM's serial console is copied; its tail is
// logged when the test fails.
func consoleLog(t testing.TB, dir, name string) *os.File { return vm.ConsoleLog(t, dir, name) }

// expect waits for a console marker and logs when it came.
func expect(t testing.TB, v *vm.VM, start time.Time, what, pattern string, timeout time.Duration) string {
	t.Helper()
	m, err := v.Expect(pattern, timeout)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	t.Logf("%s after %.0fs", what, time.Since(start).Seconds())
	return m
}

// login logs in as root on the serial console of a clone named host.
func login(t testing.TB, v *vm.VM, start time.Time, host string) {
	t.Helper()
	expect(t, v, start, host+" login:", host+` login: `, 15*time.Minute)
	v.Send("root\r")
	if _, err := v.Expect(`Password: `, time.Minute); err != nil {
		t.Fatal(err)
	}
	v.Send("clonecd\r")
	if _, err := v.Expect(`root@`+host+`:~# `, 2*time.Minute); err != nil {
		t.Fatal(err)
	}
}

func mustMAC(t testing.TB, s string) net.HardwareAddr {
	t.Helper()
	hw, err := net.ParseMAC(s)
	if err != nil {
		t.Fatal(err)
	}
	return hw
}
