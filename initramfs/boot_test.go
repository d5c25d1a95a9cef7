package initramfs

import (
	"compress/gzip"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/clonecd/clonecd/internal/testenv"
	"github.com/clonecd/clonecd/internal/vm"
)

// The QEMU tests boot the golden root's kernel with an initramfs built
// from its modules (clonecd as /init) and look at the serial console.

var (
	bootOnce               sync.Once
	bootDir                string
	bootInitrd, bootKernel string
	bootMedia              string
	bootErr                error
)

// TestMain removes the shared boot files and fails the package if its
// tests changed the host's /etc.
func TestMain(m *testing.M) {
	code := testenv.GuardEtc(m)
	if bootDir != "" {
		os.RemoveAll(bootDir)
	}
	os.Exit(code)
}

// bootFiles builds, once per test binary, the initramfs and a small media
// ISO (CLONE_CD_VERSION, node.cpio.gz and its sha256) and finds the
// golden root's kernel.
func bootFiles(t *testing.T) (kernel, initrd, media string) {
	t.Helper()
	testenv.NeedTools(t, "qemu-system-x86_64", "xorriso")
	o := goldenOptions(t)
	o.Root = o.Golden // as the ISO builder does
	bootOnce.Do(func() {
		bootErr = func() error {
			ks, _ := filepath.Glob(filepath.Join(o.Golden, "boot/vmlinuz-*"))
			if len(ks) == 0 {
				return fmt.Errorf("no kernel in %s/boot", o.Golden)
			}
			sort.Slice(ks, func(i, j int) bool { return versionLess(ks[i], ks[j]) })
			bootKernel = ks[len(ks)-1]
			o.KernelVersion = strings.TrimPrefix(filepath.Base(bootKernel), "vmlinuz-")
			dir, err := os.MkdirTemp("", "clonecd-initramfs-boot-")
			if err != nil {
				return err
			}
			bootDir = dir
			bootInitrd = filepath.Join(dir, "initrd.img")
			f, err := os.Create(bootInitrd)
			if err != nil {
				return err
			}
			if _, err := Build(f, o); err != nil {
				return err
			}
			if err := f.Close(); err != nil {
				return err
			}
			md := filepath.Join(dir, "media")
			os.Mkdir(md, 0o755)
			img, _ := os.Create(filepath.Join(md, "node.cpio.gz"))
			zw := gzip.NewWriter(img)
			buf := make([]byte, 1<<20)
			rand.Read(buf)
			zw.Write(buf)
			zw.Close()
			img.Close()
			data, _ := os.ReadFile(filepath.Join(md, "node.cpio.gz"))
			sum := sha256.Sum256(data)
			os.WriteFile(filepath.Join(md, "node.cpio.gz.sha256"), []byte(hex.EncodeToString(sum[:])+"  node.cpio.gz\n"), 0o644)
			os.WriteFile(filepath.Join(md, "CLONE_CD_VERSION"), []byte("1.19\n"), 0o644)
			bootMedia = filepath.Join(dir, "media.iso")
			if out, err := testenv.Output("xorriso", "-as", "mkisofs", "-R", "-V", "CLONECD_1_19", "-o", bootMedia, md); err != nil {
				return fmt.Errorf("xorriso: %v\n%s", err, out)
			}
			return nil
		}()
	})
	if bootErr != nil {
		t.Fatal(bootErr)
	}
	return bootKernel, bootInitrd, bootMedia
}

func blank(t *testing.T, name string) string { return testenv.Sparse(t, name, 64<<20) }

// newConsole is a VM's console, kept in the test log when the test fails.
func newConsole(t *testing.T) *testenv.SyncBuffer {
	c := &testenv.SyncBuffer{}
	t.Cleanup(func() {
		if t.Failed() {
			s := c.String()
			if len(s) > 12000 {
				s = s[len(s)-12000:]
			}
			t.Logf("console:\n%s", s)
		}
	})
	return c
}

// fields turns "a b c" after a marker into a set.
func fields(s string) map[string]bool {
	m := map[string]bool{}
	for _, f := range strings.Fields(s) {
		f = strings.ReplaceAll(f, "-", "_") // driver virtio-pci is module virtio_pci
		m[f] = true
		if _, drv, ok := strings.Cut(f, "="); ok {
			m["="+drv] = true
		}
	}
	return m
}

// TestBootProbeStorage boots one VM carrying an AHCI disk, an NVMe disk,
// a virtio disk, the media CD on the PIIX IDE controller and an e1000 NIC,
// in clonecd.mode=probe: the drivers must load by modalias and bind, the
// media must be found and its sha256 checked, then the VM powers off.
func TestBootProbeStorage(t *testing.T) {
	kernel, initrd, media := bootFiles(t)
	v, err := vm.Start(vm.Options{
		Name: "probe-storage", Kernel: kernel, Initrd: initrd, MemMB: 1024,
		Append: "console=ttyS0 clonecd.mode=probe panic=-1",
		CDROM:  media, NIC: "e1000",
		Disks: []vm.Disk{{Path: blank(t, "ahci.img"), Bus: "ahci"}, {Path: blank(t, "nvme.img"), Bus: "nvme"}, {Path: blank(t, "vd.img"), Bus: "virtio"}},
		Log:   newConsole(t),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer v.Kill()
	start := time.Now()
	line, err := v.Expect(`clonecd: drivers loaded: [^\r\n]*\r?\n`, 6*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	loaded := fields(strings.TrimPrefix(line, "clonecd: drivers loaded:"))
	bound, err := v.Expect(`clonecd: devices bound: [^\r\n]*\r?\n`, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	drv := fields(strings.TrimPrefix(bound, "clonecd: devices bound:"))
	for _, c := range []struct{ device, module string }{
		{"ahci", "ahci"}, {"piix IDE", "ata_piix"}, {"NVMe", "nvme"}, {"virtio-blk", "virtio_blk"},
		{"virtio PCI", "virtio_pci"}, {"e1000", "e1000"},
	} {
		if !loaded[c.module] {
			t.Errorf("%s: module %s not loaded by coldplug: %s", c.device, c.module, line)
		}
		if !drv["="+c.module] {
			t.Errorf("%s: no device bound to %s: %s", c.device, c.module, bound)
		}
	}
	if !loaded["sr_mod"] {
		t.Errorf("sr_mod (the CD) not loaded: %s", line)
	}
	if _, err := v.Expect(`clonecd: media /dev/sr0 \(iso9660\) version 1\.19`, time.Minute); err != nil {
		t.Fatal(err)
	}
	if _, err := v.Expect(`clonecd: media OK: node.cpio.gz sha256 matches`, 2*time.Minute); err != nil {
		t.Fatal(err)
	}
	t.Logf("QEMU start to media OK: %s; %d modules loaded by coldplug", time.Since(start).Round(time.Second), len(strings.Fields(line))-3)
	if err := v.Wait(2 * time.Minute); err != nil {
		t.Fatalf("VM did not power off after the probe: %v", err)
	}
}

// TestBootShellNetExt4 boots with an rtl8139 and a virtio-net NIC, the
// media ISO written to a USB stick (xHCI) and a blank virtio disk, in
// clonecd.mode=shell. In the rescue shell: the NIC drivers are bound, the
// media was found on the USB disk, and an ext4 made by the image's mke2fs
// mounts, which needs the kernel's module request through clonecd as
// /sbin/modprobe and the ext4 → crc32c softdep.
func TestBootShellNetExt4(t *testing.T) {
	kernel, initrd, media := bootFiles(t)
	usb := filepath.Join(t.TempDir(), "stick.img")
	data, err := os.ReadFile(media)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(usb, data, 0o644); err != nil {
		t.Fatal(err)
	}
	v, err := vm.Start(vm.Options{
		Name: "shell-net-ext4", Kernel: kernel, Initrd: initrd, MemMB: 1024,
		Append: "console=ttyS0 clonecd.mode=shell panic=-1",
		NIC:    "rtl8139",
		Extra:  []string{"-netdev", "user,id=n1", "-device", "virtio-net-pci,netdev=n1"},
		Disks:  []vm.Disk{{Path: usb, Bus: "usb"}, {Path: blank(t, "vd.img"), Bus: "virtio"}},
		Log:    newConsole(t),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer v.Kill()
	prompt := `clonecd rescue:/# `
	if _, err := v.Expect(prompt, 6*time.Minute); err != nil {
		t.Fatal(err)
	}
	run := func(cmd, marker string, timeout time.Duration) string {
		t.Helper()
		if err := v.Send(cmd + "\n"); err != nil {
			t.Fatal(err)
		}
		out, err := v.Expect(`(?s)\(\(6\*7\)\).*?`+marker, timeout)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	out := run(`for d in /sys/bus/pci/devices/* /sys/bus/virtio/devices/*; do [ -e $d/driver ] && basename $(readlink $d/driver); done | sort -u | tr '\n' ' '; echo BOUND-$((6*7))`,
		`BOUND-42`, time.Minute)
	drv := fields(out)
	if !drv["8139cp"] && !drv["8139too"] {
		t.Errorf("rtl8139: neither 8139cp nor 8139too bound: %s", out)
	}
	for _, m := range []string{"virtio_net", "xhci_hcd"} {
		if !drv[m] {
			t.Errorf("%s not bound: %s", m, out)
		}
	}
	out = run(`grep ' /cdrom ' /proc/mounts; echo MEDIA-$((6*7))`, `MEDIA-42`, time.Minute)
	if !regexp.MustCompile(`/dev/sd[a-z]1? /cdrom iso9660`).MatchString(out) {
		t.Errorf("media not mounted from the USB disk: %q", out)
	}
	out = run(`mke2fs -q -F -t ext4 /dev/vda && mount -t ext4 /dev/vda /mnt && echo hello > /mnt/f && cat /mnt/f && grep -o '^crc32c[a-z_]*' /proc/modules | tr '\n' ' '; echo EXT4-$((6*7))`,
		`EXT4-42`, 3*time.Minute)
	if !strings.Contains(out, "hello") {
		t.Errorf("ext4 did not mount: %q", out)
	}
	if !regexp.MustCompile(`crc32c_(intel|generic)`).MatchString(out) {
		t.Errorf("crc32c (ext4's softdep) not loaded: %q", out)
	}
	// The kernel asked /sbin/modprobe (clonecd) for fs-ext4; it loaded
	// the softdep crc32c_generic (crypto-crc32c) before ext4.
	out = run(`dmesg | grep -o 'clonecd modprobe: kmod: loaded [a-z0-9_]*' | tr '\n' ' '; echo KMSG-$((6*7))`, `KMSG-42`, time.Minute)
	if !regexp.MustCompile(`loaded crc32c_generic .*loaded ext4`).MatchString(out) {
		t.Errorf("modprobe helper did not load crc32c_generic then ext4: %q", out)
	}
	// NIC and USB drivers came from coldplug (logged in /tmp/clone.log).
	out = run(`grep -o 'kmod: loaded [a-z0-9_]*' /tmp/clone.log | tr '\n' ' '; echo LOG-$((6*7))`, `LOG-42`, time.Minute)
	for _, re := range []string{`loaded virtio_net`, `loaded 8139(cp|too)`, `loaded xhci_pci`, `loaded usb_storage`} {
		if !regexp.MustCompile(re).MatchString(out) {
			t.Errorf("clone.log: coldplug did not %s: %q", re, out)
		}
	}
	if err := v.Send("poweroff -f\n"); err != nil {
		t.Fatal(err)
	}
	if err := v.Wait(2 * time.Minute); err != nil {
		t.Fatal(err)
	}
}
