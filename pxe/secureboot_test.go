package pxe

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/clonecd/clonecd/builder"
	"github.com/clonecd/clonecd/internal/testenv"
	"github.com/clonecd/clonecd/internal/vm"
)

// Secure Boot machine: q35 with SMM, OVMF_CODE_4M.ms.fd (Secure Boot
// capable) and a copy of OVMF_VARS_4M.ms.fd (Microsoft's keys enrolled,
// Secure Boot on), a blank 4 GiB virtio disk, an e1000 NIC on user
// networking with pxe04's MAC (the ISO's nodes table names it), no iPXE
// involved.
const (
	sbCode = "/usr/share/OVMF/OVMF_CODE_4M.ms.fd"
	sbVars = "/usr/share/OVMF/OVMF_VARS_4M.ms.fd"
)

// secureBootFirmware is QEMU's arguments for OVMF with Secure Boot
// enforced, with a fresh copy of the variables for the VM name.
func secureBootFirmware(t testing.TB, dir, name string) []string {
	t.Helper()
	for _, f := range []string{sbCode, sbVars} {
		if _, err := os.Stat(f); err != nil {
			testenv.Missing(t, "%v (package ovmf)", err)
		}
	}
	vars := filepath.Join(dir, name+".vars.fd")
	testenv.Run(t, "cp", sbVars, vars)
	return []string{"-machine", "q35,smm=on", "-global", "driver=cfi.pflash01,property=secure,value=on",
		"-drive", "if=pflash,format=raw,unit=0,readonly=on,file=" + sbCode,
		"-drive", "if=pflash,format=raw,unit=1,file=" + vars}
}

func secureBootVM(t *testing.T, dir, name, iso, disk string) (*vm.VM, time.Time) {
	t.Helper()
	o := vm.Options{Name: name, CDROM: iso, MemMB: 2048, NIC: "e1000,mac=52:54:00:7e:00:04", Log: consoleLog(t, dir, name),
		Extra: secureBootFirmware(t, dir, name)}
	if disk != "" {
		o.Disks = []vm.Disk{{Path: disk, Bus: "virtio"}}
	}
	if iso != "" {
		o.Boot = "d"
	}
	v, err := vm.Start(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(v.Kill)
	return v, time.Now()
}

// TestSecureBoot: with Secure Boot enforced and Microsoft's keys
// enrolled, an ISO whose loader is unsigned (grub-mkstandalone) is
// refused by the firmware (so Secure Boot really is on); the ISO built
// with the signed chain boots shim -> signed GRUB -> signed kernel ->
// the cloner, which clones; the clone, with the signed chain on its ESP
// (InstallSignedChain, the bootloader step's hook), boots to login with
// Secure Boot on.
func TestSecureBoot(t *testing.T) {
	t.Parallel()
	testenv.NeedRoot(t)
	testenv.NeedTools(t, "qemu-system-x86_64", "losetup", "partx", "blkid", "mount")
	if !builder.SignedChainAvailable() {
		testenv.Missing(t, "%v", builder.ErrNoSignedChain)
	}
	m := newMedia(t)
	dir := t.TempDir()
	iso := func(name string, sb bool) string {
		out := filepath.Join(dir, name)
		if _, err := builder.Build(builder.Options{Output: out, Image: m.image, Layout: m.layout, Nodes: m.nodes, Version: labVersion,
			Kernel: m.kernel, Initrd: m.initrd, SecureBoot: sb, Quiet: true}); err != nil {
			t.Fatal(err)
		}
		return out
	}
	signed, unsigned := iso("signed.iso", true), iso("unsigned.iso", false)

	// 1. An unsigned loader is refused.
	v, start := secureBootVM(t, dir, "sb-unsigned", unsigned, "")
	expect(t, v, start, "unsigned ISO refused", `Access Denied|Security Violation`, 10*time.Minute)
	if strings.Contains(v.Output(), "clonecd "+labVersion) {
		t.Errorf("the unsigned GRUB ran under Secure Boot")
	}
	v.Kill()

	// 2. The signed ISO boots the cloner, which clones.
	disk := testenv.Sparse(t, "sb.img", 4<<30)
	v, start = secureBootVM(t, dir, "sb-clone", signed, disk)
	expect(t, v, start, "signed ISO: kernel with Secure Boot", `Secure boot enabled`, 15*time.Minute)
	m2 := expect(t, v, start, "signed ISO: clone", `clonecd: (clone done|FAILED at step .*)`, 30*time.Minute)
	if !strings.Contains(m2, "clone done") {
		t.Fatalf("signed ISO: %s", m2)
	}
	if err := v.Wait(5 * time.Minute); err != nil {
		t.Fatalf("after the clone: %v", err)
	}

	// 3. The bootloader step's hook: the clone gets the signed chain. The
	// golden root has no shim-signed, so the test installs the build
	// host's packages' files into the cloned root first, as a golden
	// root with shim-signed and grub-efi-amd64-signed would have them.
	installChain(t, disk)

	// 4. The clone boots to login with Secure Boot on.
	v, start = secureBootVM(t, dir, "sb-boot", "", disk)
	login(t, v, start, "pxe04")
	v.Send("echo \"S\"\"B=$(od -An -tu1 /sys/firmware/efi/efivars/SecureBoot-8be4df61-93ca-11d2-aa0d-00e098032b8c | awk '{print $NF}') END\"\r")
	if _, err := v.Expect(`SB=1 END`, 2*time.Minute); err != nil {
		t.Errorf("the clone does not report Secure Boot on: %v", err)
	}
	v.Send("poweroff\r")
	v.Wait(3 * time.Minute)
}

// installChain runs builder.InstallSignedChain on a cloned disk: the root
// (partition 4, ext4) loop-mounted, the ESP (partition 2) staged in a
// directory and copied in with mtools (the host's kernel may have no vfat).
func installChain(t *testing.T, disk string) {
	t.Helper()
	testenv.NeedTools(t, "mcopy", "partx", "blkid")
	loop := testenv.Loop(t, disk, 512)
	testenv.Output("partx", "-a", loop)
	rootDir, espDir := t.TempDir(), t.TempDir()
	testenv.Run(t, "mount", loop+"p4", rootDir)
	defer testenv.Output("umount", rootDir)
	for src, dst := range map[string]string{builder.ShimSigned: "usr/lib/shim/shimx64.efi.signed",
		builder.GrubSigned: "usr/lib/grub/x86_64-efi-signed/grubx64.efi.signed"} {
		p := filepath.Join(rootDir, dst)
		os.MkdirAll(filepath.Dir(p), 0o755)
		testenv.Run(t, "cp", src, p)
	}
	root, err := os.OpenRoot(rootDir)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	esp, err := os.OpenRoot(espDir)
	if err != nil {
		t.Fatal(err)
	}
	defer esp.Close()
	uuid := strings.TrimSpace(testenv.Run(t, "blkid", "-s", "UUID", "-o", "value", loop+"p4"))
	wrote, err := builder.InstallSignedChain(root, esp, uuid)
	if err != nil {
		t.Fatal(err)
	}
	start := strings.TrimSpace(testenv.Run(t, "partx", "-g", "-o", "START", "-n", "2", disk))
	sector, err := strconv.ParseInt(start, 10, 64)
	if err != nil {
		t.Fatalf("partx: ESP start %q: %v", start, err)
	}
	testenv.Run(t, "mcopy", "-s", "-o", "-D", "o", "-i", fmt.Sprintf("%s@@%d", disk, sector*512), filepath.Join(espDir, "EFI"), "::/")
	t.Logf("signed chain on the clone's ESP: %v", wrote)
}

// TestPXESecureBoot (make matrix): the network chain under Secure Boot (OVMF with
// Microsoft's keys, full DHCP): firmware PXE -> TFTP shimx64.efi ->
// grubx64.efi (Debian's signed grubnetx64) -> grub/grub.cfg ->
// grub/node/MAC -> the signed kernel and the initramfs over TFTP -> the
// cloner clones; with the signed chain on its ESP the clone then boots
// from its disk (the next PXE answer has no boot file) with Secure Boot on.
func TestPXESecureBoot(t *testing.T) {
	if !testenv.Matrix() {
		t.Skip("slow (two Secure Boot VMs, the initramfs over TFTP): runs with make matrix (CLONECD_MATRIX=1)")
	}
	t.Parallel()
	if !inNetns(t, vmTimeout) {
		return
	}
	l := newLab(t, labOptions{secureBoot: true})
	n := node{name: "pxe04", mac: "52:54:00:7e:00:04", uefi: true, secureBoot: true, noReboot: true}
	runClonecd(t, l.m.bin, "reclone --pxe", map[string]string{"store": l.m.store, "nodes": n.name})
	n.disk = testenv.Sparse(t, n.name+".img", 4<<30)
	v, start := l.boot(n)
	expect(t, v, start, "PXE shim -> GRUB -> kernel with Secure Boot", `Secure boot enabled`, 20*time.Minute)
	m := expect(t, v, start, "clone", `clonecd: (clone done|FAILED at step .*)`, 30*time.Minute)
	if !strings.Contains(m, "clone done") {
		t.Fatalf("%s: %s", n.name, m)
	}
	if err := v.Wait(5 * time.Minute); err != nil {
		t.Fatalf("the cloner did not reboot: %v", err)
	}
	if !strings.Contains(l.logText(), "stage 2 grub: clone") {
		t.Errorf("the PXE log shows no GRUB stage 2")
	}
	installChain(t, n.disk)
	v, start = l.boot(n)
	login(t, v, start, n.name)
	v.Send("echo \"S\"\"B=$(od -An -tu1 /sys/firmware/efi/efivars/SecureBoot-8be4df61-93ca-11d2-aa0d-00e098032b8c | awk '{print $NF}') END\"\r")
	if _, err := v.Expect(`SB=1 END`, 2*time.Minute); err != nil {
		t.Errorf("the clone does not report Secure Boot on: %v", err)
	}
}
