package cli

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestErrorWording runs each command's most common failure: the message
// is one line "clonecd COMMAND: ...", names the thing at fault (file,
// flag, version, address), says the command once, and the exit status is
// 2. Where the doubled word comes from the package called (its error
// starts with its own operation, "publish: ..."), the case names that
// package: the test fails once the package is fixed, so the mark goes.
func TestErrorWording(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	nope := filepath.Join(dir, "nope")
	afile := filepath.Join(dir, "afile")
	os.WriteFile(afile, []byte("x"), 0o644)
	garbage := filepath.Join(dir, "garbage.cpio.gz")
	os.WriteFile(garbage, []byte("\x1f\x8b\x08\x00garbage, not gzip data at all"), 0o644)
	media := filepath.Join(dir, "media")
	os.Mkdir(media, 0o755)
	layout := filepath.Join(dir, "bad.sfdisk")
	os.WriteFile(layout, []byte("label: dos\nsize=1G, colour=red\n"), 0o644)
	good := filepath.Join(dir, "good.sfdisk")
	os.WriteFile(good, []byte(cliLayout), 0o644)
	emptyStore := filepath.Join(dir, "store")
	os.Mkdir(emptyStore, 0o755)
	for _, tt := range []struct {
		args   []string
		names  string // regexp: the thing at fault
		callee string // the package whose error repeats the command's name
	}{
		{[]string{"pack", "-o", filepath.Join(dir, "p.cpio.gz"), nope}, `packing ` + regexp.QuoteMeta(nope) + ` into .*: no such file`, ""},
		{[]string{"pack", "-o", dir, media}, `output ` + regexp.QuoteMeta(dir) + ` is a directory`, ""},
		{[]string{"pack", "-o", filepath.Join(nope, "p.cpio.gz"), media}, `directory ` + regexp.QuoteMeta(nope) + ` does not exist`, ""},
		{[]string{"unpack", nope, filepath.Join(dir, "u")}, `open ` + regexp.QuoteMeta(nope) + `: no such file`, ""},
		{[]string{"unpack", garbage, filepath.Join(dir, "u2")}, regexp.QuoteMeta(garbage), ""},
		{[]string{"verify", garbage, media}, `gzip|cpio`, ""},
		{[]string{"layout", "dump", nope}, `open ` + regexp.QuoteMeta(nope), ""},
		{[]string{"layout", "capture", nope}, `open ` + regexp.QuoteMeta(nope), ""},
		{[]string{"layout", "check", nope, afile}, `open ` + regexp.QuoteMeta(nope), ""},
		{[]string{"layout", "apply", layout, afile}, regexp.QuoteMeta(layout) + `: line 2: unknown field "colour=red"`, ""},
		{[]string{"kickstart", nope}, `open ` + regexp.QuoteMeta(nope), ""},
		{[]string{"version", "--file", nope}, regexp.QuoteMeta(nope) + ` does not exist`, ""},
		{[]string{"initramfs", "--from-dir", nope, "-o", filepath.Join(dir, "i.img")}, `directory ` + regexp.QuoteMeta(nope) + `: .*no such file`, ""},
		{[]string{"build", "--image", nope, "--layout", good, "--version", "1.0", "--initrd", afile, "-q", "-o", filepath.Join(dir, "c.iso")}, regexp.QuoteMeta(nope), ""},
		{[]string{"clone", "--media", media, "--target", filepath.Join(dir, "n.img"), "-q"}, `CLONE_CD_VERSION`, ""},
		{[]string{"publish", "--unsigned", "--dir", emptyStore, nope}, `stat ` + regexp.QuoteMeta(nope) + `: no such file`, ""},
		{[]string{"images", "--dir", afile}, regexp.QuoteMeta(afile) + `: not a directory`, ""},
		{[]string{"promote", "--dir", emptyStore, "9.9"}, `image store .* has no version 9\.9`, ""},
		{[]string{"rollback", "--dir", emptyStore}, regexp.QuoteMeta(emptyStore) + ` has no current version`, ""},
		{[]string{"prune", "--dir", afile, "--keep", "1"}, regexp.QuoteMeta(afile) + `: not a directory`, ""},
		{[]string{"serve", "--dir", nope, "--listen", "127.0.0.1:0"}, `no image store in ` + regexp.QuoteMeta(nope) + `: it does not exist`, ""},
		{[]string{"status", "--dir", nope}, regexp.QuoteMeta(nope), ""},
		{[]string{"fetch", "--server", "http://127.0.0.1:1", "--retries", "1", "-q", "-o", filepath.Join(dir, "f")}, `127\.0\.0\.1:1/.*connection refused`, ""},
		{[]string{"reclone", "--server", "http://127.0.0.1:1", "s001"}, `127\.0\.0\.1:1.*connection refused`, ""},
		{[]string{"reclone-all", "--server", "http://127.0.0.1:1", "1", "2"}, `127\.0\.0\.1:1.*connection refused`, ""},
		{[]string{"ramclone", "--dry-run", "--boot-dir", nope}, `no boot loader configuration under ` + regexp.QuoteMeta(nope), ""},
		{[]string{"man", "-o", filepath.Join(afile, "man")}, regexp.QuoteMeta(afile), ""},
	} {
		t.Run(strings.Join(tt.args[:1], "_"), func(t *testing.T) {
			t.Parallel()
			code, out, errs := runMain(t, tt.args...)
			c, _, err := testRoot().Find(tt.args)
			if err != nil {
				t.Fatal(err)
			}
			prefix := c.CommandPath() + ": "
			msg, rest, _ := strings.Cut(errs, "\n")
			if code != 2 || out != "" || !strings.HasPrefix(msg, prefix) || strings.TrimSpace(rest) != "" {
				t.Fatalf("clonecd %q: exit %d, stdout %q, stderr %q; want exit 2 and one line %q...", tt.args, code, out, errs, prefix)
			}
			if !regexp.MustCompile(tt.names).MatchString(msg) {
				t.Errorf("clonecd %q: %q does not name the thing at fault (%q)", tt.args, msg, tt.names)
			}
			doubled := regexp.MustCompile(`(^|: )` + regexp.QuoteMeta(c.Name()) + `[: ]`).MatchString(strings.TrimPrefix(msg, prefix))
			switch {
			case doubled && tt.callee == "":
				t.Errorf("clonecd %q: %q says %q twice", tt.args, msg, c.Name())
			case !doubled && tt.callee != "":
				t.Errorf("clonecd %q: %q: package %s no longer repeats the command: remove the mark", tt.args, msg, tt.callee)
			case doubled:
				t.Logf("known, to fix in package %s: %s", tt.callee, msg)
			}
		})
	}
}
