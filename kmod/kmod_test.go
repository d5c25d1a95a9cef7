package kmod

import (
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/clonecd/clonecd/internal/testenv"
)

func TestGlob(t *testing.T) {
	for _, c := range []struct {
		pat, s string
		want   bool
	}{
		{"pci:v00008086d00007010sv*sd*bc*sc*i*", "pci:v00008086d00007010sv00000000sd00000000bc01sc01i80", true},
		{"pci:v00008086d00007010sv*sd*bc*sc*i*", "pci:v00008086d00007011sv00000000sd00000000bc01sc01i80", false},
		{"virtio:d00000002v*", "virtio:d00000002v00001AF4", true},
		{"*", "", true},
		{"a*b*c", "axxbyyc", true},
		{"a*b*c", "axxbyy", false},
		{"a?c", "abc", true},
		{"a?c", "ac", false},
		{"[ab]x", "bx", true},
		{"[!ab]x", "bx", false},
		{"[^ab]x", "cx", true},
		{"[a-c]x", "cx", true},
		{"[]]x", "]x", true},
		{"[a", "[a", true},
		{`a\*b`, "a*b", true},
		{`a\*b`, "axb", false},
		{"usb:v*p*d*dc*dsc*dp*ic08isc06ip50in*", "usb:v46F4p0001d0000dc00dsc00dp00ic08isc06ip50in00", true},
		{"a/*", "a/b/c", true}, // fnmatch without FNM_PATHNAME: * crosses '/'
	} {
		if got := Glob(c.pat, c.s); got != c.want {
			t.Errorf("Glob(%q, %q) = %v, want %v", c.pat, c.s, got, c.want)
		}
	}
}

func TestParse(t *testing.T) {
	x, err := ParseDep(strings.NewReader("# c\nkernel/fs/ext4/ext4.ko: kernel/lib/crc16.ko kernel/fs/mbcache.ko kernel/fs/jbd2/jbd2.ko\nkernel/lib/crc16.ko:\nkernel/fs/mbcache.ko:\nkernel/fs/jbd2/jbd2.ko:\nkernel/arch/x86/crypto/crc32c-intel.ko.xz:\n"))
	if err != nil {
		t.Fatal(err)
	}
	if got := x.Deps["ext4"]; !reflect.DeepEqual(got, []string{"crc16", "mbcache", "jbd2"}) {
		t.Errorf("deps of ext4 = %v", got)
	}
	if got := x.Path["crc32c_intel"]; got != "kernel/arch/x86/crypto/crc32c-intel.ko.xz" {
		t.Errorf("path of crc32c_intel = %q", got)
	}
	for _, bad := range []string{"kernel/a.ko kernel/b.ko\n", "noext: x\n", "a.ko: notamodule\n"} {
		if _, err := ParseDep(strings.NewReader(bad)); err == nil || !strings.Contains(err.Error(), "line 1") {
			t.Errorf("ParseDep(%q) error = %v, want one naming line 1", bad, err)
		}
	}
	s, err := ParseSoftdep(strings.NewReader("softdep ext4 pre: crypto-crc32c\nsoftdep cifs gcm\nsoftdep a pre: b c post: d\n"))
	if err != nil {
		t.Fatal(err)
	}
	if want := (Softdep{Pre: []string{"b", "c"}, Post: []string{"d"}}); !reflect.DeepEqual(s.Softdeps["a"], want) {
		t.Errorf("softdep a = %+v, want %+v", s.Softdeps["a"], want)
	}
	if s.Softdeps["ext4"].Pre[0] != "crypto-crc32c" || s.Softdeps["cifs"].Pre[0] != "gcm" {
		t.Errorf("softdeps = %+v", s.Softdeps)
	}
	if _, err := ParseAlias(strings.NewReader("alias a\n")); err == nil {
		t.Error("ParseAlias accepted a two-field line")
	}
	if _, err := ParseSoftdep(strings.NewReader("softdepx a\n")); err == nil {
		t.Error("ParseSoftdep accepted a bad keyword")
	}
}

// goldenModules is the golden root and its module tree's version.
func goldenModules(t *testing.T) (root, ver, dir string) {
	root = testenv.GoldenRoot(t)
	vs, _ := filepath.Glob(filepath.Join(root, "lib/modules/*/modules.dep"))
	if len(vs) == 0 {
		t.Fatalf("no modules.dep in %s/lib/modules", root)
	}
	sort.Strings(vs)
	dir = filepath.Dir(vs[len(vs)-1])
	return root, filepath.Base(dir), dir
}

// TestMatchAgainstModprobe resolves QEMU's device modaliases and kernel
// request names with Index and with the real kmod modprobe (-R) on the
// golden root's tree: the module sets must agree.
func TestMatchAgainstModprobe(t *testing.T) {
	testenv.NeedTools(t, "modprobe")
	root, ver, dir := goldenModules(t)
	x, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, alias := range []string{
		"pci:v00008086d00007010sv00001AF4sd00001100bc01sc01i80", // piix IDE
		"pci:v00008086d00002922sv00001AF4sd00001100bc01sc06i01", // ICH9 AHCI
		"pci:v00001B36d00000010sv00001AF4sd00001100bc01sc08i02", // QEMU NVMe
		"pci:v00001AF4d00001001sv00001AF4sd00000002bc01sc00i00", // virtio-blk PCI
		"virtio:d00000002v00001AF4",                             // virtio-blk
		"virtio:d00000001v00001AF4",                             // virtio-net
		"pci:v00008086d0000100Esv00001AF4sd00001100bc02sc00i00", // e1000
		"pci:v000010ECd00008139sv00001AF4sd00001100bc02sc00i00", // rtl8139
		"pci:v00001B36d0000000Dsv00001AF4sd00001100bc0Csc03i30", // qemu-xhci
		"scsi:t-0x05", "scsi:t-0x00",
		"fs-ext4", "fs-iso9660", "fs-vfat", "crypto-crc32c", "fs-xfs",
	} {
		out, err := testenv.Output("modprobe", "-R", "-S", ver, "-d", root, alias)
		if err != nil {
			t.Fatalf("modprobe -R %s: %v\n%s", alias, err, out)
		}
		want := uniq(strings.Fields(out))
		if got := x.Lookup(alias); !reflect.DeepEqual(got, want) {
			t.Errorf("Lookup(%q) = %v, modprobe -R says %v", alias, got, want)
		}
	}
}

// TestClosureAgainstModprobe compares Closure with modprobe
// --show-depends (which honours modules.dep and softdeps).
func TestClosureAgainstModprobe(t *testing.T) {
	testenv.NeedTools(t, "modprobe")
	root, ver, dir := goldenModules(t)
	x, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, mod := range []string{"ext4", "ahci", "nvme", "virtio_net", "xfs", "vfat", "isofs", "usb_storage", "sr_mod"} {
		out := testenv.Run(t, "modprobe", "--show-depends", "-S", ver, "-d", root, mod)
		var want []string
		for _, l := range strings.Split(out, "\n") {
			if f := strings.Fields(l); len(f) >= 2 && f[0] == "insmod" {
				want = append(want, Name(f[1]))
			}
		}
		got, missing := x.Closure([]string{mod})
		if len(missing) > 0 {
			t.Errorf("Closure(%s) missing %v", mod, missing)
		}
		want = uniq(want)
		sorted := append([]string(nil), got...)
		sort.Strings(sorted)
		if !reflect.DeepEqual(sorted, want) {
			t.Errorf("Closure(%s) = %v, modprobe --show-depends: %v", mod, sorted, want)
		}
		if got[len(got)-1] != mod {
			t.Errorf("Closure(%s) does not end with the module itself: %v", mod, got)
		}
		pos := map[string]int{}
		for i, m := range got {
			pos[m] = i
		}
		for _, m := range got {
			for _, d := range x.Deps[m] {
				if pos[d] > pos[m] {
					t.Errorf("Closure(%s): %s comes after %s which needs it", mod, d, m)
				}
			}
		}
	}
}

func TestModInfoFirmware(t *testing.T) {
	_, _, dir := goldenModules(t)
	x, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	fw, err := Firmware(filepath.Join(dir, x.Path["tg3"]))
	if err != nil {
		t.Fatal(err)
	}
	if !contains(fw, "tigon/tg3.bin") {
		t.Errorf("tg3 firmware = %v, want tigon/tg3.bin among them", fw)
	}
	if _, err := ModInfo(filepath.Join(dir, "modules.dep")); err == nil {
		t.Error("ModInfo of a text file succeeded")
	}
}

func contains(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}

// TestModprobeDryRun runs the multicall entry point against the golden
// tree in dry-run mode (nothing is loaded into the build host's kernel).
func TestModprobeDryRun(t *testing.T) {
	_, _, dir := goldenModules(t)
	var out strings.Builder
	if st := Modprobe([]string{"modprobe", "-n", "-d", dir, "--", "fs-ext4"}, &out); st != 0 {
		t.Fatalf("status %d: %s", st, out.String())
	}
	for _, want := range []string{"loaded crc32c_intel", "loaded jbd2", "loaded ext4"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("modprobe -n fs-ext4 output lacks %q:\n%s", want, out.String())
		}
	}
	out.Reset()
	if st := Modprobe([]string{"modprobe", "-n", "-d", dir, "no-such-thing"}, &out); st == 0 || !strings.Contains(out.String(), "no-such-thing") {
		t.Errorf("unknown alias: status %d, %q", st, out.String())
	}
	if _, err := os.Stat(dir); err != nil {
		t.Fatal(err)
	}
}

// uniq sorts and removes duplicates (modprobe prints a module once per path
// that reaches it).
func uniq(l []string) []string {
	sort.Strings(l)
	var out []string
	for i, s := range l {
		if i == 0 || s != l[i-1] {
			out = append(out, s)
		}
	}
	return out
}

// TestColdplugFakeSysfs runs coldplug passes (dry run) over a sysfs tree
// made of modalias files: devices matching modules.alias get their
// modules with dependencies, each device once, and a device that appears
// later is picked up by the next pass.
func TestColdplugFakeSysfs(t *testing.T) {
	_, _, dir := goldenModules(t)
	l, err := NewLoader(dir)
	if err != nil {
		t.Fatal(err)
	}
	l.DryRun = true
	l.Sys = t.TempDir()
	dev := func(p, alias string) {
		d := filepath.Join(l.Sys, "devices", p)
		os.MkdirAll(d, 0o755)
		os.WriteFile(filepath.Join(d, "modalias"), []byte(alias+"\n"), 0o444)
	}
	dev("pci0000:00/0000:00:03.0", "pci:v00008086d00002922sv00001AF4sd00001100bc01sc06i01")
	dev("pci0000:00/0000:00:05.0", "pci:v00008086d0000100Esv00001AF4sd00001100bc02sc00i00")
	dev("platform/serial8250", "platform:serial8250") // builtin / no module: nothing to load
	mods, fresh := l.ColdplugPass()
	if fresh != 3 {
		t.Errorf("first pass saw %d new devices, want 3", fresh)
	}
	got := strings.Join(mods, " ")
	for _, want := range []string{"libata", "libahci", "ahci", "e1000"} {
		if !contains(mods, want) {
			t.Errorf("first pass loaded %q, lacks %s", got, want)
		}
	}
	if strings.Index(got, "libata") > strings.Index(got, "ahci ") {
		t.Errorf("ahci before its dependency libata: %q", got)
	}
	if mods, fresh := l.ColdplugPass(); len(mods) != 0 || fresh != 0 {
		t.Errorf("second pass with no new devices: %v, %d new", mods, fresh)
	}
	dev("pci0000:00/0000:00:04.0", "pci:v00001B36d00000010sv00001AF4sd00001100bc01sc08i02")
	mods, fresh = l.ColdplugPass()
	if fresh != 1 || !contains(mods, "nvme") || !contains(mods, "nvme_core") {
		t.Errorf("pass after an NVMe device appeared: %v, %d new", mods, fresh)
	}
	if all := l.Loaded(); !contains(all, "e1000") || !contains(all, "nvme") || all[len(all)-1] != "nvme" {
		t.Errorf("Loaded() = %v, want every pass's modules in load order", all)
	}
}
