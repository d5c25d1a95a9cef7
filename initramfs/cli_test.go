package initramfs

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/clonecd/clonecd/internal/testenv"
)

// TestCLIRdfsRd runs what the Makefile's targets run: `clonecd initramfs`
// builds initrd.img, `make rdfs` (`clonecd unpack initrd.img initrd`)
// extracts it, an admin edits it, `make rd` (`clonecd initramfs --from-dir
// initrd -o initrd.img`) packs it back.
func TestCLIRdfsRd(t *testing.T) {
	testenv.NeedRoot(t)
	bin := testenv.Clonecd(t)
	golden := testenv.GoldenRoot(t)
	dir := t.TempDir()
	img := filepath.Join(dir, "initrd.img")
	run := func(args ...string) string {
		t.Helper()
		cmd := exec.Command(bin, args...)
		cmd.Dir = dir
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("clonecd %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	out := run("initramfs", "--golden", golden, "--omit-module", "kernel/drivers/net/ethernet/", "--add-module", "e1000", "-o", img)
	for _, want := range []string{"initrd.img: ", "compressed", "modules from " + golden, "programs: mke2fs", "busybox: "} {
		if !strings.Contains(out, want) {
			t.Errorf("summary lacks %q:\n%s", want, out)
		}
	}
	run("unpack", "initrd.img", "initrd")
	for _, p := range []string{"init", "sbin/modprobe", "dev/console"} {
		if _, err := os.Lstat(filepath.Join(dir, "initrd", p)); err != nil {
			t.Errorf("rdfs: %v", err)
		}
	}
	if got, _ := filepath.Glob(filepath.Join(dir, "initrd/lib/modules/*/kernel/drivers/net/ethernet/intel/e1000e")); len(got) != 0 {
		t.Errorf("--omit-module kernel/drivers/net/ethernet/ left e1000e in: %v", got)
	}
	if got, _ := filepath.Glob(filepath.Join(dir, "initrd/lib/modules/*/kernel/drivers/net/ethernet/intel/e1000/e1000.ko")); len(got) != 1 {
		t.Errorf("--add-module e1000 after the omit: %v", got)
	}
	os.WriteFile(filepath.Join(dir, "initrd/etc/new-hardware"), []byte("x\n"), 0o644)
	run("initramfs", "--from-dir", "initrd", "-o", "initrd.img")
	list := listing(t, img)
	if !strings.Contains(list, "etc/new-hardware") {
		t.Errorf("make rd lost the edit:\n%s", list)
	}
	cmd := exec.Command(bin, "initramfs", "-o", filepath.Join(dir, "x.img"), "--modules", dir)
	if out, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(out), "modules.dep") {
		t.Errorf("bad --modules: %v\n%s", err, out)
	}
	if _, err := os.Stat(filepath.Join(dir, "x.img")); err == nil {
		t.Error("a failed build left its output file")
	}
}
