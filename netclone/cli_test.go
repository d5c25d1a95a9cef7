package netclone

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/clonecd/clonecd/fleet"
	"github.com/clonecd/clonecd/internal/testenv"
	"github.com/clonecd/clonecd/trust"
)

func freePort(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func startServe(t *testing.T, bin, dir, addr string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(bin, "serve", "--dir", dir, "--listen", addr, "--max-streams", "2")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	waitFor(t, 20*time.Second, func() bool {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	return cmd
}

// TestCLIServeKilledDuringFetch: the real `clonecd serve` process is
// killed (SIGKILL) while `clonecd fetch` streams the image as a node and
// started again a second later; the fetch resumes and finishes, its state
// and log reach the server, and `clonecd status` shows the node done
// (table and --json; an unknown node shows as unknown).
func TestCLIServeKilledDuringFetch(t *testing.T) {
	bin := testenv.Clonecd(t)
	dir, _, v20 := store(t, 24<<20)
	addr := freePort(t)
	url := "https://" + addr
	serve := startServe(t, bin, dir, addr)

	out := filepath.Join(t.TempDir(), "node.cpio.gz")
	logFile := filepath.Join(t.TempDir(), "clone.log")
	fetch := exec.Command(bin, "fetch", "--server", url, "--dir", dir, "--node", "s001", "--report", "--log", logFile,
		"-o", out, "--limit-rate", "6000000", "--retries", "30", "-q")
	var fout bytes.Buffer
	fetch.Stdout, fetch.Stderr = &fout, &fout
	if err := fetch.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fetch.Process.Kill() })
	// Kill the server once the node is a quarter through.
	waitFor(t, 60*time.Second, func() bool {
		st, err := readState(dir, "s001")
		return err == nil && st.State == fleet.Cloning && st.Percent() >= 25
	})
	serve.Process.Signal(syscall.SIGKILL)
	serve.Wait()
	st, _ := readState(dir, "s001")
	t.Logf("server killed with s001 at %d%%", st.Percent())
	time.Sleep(time.Second) // the server stays down a while
	startServe(t, bin, dir, addr)
	if err := fetch.Wait(); err != nil {
		t.Fatalf("fetch: %v\n%s", err, fout.String())
	}
	if got, _ := os.ReadFile(out); !bytes.Equal(got, v20) {
		t.Fatalf("fetched image differs from version 1.20 (%d bytes)", len(got))
	}
	st, err := readState(dir, "s001")
	if err != nil || st.Summary() != "done" || st.Version != "1.20" {
		t.Fatalf("state %+v %v", st, err)
	}
	lg, _ := os.ReadFile(st.Log)
	if !bytes.Contains(lg, []byte("resuming")) && !bytes.Contains(lg, []byte("retry")) {
		t.Fatalf("uploaded log shows no resume:\n%s\nfetch output:\n%s", lg, fout.String())
	}

	tests := []struct {
		name string
		args []string
		want []string
	}{
		{"dir", []string{"status", "--dir", dir}, []string{"NODE", "s001", "1.20", "done", st.Log}},
		{"server nodes", []string{"status", "--server", url, "--dir", dir, "s001", "s[998-999]"}, []string{"s001", "done", "s998", "unknown", "s999"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := testenv.Run(t, bin, tc.args...)
			for _, w := range tc.want {
				if !strings.Contains(got, w) {
					t.Fatalf("%v: no %q in\n%s", tc.args, w, got)
				}
			}
		})
	}
	t.Run("json", func(t *testing.T) {
		got := testenv.Run(t, bin, "status", "--json", "--server", url, "--dir", dir, "s001")
		var rows []struct {
			Node, Version, State, Summary, Log string
		}
		if err := json.Unmarshal([]byte(got), &rows); err != nil || len(rows) != 1 {
			t.Fatalf("%v: %s", err, got)
		}
		if r := rows[0]; r.Node != "s001" || r.Version != "1.20" || r.Summary != "done" || r.Log != st.Log {
			t.Fatalf("%+v", r)
		}
	})
}

// TestCLIReclone: `clonecd reclone` with an --rsh standing in for ssh
// that "reboots" the node into a fetch with the credential reclone sent
// it on standard input: the delay default is computed and printed, the
// table and exit status are right, and a node whose rsh fails (exit 255,
// like ssh) is unreachable and makes the exit status 1.
func TestCLIReclone(t *testing.T) {
	bin := testenv.Clonecd(t)
	dir, _, _ := store(t, 1<<20)
	addr := freePort(t)
	startServe(t, bin, dir, addr)
	pin, err := trust.ReadServerPin(dir)
	if err != nil {
		t.Fatal(err)
	}
	work := t.TempDir()
	rsh := filepath.Join(work, "rsh")
	os.WriteFile(rsh, []byte(fmt.Sprintf(`#!/bin/sh
[ "$1" = -- ] || { echo "no -- before the node: $*" >&2; exit 1; }
node=$2; shift 2
[ "$node" = s003 ] && { echo "ssh: connect to host $node port 22: No route to host" >&2; exit 255; }
[ "$*" = "clonecd ramclone --reboot --credential -" ] || { echo "bad command $*" >&2; exit 1; }
read -r cred
case "$cred" in "$node":*) ;; *) echo "not $node's credential: $cred" >&2; exit 1 ;; esac
echo "%s"
CLONECD_TOKEN="$cred" CLONECD_TLS_PIN='%s' setsid %s fetch --server https://%s --dir %s --node "$node" --report -q -o %s/$node.img </dev/null >/dev/null 2>&1 &
exit 0
`, RamcloneMarker, pin, bin, addr, t.TempDir(), work)), 0o755)

	cmd := exec.Command(bin, "reclone-all", "--server", "https://"+addr, "--dir", dir, "--rsh", rsh, "--parallel", "2", "1", "4")
	outb, err := cmd.CombinedOutput()
	out := string(outb)
	t.Log(out)
	var ee *exec.ExitError
	if !errorsAs(err, &ee) || ee.ExitCode() != 1 {
		t.Fatalf("exit %v, want status 1 (one node unreachable)", err)
	}
	for _, w := range []string{
		"--delay 1s between starts (default: a 1.0 MiB image on a 1 GbE link)",
		"recloning 4 nodes, 1s apart, at most 2 in flight",
		"s003           unreachable",
		"3 of 4 nodes ok, 1 failed",
	} {
		if !strings.Contains(out, w) {
			t.Errorf("no %q in the output", w)
		}
	}
	for _, n := range []string{"s001", "s002", "s004"} {
		if !strings.Contains(out, n+"           done") {
			t.Errorf("%s not done", n)
		}
	}
	// --skip-current: nothing left to do, exit 0 for the reachable ones.
	cmd = exec.Command(bin, "reclone", "--server", "https://"+addr, "--dir", dir, "--rsh", rsh, "--skip-current", "--delay", "0s", "s[001-002]", "s004")
	if outb, err := cmd.CombinedOutput(); err != nil || strings.Count(string(outb), "skipped, already on 1.20") != 3 {
		t.Fatalf("--skip-current: %v\n%s", err, outb)
	}
	// --version: a canary to a version that is not current.
	cmd = exec.Command(bin, "reclone", "--server", "https://"+addr, "--dir", dir, "--rsh", rsh, "--version", "1.19", "--delay", "0s", "s001")
	if outb, err := cmd.CombinedOutput(); err != nil || !strings.Contains(string(outb), "done") || !strings.Contains(string(outb), "1.19") {
		t.Fatalf("--version 1.19: %v\n%s", err, outb)
	}
	if st, _ := readState(dir, "s001"); st.Version != "1.19" {
		t.Fatalf("canary s001 on %q", st.Version)
	}
}

func errorsAs(err error, target **exec.ExitError) bool {
	e, ok := err.(*exec.ExitError)
	if ok {
		*target = e
	}
	return ok
}

// TestCLIRamclone: `clonecd ramclone` on a node's boot directory sets the
// one-shot entry with the real grub-editenv; --dry-run only prints.
func TestCLIRamclone(t *testing.T) {
	testenv.NeedTools(t, "grub-editenv")
	bin := testenv.Clonecd(t)
	boot := t.TempDir()
	os.MkdirAll(filepath.Join(boot, "grub"), 0o755)
	os.WriteFile(filepath.Join(boot, "grub", "grub.cfg"), []byte(grubCfg), 0o644)
	out := testenv.Run(t, bin, "ramclone", "--boot-dir", boot, "--dry-run", "--reboot")
	if !strings.Contains(out, "would run: ") || !strings.Contains(out, "next_entry=ramclone") || !strings.Contains(out, "would reboot") {
		t.Fatalf("dry run:\n%s", out)
	}
	if _, err := os.Stat(filepath.Join(boot, "grub", "grubenv")); err == nil {
		t.Fatal("--dry-run wrote grubenv")
	}
	out = testenv.Run(t, bin, "ramclone", "--boot-dir", boot)
	env := testenv.Run(t, "grub-editenv", filepath.Join(boot, "grub", "grubenv"), "list")
	if !strings.Contains(env, "next_entry=ramclone") || !strings.Contains(out, "next boot is \"ramclone\"") {
		t.Fatalf("ramclone: %s\ngrubenv: %s", out, env)
	}
	if o, err := testenv.Output(bin, "ramclone", "--boot-dir", t.TempDir()); err == nil || !strings.Contains(o, "no boot loader configuration") {
		t.Fatalf("no boot loader: %v %s", err, o)
	}

	// --credential -: what reclone sends, kept 0600 for the cloner.
	c := exec.Command(bin, "ramclone", "--boot-dir", boot, "--credential", "-")
	c.Stdin = strings.NewReader(cred("s001").String() + "\n")
	if o, err := c.CombinedOutput(); err != nil {
		t.Fatalf("ramclone --credential -: %v\n%s", err, o)
	}
	p := filepath.Join(boot, CredentialInitrd)
	fi, err := os.Stat(p)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("%s: %v, %v; want mode 0600", p, fi, err)
	}
	x := t.TempDir()
	img, _ := os.ReadFile(p)
	unpack := exec.Command("cpio", "-id", "--quiet")
	unpack.Dir, unpack.Stdin = x, bytes.NewReader(img)
	if o, err := unpack.CombinedOutput(); err != nil {
		t.Fatalf("cpio -id %s: %v\n%s", p, err, o)
	}
	if got, err := trust.LoadCredential(filepath.Join(x, trust.CredentialFile)); err != nil || got != cred("s001") {
		t.Errorf("%s holds %v, %v; want s001's credential", trust.CredentialFile, got, err)
	}
	c = exec.Command(bin, "ramclone", "--boot-dir", boot, "--credential", "-")
	c.Stdin = strings.NewReader("-oProxyCommand=x:y\n")
	if o, err := c.CombinedOutput(); err == nil {
		t.Errorf("ramclone --credential with a bad name: %s", o)
	}
}
