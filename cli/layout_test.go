package cli

import (
	"crypto/sha256"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/clonecd/clonecd/internal/testenv"
)

func fileHash(t *testing.T, p string) [32]byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return sha256.Sum256(b)
}

const cliLayout = `label: dos
label-id: 0x600dcafe
size=8MiB, type=83, bootable
size=4MiB, type=82
type=83
# clonecd: part=1 fs=ext4 mount=/
# clonecd: part=2 fs=swap
# clonecd: part=3 fs=ext4 mount=/data
`

// TestLayoutCommands drives `clonecd layout dump|apply|check|capture` as an
// admin types them, on image files, against real sfdisk and mkfs.
func TestLayoutCommands(t *testing.T) {
	t.Parallel()
	testenv.NeedTools(t, "sfdisk", "mkfs.ext4")
	dir := t.TempDir()
	lay := filepath.Join(dir, "node.sfdisk")
	os.WriteFile(lay, []byte(cliLayout), 0o644)
	img := testenv.Sparse(t, "disk.img", 64<<20)

	// --help with examples on every sub-command
	for _, sub := range []string{"dump", "apply", "check", "capture"} {
		code, out, _ := runMain(t, "layout", sub, "--help")
		if code != 0 || !strings.Contains(out, "Examples:") {
			t.Errorf("layout %s --help: exit %d\n%s", sub, code, out)
		}
	}
	if code, _, errs := runMain(t, "layout"); code != 2 || !strings.Contains(errs, "needs a sub-command: dump, capture, check, apply") {
		t.Errorf("layout without sub-command: exit %d %q", code, errs)
	}

	// dry run writes nothing
	before := fileHash(t, img)
	code, out, errs := runMain(t, "layout", "apply", "--dry-run", lay, img)
	if code != 0 || !strings.Contains(out, "nothing written") || !strings.Contains(out, img+"3 : start=       26624, size=      104448, type=83") {
		t.Fatalf("dry run: exit %d\n%s%s", code, out, errs)
	}
	if fileHash(t, img) != before {
		t.Fatal("--dry-run changed the disk")
	}
	// check on a blank disk: repartition, exit 1, nothing written
	if code, out, _ := runMain(t, "layout", "check", lay, img); code != 1 || !strings.HasPrefix(out, "repartition: no partition table") {
		t.Errorf("check blank: exit %d %q", code, out)
	}
	if fileHash(t, img) != before {
		t.Fatal("check changed the disk")
	}

	// apply, then dump equals sfdisk -d
	if code, _, errs := runMain(t, "layout", "apply", lay, img); code != 0 {
		t.Fatalf("apply: exit %d %s", code, errs)
	}
	code, dump, _ := runMain(t, "layout", "dump", img)
	if want := testenv.Run(t, "sfdisk", "-d", img); code != 0 || dump != want {
		t.Fatalf("dump: exit %d\n%s\nsfdisk -d:\n%s", code, dump, want)
	}

	// format /data per the layout; check says preserve (exit 0)
	start := uint64(26624)
	testenv.Run(t, "mkfs.ext4", "-q", "-F", "-L", "data", "-E", "offset="+strconv.FormatUint(start*512, 10), img, "52224")
	if code, out, errs := runMain(t, "layout", "check", lay, img); code != 0 || out != "preserve /data\n" {
		t.Errorf("check formatted: exit %d %q %s", code, out, errs)
	}
	// the same answer as JSON, and an error is exit 2, never the "repartition" 1
	var dec layoutDecision
	code, out, errs = runMain(t, "layout", "check", "--json", lay, img)
	if err := json.Unmarshal([]byte(out), &dec); code != 0 || err != nil || !dec.Preserve || len(dec.Mounts) != 1 || dec.Mounts[0] != "/data" {
		t.Errorf("check --json: exit %d %q %v %s", code, out, err, errs)
	}
	for _, args := range [][]string{{lay, filepath.Join(dir, "nope.img")}, {filepath.Join(dir, "nope.sfdisk"), img}, {"--json", lay, filepath.Join(dir, "nope.img")}} {
		if code, out, errs := runMain(t, append([]string{"layout", "check"}, args...)...); code != 2 || out != "" || !strings.Contains(errs, "nope.") {
			t.Errorf("layout check %q: exit %d, stdout %q, stderr %q; want exit 2 naming the missing file", args, code, out, errs)
		}
	}
	// a different layout: repartition (exit 1)
	other := filepath.Join(dir, "other.sfdisk")
	os.WriteFile(other, []byte(strings.Replace(cliLayout, "size=4MiB, type=82", "size=6MiB, type=82", 1)), 0o644)
	if code, out, _ := runMain(t, "layout", "check", other, img); code != 1 || !strings.HasPrefix(out, "repartition: partition 2 has 8192 sectors, the layout wants 12288") {
		t.Errorf("check other: exit %d %q", code, out)
	}
	code, out, _ = runMain(t, "layout", "check", "--json", other, img)
	if err := json.Unmarshal([]byte(out), &dec); code != 1 || err != nil || dec.Preserve || !strings.HasPrefix(dec.Reason, "partition 2 has 8192 sectors") {
		t.Errorf("check --json other: exit %d %q %v", code, out, err)
	}

	// capture with --root pointing at a tree with an fstab
	root := filepath.Join(dir, "root")
	os.MkdirAll(filepath.Join(root, "etc"), 0o755)
	os.WriteFile(filepath.Join(root, "etc", "fstab"), []byte("LABEL=data /data ext4 defaults 0 2\n"), 0o644)
	code, capt, errs := runMain(t, "layout", "capture", "--root", root, img)
	if code != 0 || !strings.Contains(capt, "# clonecd: part=3 fs=ext4 mount=/data label=data\n") ||
		!strings.Contains(capt, img+"3 : start=       26624, type=83\n") {
		t.Errorf("capture: exit %d\n%s%s", code, capt, errs)
	}
	// real sfdisk takes the captured file unchanged
	capFile := filepath.Join(dir, "captured.sfdisk")
	os.WriteFile(capFile, []byte(capt), 0o644)
	img2 := testenv.Sparse(t, "disk2.img", 96<<20)
	cmd := exec.Command(testenv.Tool("sfdisk"), "-q", img2)
	cmd.Stdin = strings.NewReader(capt)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("sfdisk rejects the captured layout: %v\n%s", err, out)
	}

	// errors: a bad layout names the line (exit 1), a bad command line exits 2
	bad := filepath.Join(dir, "bad.sfdisk")
	os.WriteFile(bad, []byte("label: dos\nsize=1G, colour=red\n"), 0o644)
	if code, _, errs := runMain(t, "layout", "apply", bad, img); code != 2 || !strings.Contains(errs, bad+": line 2: unknown field \"colour=red\"") {
		t.Errorf("bad layout: exit %d %q", code, errs)
	}
	big := filepath.Join(dir, "big.sfdisk")
	os.WriteFile(big, []byte("label: dos\nsize=1G\n"), 0o644)
	if code, _, errs := runMain(t, "layout", "apply", big, img); code != 2 || !strings.Contains(errs, "961 MiB too small") {
		t.Errorf("too big: exit %d %q", code, errs)
	}
	if fileHash(t, img) == before {
		t.Error("disk unchanged after apply?")
	}
	if code, _, _ := runMain(t, "layout", "apply", lay); code != 2 {
		t.Errorf("missing argument: exit %d, want 2", code)
	}
}
