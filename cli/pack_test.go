package cli_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/clonecd/clonecd/internal/testenv"
)

func clonecd(t *testing.T, dir string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := exec.Command(testenv.Clonecd(t), args...)
	cmd.Dir = dir
	var o, e strings.Builder
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return o.String(), e.String(), code
}

// TestPackUnpackVerifyCLI drives the three commands as an admin would.
func TestPackUnpackVerifyCLI(t *testing.T) {
	t.Parallel()
	testenv.NeedRoot(t)
	dir := t.TempDir()
	root := filepath.Join(dir, "root")
	for _, d := range []string{"etc/ssh", "usr/bin", "tmp", "home/u/.cache"} {
		os.MkdirAll(filepath.Join(root, d), 0o755)
	}
	files := map[string]string{"etc/passwd": "root:x:0:0::/root:/bin/sh\n", "etc/hostname": "golden\n",
		"etc/ssh/ssh_host_rsa_key": "secret", "usr/bin/tool": "ELF", "tmp/junk": "x", "home/u/.cache/big": "cache"}
	for name, data := range files {
		os.WriteFile(filepath.Join(root, name), []byte(data), 0o644)
	}
	os.WriteFile(filepath.Join(dir, "excl"), []byte("# comment\n/home/*/.cache/***\n"), 0o644)

	out, errOut, code := clonecd(t, dir, "pack", "-q", "-o", "img.cpio.gz", "--exclude-from", "excl", "--format", "crc", root)
	if code != 0 || out != "" || errOut != "" {
		t.Fatalf("pack -q: code %d, stdout %q, stderr %q", code, out, errOut)
	}
	sum, err := os.ReadFile(filepath.Join(dir, "img.cpio.gz.sha256"))
	if err != nil || !strings.HasSuffix(string(sum), "  img.cpio.gz\n") {
		t.Fatalf("sha256 file: %q %v", sum, err)
	}
	if got := testenv.Run(t, "sh", "-c", "cd "+dir+" && sha256sum -c img.cpio.gz.sha256"); !strings.Contains(got, "OK") {
		t.Fatalf("sha256sum -c: %s", got)
	}
	listing := testenv.Run(t, "sh", "-c", "gzip -dc "+filepath.Join(dir, "img.cpio.gz")+" | cpio -it --quiet")
	for _, want := range []string{"etc/passwd", "usr/bin/tool", "tmp\n", "home/u\n"} {
		if !strings.Contains(listing, want) {
			t.Errorf("image lacks %q:\n%s", want, listing)
		}
	}
	for _, gone := range []string{"hostname", "ssh_host", "tmp/junk", ".cache"} {
		if strings.Contains(listing, gone) {
			t.Errorf("image holds %q:\n%s", gone, listing)
		}
	}

	// unpack from a file and from standard input
	_, errOut, code = clonecd(t, dir, "unpack", "img.cpio.gz", "out")
	if code != 0 || !strings.Contains(errOut, "unpacked img.cpio.gz into out:") {
		t.Fatalf("unpack: code %d: %s", code, errOut)
	}
	testenv.Run(t, "sh", "-c", "cd "+dir+" && clonecd=$0; \"$clonecd\" unpack -q - out2 < img.cpio.gz", testenv.Clonecd(t))
	for _, o := range []string{"out", "out2"} {
		if b, _ := os.ReadFile(filepath.Join(dir, o, "etc/passwd")); string(b) != files["etc/passwd"] {
			t.Errorf("%s/etc/passwd: %q", o, b)
		}
	}

	out, _, code = clonecd(t, dir, "verify", "img.cpio.gz", "out")
	if code != 0 || !strings.Contains(out, "out matches img.cpio.gz") {
		t.Fatalf("verify clean: code %d: %s", code, out)
	}
	os.WriteFile(filepath.Join(dir, "out/usr/bin/tool"), []byte("EL!"), 0o644)
	os.WriteFile(filepath.Join(dir, "out/etc/hostname"), []byte("node1\n"), 0o644)
	out, errOut, code = clonecd(t, dir, "verify", "img.cpio.gz", "out")
	if code != 1 || !strings.Contains(out, "DIFF /usr/bin/tool: content differs") ||
		!strings.Contains(out, "identity files personalised by the clone (not failures):\n  /etc/hostname") ||
		!strings.Contains(errOut, "1 difference") {
		t.Fatalf("verify changed: code %d\n%s\n%s", code, out, errOut)
	}

	_, _, code = clonecd(t, dir, "verify", "-q", "--ignore", "/usr/bin/tool", "img.cpio.gz", "out")
	if code != 0 {
		t.Errorf("verify --ignore /usr/bin/tool: code %d", code)
	}

	// pack to standard output; a corrupt image fails unpack naming the entry
	testenv.Run(t, "sh", "-c", "cd "+dir+" && \"$0\" pack -q -o - root > stdout.cpio.gz && test -s stdout.cpio.gz && test ! -e stdout.cpio.gz.sha256", testenv.Clonecd(t))
	raw, _ := os.ReadFile(filepath.Join(dir, "img.cpio.gz"))
	os.WriteFile(filepath.Join(dir, "cut.cpio.gz"), raw[:len(raw)/2], 0o644)
	_, errOut, code = clonecd(t, dir, "unpack", "cut.cpio.gz", "out3")
	if code != 2 || !strings.Contains(errOut, "cut.cpio.gz: cpio: ") || !strings.Contains(errOut, "at offset") {
		t.Errorf("truncated image: code %d: %s", code, errOut)
	}
}

func TestPackHelpAndErrors(t *testing.T) {
	t.Parallel()
	out, _, code := clonecd(t, "", "pack", "--help")
	if code != 0 {
		t.Fatalf("pack --help: %d", code)
	}
	for _, want := range []string{"/proc/*", "/etc/ssh/ssh_host_*", "/etc/machine-id", "--no-default-excludes", "Examples:", "-level", "-j"} {
		if !strings.Contains(out, strings.TrimPrefix(want, "-")) {
			t.Errorf("pack --help lacks %q", want)
		}
	}
	_, errOut, code := clonecd(t, "", "pack", "--format", "tar", "/nonexistent")
	if code != 2 || !strings.Contains(errOut, `invalid argument "tar" for "--format" flag: want one of: newc, crc`) {
		t.Errorf("bad format: %d %s", code, errOut)
	}
	_, errOut, code = clonecd(t, "", "unpack", "only-one-arg")
	if code != 2 || !strings.Contains(errOut, "IMAGE and DIR") {
		t.Errorf("unpack usage: %d %s", code, errOut)
	}
	dir := t.TempDir()
	f, _ := os.Create(filepath.Join(dir, "big.img"))
	f.Truncate(5 << 30)
	f.Close()
	_, errOut, code = clonecd(t, dir, "pack", "-o", filepath.Join(t.TempDir(), "x.cpio.gz"), dir)
	if code != 2 || !strings.Contains(errOut, "big.img") || !strings.Contains(errOut, "--exclude /big.img") {
		t.Errorf("5 GiB file: %d %s", code, errOut)
	}
}
