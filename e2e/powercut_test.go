package e2e

// The power-cut matrix (issue 10). One chain per firmware and mode: a disk
// that already holds the node (and a file in /data) is cloned again and
// again, and on each attempt QEMU is killed at the chain's next step. In
// make test every step is cut twice: once in a BIOS chain and once in a
// UEFI one, once in network mode and once in CD mode (cd-bios and
// net-uefi are cut at partition, unpack and bootloader; cd-uefi and
// net-bios at mkfs and identity). make matrix (CLONECD_MATRIX=1) cuts
// every chain at every step: partition, mkfs, unpack, identity,
// bootloader. After each cut the next attempt
// starts as it would in the machine room: in network mode the node's own
// disk must boot the cloner (the safety net), in CD mode the CD is booted
// again. The last attempt runs to the end; the disk is then booted alone
// to login, where the node must have its name, the ssh host key and
// machine-id it had before the first cut, and /data/cut.bin unchanged.
//
// The machines (e1000 NIC, QEMU user network; the node's MAC names it in
// the ISOs' nodes table):
//
//	cd-bios   SeaBIOS; AHCI disk, dos layout (swap, /, /data), prepared on
//	          the host by `clonecd clone`; CD drive with clonecd.iso. node02
//	cd-uefi   OVMF; virtio disk, gpt layout (BIOS boot, ESP, swap, /, /data),
//	          first cloned from gnu.iso (the GNU cpio archive) on a blank
//	          disk; CD drive with gnu.iso. node04
//	net-bios  SeaBIOS; IDE disk, dos layout, prepared on the host by
//	          `clonecd clone --server URL --tls-pin PIN` (its chain server,
//	          for the ramclone entry); the first network attempt is a
//	          PXE-like direct kernel boot whose name comes from QEMU's DHCP
//	          (hostname=node03), then the disk boots the cloner by itself.
//	          node03
//	net-uefi  OVMF; virtio disk, gpt, first cloned from gnu.iso by a direct
//	          kernel boot whose clonecd.server= is its chain server (in a
//	          VM: the ESP is vfat, which a host kernel may lack); the host
//	          sets next_entry=ramclone in its grubenv (what `clonecd ramclone`
//	          does) and the disk boots the cloner. node07
//
// Each network chain streams from its own image server (chainServer, no
// nodes table): net-uefi the GNU cpio image with the gpt layout from an
// in-process server at 10.0.2.2:PORT on the host; net-bios clonecd's
// image with the dos layout from `clonecd serve --swarm` in a network
// namespace, which reclones it to version newer through the swarm with a
// namespace seeder (swarm_test.go, issue 13). A cut is made when the
// step's console line appears (markers below), never after a sleep.

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/clonecd/clonecd/fleet"
	"github.com/clonecd/clonecd/internal/testenv"
	"github.com/clonecd/clonecd/internal/vm"
	"github.com/clonecd/clonecd/netclone"
	"github.com/clonecd/clonecd/versions"
)

// cuts are the steps cut, in order, and the console line at which QEMU is
// killed: each lies inside its step, after what the step must survive.
type cutStep struct{ step, marker string }

var cuts = []cutStep{
	// the check is done, the old system's identity read (and, network,
	// the cloner made the default boot); nothing formatted yet
	{"partition", `clonecd: partition: table kept`},
	// the root filesystem has just been made anew (and, network, the
	// cloner's boot files and the node's identity written back onto it)
	{"mkfs", `clonecd: mkfs: the node's identity \(\S+\) kept on`},
	{"unpack", `clonecd: unpack: [3-5]0%`},
	// hostname, ssh host keys and machine-id written, fstab not yet
	{"identity", `clonecd: identity: ssh host keys \(\d+ files\) and machine-id \S+ kept`},
	// the new cloner installed, grub-install not yet run
	{"bootloader", `clonecd: bootloader: ramclone entry`},
}

// chain is one row of the matrix.
type chain struct {
	name string
	uefi bool
	net  *chainServer // network chains: their server
	dos  bool         // the dos layout (else gpt)
	bus  string
	host string
	iso  string   // CD chains: booted on each attempt
	cut  []string // the steps cut in make test (make matrix: all of cuts)
}

// steps is the cuts made in chain c.
func (c chain) steps() []int {
	var out []int
	for i, k := range cuts {
		if testenv.Matrix() || slices.Contains(c.cut, k.step) {
			out = append(out, i)
		}
	}
	return out
}

// chainServer is a network chain's image server: its store (one version
// of an image and layout, or two: swarm_test.go) and its URL as the guest
// reaches it.
type chainServer struct {
	vs       *versions.Store
	url      string
	pin      string // its certificate's TLS pin
	version  string // the version it serves
	netns    string // "": QEMU in the host's namespace; else in this one (swarm_test.go)
	seederNS string // the swarm's namespace seeder's namespace ("": no swarm)
	serveLog *testenv.SyncBuffer
}

// startChainServer serves image with layout from a store of its own on a
// free loopback port until the test ends.
func startChainServer(t *testing.T, w *work, name, image, layout string) *chainServer {
	vs := netStore(t, w, storeSpec{name: name, image: image, layout: layout, versions: []string{version}})
	srv := &netServer{addr: freeAddr(), tls: w.serverTLS(), h: netclone.NewServer(vs, netclone.ServerOptions{MaxStreams: 4, Secret: storeSecret(t, vs)})}
	srv.start(t)
	t.Cleanup(srv.kill)
	_, port, _ := net.SplitHostPort(srv.addr)
	return &chainServer{vs: vs, url: "https://10.0.2.2:" + port, pin: w.pin, version: version}
}

// TestPowerCut runs the four chains, two VMs at a time with the other
// tests, and logs each chain's wall time and attempts.
func TestPowerCut(t *testing.T) {
	t.Parallel()
	testenv.NeedTools(t, "ssh-keygen", "grub-editenv")
	w := setup(t)
	gnu := w.gnu(t)
	gpt := startChainServer(t, w, "cutstore-gpt", filepath.Join(w.dir, "gnu", "node.cpio.gz"), w.gpt)
	dos := startSwarmChainServer(t, w, "cutstore-dos", w.image, w.dos)
	even, odd := []string{"mkfs", "identity"}, []string{"partition", "unpack", "bootloader"}
	for _, c := range []chain{
		{name: "cd-uefi", uefi: true, bus: "virtio", host: "node04", iso: gnu, cut: even},
		{name: "net-bios", net: dos, dos: true, bus: "ide", host: "node03", cut: even},
		{name: "net-uefi", uefi: true, net: gpt, bus: "virtio", host: "node07", cut: odd},
		{name: "cd-bios", dos: true, bus: "ahci", host: "node02", iso: w.iso, cut: odd},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			runChain(t, w, c)
		})
	}
}

// before is what the node is before the first cut.
type before struct {
	fp, machineID, dataSum string
}

func runChain(t *testing.T, w *work, c chain) {
	start := time.Now()
	img := blankDisk(t, c.name+".img")
	disk := vm.Disk{Path: img, Bus: c.bus}
	rootPart, dataPart := 4, 5 // gpt
	if c.dos {
		rootPart, dataPart = 2, 3
	}
	var times []string
	lap := func(what string, t0 time.Time) {
		times = append(times, fmt.Sprintf("%s %.0fs", what, time.Since(t0).Seconds()))
	}

	// The node as it is before the chain.
	t0 := time.Now()
	switch {
	case c.dos: // on the host (the dos layout has no ESP, which needs vfat)
		args := []string{"clone", "-q", "--media", extractISO(t, w.iso), "--target", img, "--hostname", c.host, "--no-tune"}
		if c.net != nil { // the ramclone entry names the chain server
			args = append(args, "--server", c.net.url, "--tls-pin", c.net.pin)
		}
		run(t, w.bin, args...)
		lap("host clone", t0)
	case c.net != nil:
		// a CD clone whose ramclone entry points at the chain server
		cloneDirect(t, w, c.name+"-first", w.gnu(t), disk, c.uefi, c.host, "clonecd.server="+c.net.url)
		lap("first clone", t0)
	default:
		cloneFromISO(t, w, c.name+"-first", c.iso, disk, c.uefi, c.host)
		lap("first clone", t0)
	}
	var b before
	onHost(t, img, rootPart, c.net != nil, func(dir string) { // writable for the network chains: their credential and grubenv
		b.fp = strings.Fields(testenv.Run(t, "ssh-keygen", "-lf", filepath.Join(dir, "etc/ssh/ssh_host_ed25519_key.pub")))[1]
		id, _ := os.ReadFile(filepath.Join(dir, "etc/machine-id"))
		b.machineID = strings.TrimSpace(string(id))
		if c.net != nil {
			cfg, _ := os.ReadFile(filepath.Join(dir, "boot/grub/grub.cfg"))
			if !strings.Contains(string(cfg), "clonecd.server="+c.net.url+" clonecd.tls-pin="+c.net.pin+" clonecd.hostname="+c.host+" ") {
				t.Fatalf("the ramclone entry does not name the chain server and %s:\n%s", c.host, cfg)
			}
		}
		if c.net != nil { // the node's credential, as `clonecd ramclone --credential -` keeps it
			if err := netclone.WriteCredential(filepath.Join(dir, "boot"), nodeCredential(t, c.net.vs, c.host)); err != nil {
				t.Fatal(err)
			}
		}
		if c.name == "net-uefi" { // `clonecd ramclone`, done from outside
			testenv.Run(t, "grub-editenv", filepath.Join(dir, "boot/grub/grubenv"), "set", "next_entry=ramclone")
		}
	})
	onHost(t, img, dataPart, true, func(dir string) {
		data := make([]byte, 1<<20)
		rand.Read(data)
		sum := sha256.Sum256(data)
		b.dataSum = hex.EncodeToString(sum[:])
		if err := os.WriteFile(filepath.Join(dir, "cut.bin"), data, 0o644); err != nil {
			t.Fatal(err)
		}
	})

	// The cuts, then the attempt that finishes.
	steps := append(c.steps(), len(cuts))
	var seeder *seederProc
	for i, cut := range steps {
		name := fmt.Sprintf("%s-%d", c.name, i+1)
		o := vm.Options{Name: name, Disks: []vm.Disk{disk}, UEFI: c.uefi, MemMB: 2048, NIC: nic(c.host), Log: consoleLog(t, w, name)}
		if c.net != nil {
			o.Netns = c.net.netns
		}
		if i == 1 && c.net != nil && c.net.seederNS != "" {
			// the node is now cloning c.net.version in the fleet's state
			seeder = c.net.startSeeder(t, w)
		}
		switch {
		case c.net == nil:
			o.CDROM, o.Boot = c.iso, "d"
		case i == 0 && c.name == "net-bios":
			// PXE-like: the cloner from the network, named by DHCP
			o.Kernel, o.Initrd = w.kernel, w.initrd
			o.Append = "console=tty0 console=ttyS0,115200 clonecd.mode=net clonecd.server=" + c.net.url + " clonecd.tls-pin=" + c.net.pin + " clonecd.credential=" + nodeCredential(t, c.net.vs, c.host).String()
			o.Net = "hostname=" + c.host
		default:
			o.Boot = "c" // the node's own disk
		}
		t0 := time.Now()
		v, err := vm.Start(o)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(v.Kill)
		marker, what := `clonecd: clone done`, "done"
		if cut < len(cuts) {
			marker, what = cuts[cut].marker, "cut at "+cuts[cut].step
		}
		// a node that boots its old system (a login prompt) instead of the
		// cloner, or a clone that fails, ends the chain at once
		m, err := v.Expect(`(`+marker+`|clonecd: FAILED at step .*| login: )`, cloneWait)
		if err != nil {
			t.Fatalf("attempt %d (%s): %v", i+1, what, err)
		}
		if !regexp.MustCompile(marker).MatchString(m) {
			t.Fatalf("attempt %d (%s): %q on the console", i+1, what, m)
		}
		if cut == len(cuts) && c.net != nil {
			waitDone(t, c.net.vs, c.host) // the done report, before the cloner reboots
		}
		v.Kill() // the power cut (or, once done, the end of the run)
		lap(fmt.Sprintf("%d:%s", i+1, what), t0)
		out := v.Output()
		if c.net != nil && !strings.Contains(out, "clonecd: safety: ") {
			t.Errorf("attempt %d: no safety net in the log", i+1)
		}
		if i == 0 && c.name == "net-bios" && !strings.Contains(out, "setup: node name "+c.host+" (DHCP)") {
			t.Errorf("the name from DHCP did not reach the clone (want \"setup: node name %s (DHCP)\")", c.host)
		}
		if i == 0 && c.net != nil && !strings.Contains(out, "every boot is the cloner until this clone succeeds") {
			t.Errorf("the cloner did not make itself the default boot")
		}
		if seeder != nil && cut >= slices.IndexFunc(cuts, func(k cutStep) bool { return k.step == "unpack" }) {
			swarmUsed(t, i+1, out) // the attempt got to the image
		}
	}

	// The result.
	t0 = time.Now()
	ver := version
	if c.net != nil {
		ver = c.net.version
	}
	v, f := bootAndCheck(t, w, c.name+"-boot", disk, c.uefi, c.host, ver)
	if f.fp != b.fp || f.machineID != b.machineID {
		t.Errorf("after the chain: ssh host key %s machine-id %s; before %s %s (want them kept)", f.fp, f.machineID, b.fp, b.machineID)
	}
	if f.dataSum != b.dataSum {
		t.Errorf("/data/cut.bin sha256 %q, written %s", f.dataSum, b.dataSum)
	}
	if c.uefi {
		v.Send("echo EFI=$(ls /sys/firmware/efi >/dev/null 2>&1 && echo y''es) ESP=$(test -f /boot/efi/EFI/BOOT/BOOTX64.EFI && findmnt -n -o FSTYPE /boot/efi)\r")
		if _, err := v.Expect("EFI=yes ESP=vfat", time.Minute); err != nil {
			t.Errorf("the clone did not boot in UEFI mode from its ESP's removable path: %v", err)
		}
	}
	powerOff(t, v)
	lap("boot to login", t0)
	if seeder != nil {
		seeder.finish(t, 5*time.Minute)
		servedByPeers(t, w, c.net)
	}
	t.Logf("power-cut chain %s: %.0fs wall: %s", c.name, time.Since(start).Seconds(), strings.Join(times, ", "))
}

// waitDone waits for host's done report to reach the server's store.
func waitDone(t *testing.T, vs *versions.Store, host string) {
	t.Helper()
	var st fleet.State
	var err error
	for deadline := time.Now().Add(2 * time.Minute); time.Now().Before(deadline); time.Sleep(time.Second) { // polling the state file
		if st, err = vs.Nodes(fleet.Limits{}).Get(host); err == nil && st.State == fleet.Done {
			return
		}
	}
	t.Errorf("%s's clone is done but the server shows %+v (%v)", host, st, err)
}

// cloneDirect clones disk from iso by a direct kernel boot of the ISO's
// cloner with extra kernel arguments, and powers off when done.
func cloneDirect(t testing.TB, w *work, name, iso string, disk vm.Disk, uefi bool, host, extra string) {
	t.Helper()
	v, err := vm.Start(vm.Options{Name: name, CDROM: iso, Disks: []vm.Disk{disk}, UEFI: uefi, MemMB: 2048, NIC: nic(host),
		Kernel: w.kernel, Initrd: w.initrd, Append: "console=tty0 console=ttyS0,115200 clonecd.after=poweroff " + extra, Log: consoleLog(t, w, name)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(v.Kill)
	m, err := v.Expect(`clonecd: (clone done|FAILED at step .*)`, cloneWait)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(m, "clone done") {
		t.Fatalf("%s: %s", name, m)
	}
	if err := v.Wait(5 * time.Minute); err != nil {
		t.Fatalf("after clone done: %v", err)
	}
}

// extractISO copies the files of iso into a directory: clone media for
// `clonecd clone --media` on the host.
func extractISO(t testing.TB, iso string) string {
	t.Helper()
	media := filepath.Join(t.TempDir(), "media")
	run(t, "xorriso", "-osirrox", "on", "-indev", iso, "-extract", "/", media)
	return media
}
