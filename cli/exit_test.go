package cli

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/clonecd/clonecd/internal/testenv"
)

// TestUsageErrors: a bad command line exits 2 before the command starts,
// prints nothing on standard output, and the message names the command
// once and the flag or argument at fault.
func TestUsageErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for _, tt := range []struct {
		args []string
		err  string // regexp on stderr
	}{
		{nil, `(?s)^Usage:\n  clonecd \[flags\]\n  clonecd \[command\].*Make the node image:`},
		{[]string{"frobnicate"}, `^clonecd: unknown command "frobnicate"\nRun 'clonecd --help' for usage\.\n$`},
		{[]string{"prnue"}, `unknown command "prnue" \(did you mean prune\?\)`},
		{[]string{"--json", "images"}, `^clonecd: unknown flag: --json\n`},
		{[]string{"layout"}, `^clonecd layout: needs a sub-command: dump, capture, check, apply\n`},
		{[]string{"layout", "frob", "x"}, `^clonecd layout: unknown command "frob"\n`},
		{[]string{"version", "frob"}, `^clonecd version: unknown command "frob"\n`},
		{[]string{"pack", dir, "-o"}, `^clonecd pack: flag needs an argument: 'o' in -o\n`},
		{[]string{"pack", dir, "--output"}, `^clonecd pack: flag needs an argument: --output\n`},
		{[]string{"pack", "-j", "0", dir}, `invalid argument "0" for "-j, --jobs" flag: want 1-256`},
		{[]string{"pack", "-j", "-1", dir}, `invalid argument "-1" for "-j, --jobs" flag: want 1-256`},
		{[]string{"pack", "--jobs=100000", dir}, `want 1-256`},
		{[]string{"pack", "--level", "0", dir}, `"--level" flag: want 1-19`},
		{[]string{"pack", "--exclude", "[", dir}, `"--exclude" flag: pattern "\[": unterminated \[`},
		{[]string{"pack", "--bogus", dir}, `^clonecd pack: unknown flag: --bogus\n`},
		{[]string{"pack"}, `^clonecd pack: want one ROOT\n`},
		{[]string{"pack", "a", "b"}, `^clonecd pack: want one ROOT, got \["a" "b"\]\n`},
		{[]string{"unpack", "x"}, `want IMAGE and DIR, got \["x"\]`},
		{[]string{"verify", "--ignore", "[", "a", "b"}, `"--ignore" flag: pattern "\[": unterminated \[`},
		{[]string{"verify", "--json=maybe", "a", "b"}, `invalid argument "maybe" for "--json" flag`},
		{[]string{"layout", "apply", "--dry-run=maybe", "a", "b"}, `invalid argument "maybe" for "-n, --dry-run" flag`},
		{[]string{"initramfs", "--level", "42", "-o", filepath.Join(dir, "i.img")}, `"--level" flag: want 1-9`},
		{[]string{"initramfs", "--level", "0", "-o", filepath.Join(dir, "i.img")}, `"--level" flag: want 1-9`},
		{[]string{"initramfs"}, `required flag\(s\) "output" not set`},
		{[]string{"initramfs", "-o", filepath.Join(dir, "i.img"), "--file", "nonsense"}, `--file "nonsense": want DEST=SRC`},
		{[]string{"build", "--timeout", "-5"}, `"--timeout" flag: want 1-3599`},
		{[]string{"build", "--timeout", "0"}, `"--timeout" flag: want 1-3599`},
		{[]string{"build", "--version", "1.x"}, `"--version" flag: version "1.x": minor: "x" is not a decimal number \(want MAJOR\.MINOR`},
		{[]string{"build", "--server", "garbage"}, `"--server" flag: want an http:// or https:// URL`},
		{[]string{"build", "stray.iso"}, `takes no arguments, got \["stray.iso"\]`},
		{[]string{"kickstart", "--ram", "0", "ks.cfg"}, `"--ram" flag: want 1-16777216`},
		{[]string{"kickstart", "--label", "bogus", "ks.cfg"}, `"--label" flag: want one of: dos, gpt`},
		{[]string{"clone", "--break", "bogus"}, `"--break" flag: want one of: setup, disk,`},
		{[]string{"clone", "--net", "ftp://x"}, `"--net" flag: want an http:// or https:// URL`},
		{[]string{"clone", "--hostname", "-oProxyCommand"}, `"--hostname" flag: node name "-oProxyCommand"`},
		{[]string{"clone", "--media", filepath.Join(dir, "nomedia"), "--target", "x.img"}, `--media: stat .*nomedia: no such file or directory`},
		{[]string{"clone", "--media", dir}, `--target is required outside the clone CD`},
		{[]string{"version", "bump", "--file"}, `^clonecd version bump: flag needs an argument: --file\n`},
		{[]string{"version", "set", "1.2.3", "--file", filepath.Join(dir, "V")}, `version "1.2.3": minor: "2.3" is not a decimal number \(want MAJOR\.MINOR, e\.g\. 1\.19\)`},
		{[]string{"version", "set"}, `want one version MAJOR.MINOR`},
		{[]string{"publish", "--version", "abc", "x.cpio.gz"}, `"--version" flag: version "abc": want MAJOR.MINOR`},
		{[]string{"publish", "--version", "1.2.3", "x.cpio.gz"}, `"--version" flag: .*want MAJOR.MINOR`},
		{[]string{"promote", "abc", "--dir", dir}, `^clonecd promote: version "abc": want MAJOR.MINOR`},
		{[]string{"prune", "--dir", dir}, `required flag\(s\) "keep" not set`},
		{[]string{"prune", "--dir", dir, "--keep", "0"}, `"--keep" flag: want 1-1048576`},
		{[]string{"prune", "--dir", dir, "--keep", "99999999999999999999"}, `"--keep" flag: want 1-1048576`},
		{[]string{"serve", "--listen"}, `^clonecd serve: flag needs an argument: --listen\n`},
		{[]string{"serve", "--listen", ":8080"}, `"--listen" flag: no host: give the address the nodes reach, like 10\.0\.0\.1:8080; 0\.0\.0\.0:8080 listens on every interface`},
		{[]string{"serve", "--listen", "garbage"}, `"--listen" flag: want HOST:PORT`},
		{[]string{"serve", "--listen", "127.0.0.1:99999"}, `"--listen" flag: port "99999"`},
		{[]string{"serve", "--max-streams", "0"}, `"--max-streams" flag: want 1-4096`},
		{[]string{"serve", "--max-streams", "-1"}, `"--max-streams" flag: want 1-4096`},
		{[]string{"status", "--server"}, `^clonecd status: flag needs an argument: --server\n`},
		{[]string{"status", "--server", "garbage"}, `"--server" flag: want an http:// or https:// URL`},
		{[]string{"status", "--server", "http://x:8080", "s[010-001]"}, `nodeset "s\[010-001\]": .*runs backwards`},
		{[]string{"fetch", "--limit-rate", "-5"}, `"--limit-rate" flag: want bytes per second, 0 or more`},
		{[]string{"fetch", "--retries", "0"}, `"--retries" flag: want 1-1000`},
		{[]string{"fetch", "--node", "a b"}, `"--node" flag: node name "a b": ' ' is not a letter`},
		{[]string{"fetch", "--server", "http://x:8080", "--report"}, `--report needs --node`},
		{[]string{"reclone", "--server", "http://x:8080"}, `^clonecd reclone: no nodes given\n`},
		{[]string{"reclone", "--server", "http://x:8080", "--", "-oProxyCommand"}, `node name "-oProxyCommand": starts or ends with '-'`},
		{[]string{"reclone", "--server", "http://x:8080", "s\x1b[31m"}, `node name "s\\x1b\[31m"|nodeset`},
		{[]string{"reclone-all", "--parallel", "0", "1", "2"}, `"--parallel" flag: want 1-4096`},
		{[]string{"reclone-all", "--parallel", "-1", "1", "2"}, `"--parallel" flag: want 1-4096`},
		{[]string{"reclone-all", "--timeout", "0s", "1", "2"}, `"--timeout" flag: want a duration of at least 1s`},
		{[]string{"reclone-all", "--delay", "bogus", "1", "2"}, `"--delay" flag: want a duration like 5s, or auto`},
		{[]string{"reclone-all", "1"}, `want FIRST LAST, got \["1"\]`},
		{[]string{"reclone-all", "--server", "http://x:8080", "a", "b"}, `FIRST and LAST must be numbers`},
		{[]string{"reclone-all", "--server", "http://x:8080", "--pattern", "-%d", "1", "2"}, `pattern "-%d": node name "-1": starts or ends with '-'`},
		{[]string{"completion", "tcsh"}, `invalid argument "tcsh" for "clonecd completion"`},
		{[]string{"completion"}, `want one shell: bash, zsh or fish`},
		{[]string{"man"}, `required flag\(s\) "output" not set`},
		{[]string{"help", "frob"}, `^clonecd help: unknown help topic "frob"\n`},
		{[]string{"help", "layout", "frob"}, `unknown help topic "layout frob"`},
	} {
		t.Run(strings.Join(tt.args, "_"), func(t *testing.T) {
			t.Parallel()
			code, out, errs := runMain(t, tt.args...)
			if code != 2 || out != "" || !regexp.MustCompile(tt.err).MatchString(errs) {
				t.Errorf("clonecd %q: exit %d, stdout %q, stderr %q; want exit 2, no stdout, stderr matching %q", tt.args, code, out, errs, tt.err)
			}
		})
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Errorf("a refused command line wrote into %s: %v", dir, ents)
	}
}

// TestFlagSyntax: GNU-style flags as admins type them: short and long
// pairs, --flag=value, bundled short flags, flags after arguments, and --
// ending the flags.
func TestFlagSyntax(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	f := filepath.Join(dir, "CLONE_CD_VERSION")
	for _, tt := range []struct {
		args []string
		out  string // regexp on stdout
	}{
		{[]string{"version", "set", "1.9", "--file", f}, `1\.9`},
		{[]string{"version", "--file=" + f}, `^1\.9\n$`},
		{[]string{"version", "-f", f, "show", "--tag"}, `^CLONE_1_9\n$`},
		{[]string{"version", "show", "-f" + f}, `^1\.9\n$`},
		{[]string{"version", "set", "-f", f, "--", "2.0"}, `-> 2\.0`},
		{[]string{"--version"}, `^clonecd dev\n$`},
		{[]string{"-v"}, `^clonecd dev\n$`},
		{[]string{"help", "pack"}, `Usage:\n  clonecd pack \[flags\] ROOT`},
		{[]string{"help", "layout", "apply"}, `Usage:\n  clonecd layout apply \[flags\] LAYOUT`},
		{[]string{"help"}, `(?s)^clonecd packs a golden node.*Make the node image:`},
		{[]string{"pack", "-qj4", "-o", filepath.Join(dir, "x.cpio.gz"), dir}, `^$`},
		{[]string{"images", "--dir", dir, "--json"}, `^\[\]\n$`}, // a directory without versions
	} {
		code, out, errs := runMain(t, tt.args...)
		if code != 0 || !regexp.MustCompile(tt.out).MatchString(out) {
			t.Errorf("clonecd %q: exit %d, stdout %q, stderr %q; want exit 0 and %q", tt.args, code, out, errs, tt.out)
		}
	}
}

// TestMissingValueWritesNothing: `clonecd pack ROOT -o` once wrote files
// named "--" and "--.sha256"; now it is refused and writes nothing (run
// as the binary, in its own working directory).
func TestMissingValueWritesNothing(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "root", "etc"), 0o755)
	cmd := exec.Command(testenv.Clonecd(t), "pack", "root", "-o")
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 2 || !strings.Contains(string(out), "flag needs an argument: 'o' in -o") {
		t.Errorf("pack root -o: %v %s", err, out)
	}
	for _, name := range []string{"--", "--.sha256", "node.cpio.gz"} {
		if _, err := os.Stat(filepath.Join(dir, name)); err == nil {
			t.Errorf("pack root -o wrote %s", name)
		}
	}
}
