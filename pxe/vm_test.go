package pxe

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/clonecd/clonecd/internal/testenv"
)

// The QEMU tests of issue 14 (TCG: each boot costs minutes), all in make
// test:
//
//	TestPXEBIOS        full DHCP, SeaBIOS: pxe01 marked -> iPXE -> cloned ->
//	                   reboots -> PXE says local (sanboot) -> login; then the
//	                   mark is gone. Beside it an unknown MAC whose disk holds
//	                   a boot sector that prints a marker: it PXE-boots to
//	                   that disk, its bytes unchanged, and shows as "new".
//	TestPXEUEFIProxy   proxyDHCP beside dnsmasq, OVMF: pxe02's firmware PXE
//	                   -> TFTP snponly.efi -> iPXE -> cloned -> reboots -> no
//	                   boot file -> its disk -> login.
//	TestPXEHTTPBoot    full DHCP, OVMF with PXE off: pxe03 UEFI HTTP-boots
//	                   snponly.efi -> iPXE -> cloned -> reboots -> its disk -> login.
//
// Secure Boot is in secureboot_test.go, the probe matrix in matrix_test.go
// (make matrix).

const vmTimeout = 60 * time.Minute

// markerSector is a BIOS boot sector that prints localDiskMarker on COM1
// and halts: the "own disk" of a node that must not be cloned.
func markerSector() []byte {
	msg := []byte(localDiskMarker + "\r\n\x00")
	code := []byte{
		0x31, 0xc0, // xor ax, ax
		0x8e, 0xd8, // mov ds, ax
		0xfc,             // cld
		0xba, 0xf8, 0x03, // mov dx, 0x3f8
		0xbe, 0x17, 0x7c, // mov si, 0x7c17 (msg)
		0xac,       // lodsb
		0x84, 0xc0, // test al, al
		0x74, 0x03, // jz +3
		0xee,       // out dx, al
		0xeb, 0xf8, // jmp lodsb
		0xfa,       // cli
		0xf4,       // hlt
		0xeb, 0xfd, // jmp hlt
	}
	s := make([]byte, 512)
	copy(s, code)
	copy(s[len(code):], msg)
	s[510], s[511] = 0x55, 0xaa
	return s
}

const localDiskMarker = "CLONECD-TEST-LOCAL-DISK"

// cycle is one node's install: marked, PXE, cloned, rebooted, PXE says
// local, login; then the mark is gone.
func cycle(t *testing.T, l *lab, n node, how string) {
	runClonecd(t, l.m.bin, "reclone --pxe", map[string]string{"store": l.m.store, "nodes": n.name})
	n.disk = testenv.Sparse(t, n.name+".img", 4<<30)
	v, start := l.boot(n)
	expect(t, v, start, n.name+": "+how+" -> cloner", `clonecd: step setup done|clonecd: network: `, 15*time.Minute)
	m := expect(t, v, start, n.name+": clone", `clonecd: (clone done|FAILED at step .*)`, 30*time.Minute)
	if !strings.Contains(m, "clone done") {
		time.Sleep(3 * time.Second)
		t.Fatalf("%s: %s", n.name, m)
	}
	select {
	case got := <-l.cloned:
		if got != n.name {
			t.Errorf("the report marked %s cloned; want %s", got, n.name)
		}
	case <-time.After(time.Minute):
		t.Fatalf("%s: no done report reached the server", n.name)
	}
	login(t, v, start, n.name)
	v.Send("echo \"H\"\"1 $(hostname) $(cat /etc/clonecd-version) END\"\r")
	if _, err := v.Expect(`H1 `+n.name+` `+labVersion+` END`, 2*time.Minute); err != nil {
		t.Errorf("the clone's hostname and version: %v", err)
	}
	if !strings.Contains(l.logText(), n.mac+" ") || !strings.Contains(l.logText(), "local (not marked)") {
		t.Errorf("the PXE log shows no local decision for %s after the clone", n.mac)
	}
	hosts, err := l.policy.Hosts()
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range hosts {
		if h.MAC == n.mac && (h.State != HostLocal || h.Cloned.IsZero()) {
			t.Errorf("after the clone: %+v; want state local with a clone time", h)
		}
	}
	v.Send("poweroff\r")
	v.Kill()
}

// TestPXEBIOS: full DHCP, SeaBIOS with -boot n.
func TestPXEBIOS(t *testing.T) {
	t.Parallel()
	if !inNetns(t, vmTimeout) {
		return
	}
	l := newLab(t, labOptions{})
	// the unknown MAC with a disk of its own
	done := make(chan struct{})
	go func() {
		defer close(done)
		disk := testenv.Sparse(t, "own.img", 64<<20)
		f, err := os.OpenFile(disk, os.O_WRONLY, 0)
		if err != nil {
			t.Error(err)
			return
		}
		f.WriteAt(markerSector(), 0)
		f.WriteAt([]byte("data that must stay"), 1<<20)
		f.Close()
		before := testenv.SHA256File(t, disk)
		v, start := l.boot(node{name: "unknown", mac: "52:54:00:7e:00:99", disk: disk})
		if _, err := v.Expect(localDiskMarker, 10*time.Minute); err != nil {
			t.Errorf("an unknown MAC did not PXE-boot its own disk: %v", err)
		}
		t.Logf("unknown MAC: own disk after %.0fs", time.Since(start).Seconds())
		v.Kill()
		if after := testenv.SHA256File(t, disk); after != before {
			t.Errorf("the disk of a node not marked for install changed")
		}
		hosts, _ := l.policy.Hosts()
		found := false
		for _, h := range hosts {
			if h.MAC == "52:54:00:7e:00:99" && h.New && h.State == HostLocal && strings.HasPrefix(h.Vendor, "PXEClient") && !h.FirstSeen.IsZero() {
				found = true
			}
		}
		if !found {
			t.Errorf("the unknown MAC is not recorded as new with its vendor class: %+v", hosts)
		}
	}()
	cycle(t, l, node{name: "pxe01", mac: "52:54:00:7e:00:01"}, "BIOS iPXE")
	<-done
}

// TestPXEUEFIProxy: proxyDHCP beside dnsmasq, OVMF's own PXE.
func TestPXEUEFIProxy(t *testing.T) {
	t.Parallel()
	if !inNetns(t, vmTimeout) {
		return
	}
	l := newLab(t, labOptions{proxy: true})
	cycle(t, l, node{name: "pxe02", mac: "52:54:00:7e:00:02", uefi: true}, "UEFI PXE, TFTP snponly.efi")
	if !strings.Contains(l.logText(), "TFTP "+FileUEFI+" to ") {
		t.Errorf("the firmware did not fetch %s over TFTP (it may have fallen back to HTTP boot)", FileUEFI)
	}
}

// TestPXEHTTPBoot: full DHCP, OVMF with PXE off: UEFI HTTP boot.
func TestPXEHTTPBoot(t *testing.T) {
	t.Parallel()
	if !inNetns(t, vmTimeout) {
		return
	}
	l := newLab(t, labOptions{})
	cycle(t, l, node{name: "pxe03", mac: "52:54:00:7e:00:03", uefi: true, httpBoot: true}, "UEFI HTTP boot")
	if !strings.Contains(l.logText(), "HTTPClient") {
		t.Errorf("no HTTPClient request in the PXE log")
	}
}
