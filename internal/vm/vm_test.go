package vm

import (
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/clonecd/clonecd/internal/testenv"
)

func TestArgsBuses(t *testing.T) {
	for _, c := range []struct {
		bus, want string
	}{
		{"virtio", "if=virtio"},
		{"ide", "if=ide,index=0"},
		{"ahci", "ide-hd,drive=disk0,bus=ahci0.0"},
		{"nvme", "nvme,drive=disk0"},
		{"usb", "usb-storage,bus=xhci0.0"},
	} {
		a := strings.Join(Args(Options{Disks: []Disk{{Path: "d.img", Bus: c.bus}}}), " ")
		if !strings.Contains(a, c.want) {
			t.Errorf("bus %s: args %q lack %q", c.bus, a, c.want)
		}
		if !strings.Contains(a, "-accel tcg -cpu max") || !strings.Contains(a, "virtio-rng-pci") {
			t.Errorf("bus %s: args %q lack TCG or the entropy device", c.bus, a)
		}
	}
}

// TestArgsCDFirst: booting the CD ("d") gives it bootindex 0, which OVMF
// follows (it ignores -boot's order), so a bootable disk does not win.
func TestArgsCDFirst(t *testing.T) {
	for _, c := range []struct {
		boot string
		want bool
	}{{"d", true}, {"c", false}, {"", false}} {
		a := strings.Join(Args(Options{CDROM: "cd.iso", UEFI: true, Boot: c.boot, Disks: []Disk{{Path: "d.img"}}}), " ")
		if got := strings.Contains(a, "ide-cd,drive=cd0,bus=ide.1,unit=0,bootindex=0"); got != c.want {
			t.Errorf("boot %q: args %q; CD bootindex 0: %v, want %v", c.boot, a, got, c.want)
		}
		if !strings.Contains(a, "cd.iso") {
			t.Errorf("boot %q: no CD in %q", c.boot, a)
		}
	}
}

// TestBootKernel boots the host's kernel with no root: the console must
// show the kernel starting and QEMU must exit on the panic's reboot.
func TestBootKernel(t *testing.T) {
	testenv.NeedTools(t, "qemu-system-x86_64")
	ks, _ := filepath.Glob("/boot/vmlinuz-*")
	if len(ks) == 0 {
		testenv.NeedTools(t, "/boot/vmlinuz-*")
	}
	sort.Strings(ks)
	v, err := Start(Options{Name: "kernel", Kernel: ks[len(ks)-1], Append: "console=ttyS0 panic=-1", NIC: "none"})
	if err != nil {
		t.Fatal(err)
	}
	defer v.Kill()
	if _, err := v.Expect(`Linux version \S+`, 2*time.Minute); err != nil {
		t.Fatal(err)
	}
	if _, err := v.Expect(`Kernel panic`, 3*time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := v.Wait(time.Minute); err != nil {
		t.Fatal(err)
	}
}
