package pxe

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/clonecd/clonecd/internal/testenv"
)

// TestMain fails the package if its tests changed the host's /etc.
func TestMain(m *testing.M) { os.Exit(testenv.GuardEtc(m)) }

// netnsEnv names the network namespace a test runs in, in the copy of the
// test binary that inNetns starts there.
const netnsEnv = "CLONECD_PXE_NETNS"

var netnsSeq atomic.Int32

// inNetns runs the top-level test t again, alone, in a network namespace
// of its own (ip netns exec), and reports its result here. It returns
// true in that copy, where the test does its work: every socket, bridge,
// tap, dnsmasq and QEMU it starts lives in the namespace, which is
// deleted afterwards. It returns false in the parent, which then returns.
func inNetns(t *testing.T, timeout time.Duration) bool {
	t.Helper()
	if ns := os.Getenv(netnsEnv); ns != "" {
		t.Logf("in network namespace %s", ns)
		return true
	}
	testenv.NeedRoot(t)
	testenv.NeedTools(t, "ip")
	ns := fmt.Sprintf("cdpxe%d-%d", os.Getpid(), netnsSeq.Add(1))
	testenv.Run(t, "ip", "netns", "add", ns)
	t.Cleanup(func() { testenv.Output("ip", "netns", "del", ns) })
	cmd := exec.Command("ip", "netns", "exec", ns, os.Args[0], "-test.run", "^"+t.Name()+"$", "-test.v",
		"-test.count=1", "-test.timeout", timeout.String())
	cmd.Env = append(os.Environ(), netnsEnv+"="+ns)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var failed []string
	sc := bufio.NewScanner(out)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		l := sc.Text()
		t.Log(l)
		if strings.HasPrefix(strings.TrimSpace(l), "--- FAIL") {
			failed = append(failed, strings.TrimSpace(l))
		}
	}
	if err := cmd.Wait(); err != nil || len(failed) > 0 {
		t.Fatalf("in network namespace %s: %v %s", ns, err, strings.Join(failed, "; "))
	}
	return false
}
