package swarm

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/clonecd/clonecd/internal/testenv"
)

// A lab is a private network: a "switch" namespace holding a bridge, and
// one namespace per simulated host, each with an eth0 (a veth whose
// other end is on the bridge). Nothing is added to the host's own
// namespace, so the addresses (10.77.0.0/16) cannot clash with anything.
// Processes in a host run the test binary again with nodeEnv set (see
// roles_test.go).
type lab struct {
	t      testing.TB
	prefix string // of the namespace names, unique to this test binary
	sw     string // the switch namespace
	hosts  int

	procsMu   sync.Mutex
	procs     []*proc
	closeOnce sync.Once
}

func newLab(t testing.TB) *lab {
	t.Helper()
	testenv.NeedRoot(t)
	testenv.NeedTools(t, "ip", "tc")
	l := &lab{t: t, prefix: fmt.Sprintf("sw%d-%d-", os.Getpid()%100000, labs.Add(1))}
	l.sw = l.prefix + "sw"
	l.ip("netns", "add", l.sw)
	t.Cleanup(l.close)
	l.ip("-n", l.sw, "link", "add", "br0", "type", "bridge")
	l.ip("-n", l.sw, "link", "set", "br0", "up")
	return l
}

func (l *lab) ip(args ...string) string {
	l.t.Helper()
	return testenv.Run(l.t, "ip", args...)
}

// labs numbers the labs of this test binary.
var labs atomic.Int64

// close kills what still runs and deletes the namespaces (the veths go
// with them). It may be called again.
func (l *lab) close() { l.closeOnce.Do(l.doClose) }

func (l *lab) doClose() {
	l.procsMu.Lock()
	for _, p := range l.procs {
		p.kill()
	}
	l.procsMu.Unlock()
	for i := 1; i <= l.hosts; i++ {
		testenv.Output("ip", "netns", "del", fmt.Sprintf("%sh%d", l.prefix, i))
	}
	testenv.Output("ip", "netns", "del", l.sw)
}

// host is one simulated machine.
type host struct {
	ns   string
	addr string // its IPv4 address
}

// addHost makes a namespace with eth0 at 10.77.X.Y on the bridge.
func (l *lab) addHost() host {
	l.t.Helper()
	l.hosts++
	i := l.hosts
	h := host{ns: fmt.Sprintf("%sh%d", l.prefix, i), addr: fmt.Sprintf("10.77.%d.%d", i/250, i%250+1)}
	l.ip("netns", "add", h.ns)
	l.ip("link", "add", "eth0", "netns", h.ns, "type", "veth", "peer", "name", fmt.Sprintf("p%d", i), "netns", l.sw)
	l.ip("-n", l.sw, "link", "set", fmt.Sprintf("p%d", i), "master", "br0", "up")
	l.ip("-n", h.ns, "addr", "add", h.addr+"/16", "dev", "eth0")
	l.ip("-n", h.ns, "link", "set", "eth0", "up")
	l.ip("-n", h.ns, "link", "set", "lo", "up")
	return h
}

// shape limits what h sends (its uplink) to rate, e.g. "100mbit".
func (l *lab) shape(h host, rate string) {
	l.t.Helper()
	testenv.Run(l.t, "ip", "netns", "exec", h.ns, "tc", "qdisc", "add", "dev", "eth0", "root", "tbf",
		"rate", rate, "burst", "256kb", "latency", "100ms")
}

// txBytes is the kernel's count of bytes h sent on eth0.
func (l *lab) txBytes(h host) int64 {
	l.t.Helper()
	var links []struct {
		Stats64 struct {
			TX struct {
				Bytes int64 `json:"bytes"`
			} `json:"tx"`
		} `json:"stats64"`
	}
	out := l.ip("-n", h.ns, "-s", "-j", "link", "show", "dev", "eth0")
	if err := json.Unmarshal([]byte(out), &links); err != nil || len(links) != 1 {
		l.t.Fatalf("ip -s -j link show in %s: %v\n%s", h.ns, err, out)
	}
	return links[0].Stats64.TX.Bytes
}

// proc is the test binary running a role in a host.
type proc struct {
	name  string
	cmd   *exec.Cmd
	lines chan string // its stdout, line by line
	errb  bytes.Buffer
	done  chan struct{}
	err   error

	lastMu   sync.Mutex
	lastLine string
}

// start runs the test binary in h with role and env.
func (l *lab) start(h host, name, role string, env ...string) *proc {
	l.t.Helper()
	self, err := os.Executable()
	if err != nil {
		l.t.Fatal(err)
	}
	return l.run(h, name, append([]string{nodeEnv + "=" + role, "SWARM_ADDR=" + h.addr}, env...), self)
}

// run runs argv in h with env added to the test's.
func (l *lab) run(h host, name string, env []string, argv ...string) *proc {
	l.t.Helper()
	p := &proc{name: name, lines: make(chan string, 64), done: make(chan struct{})}
	p.cmd = exec.Command("ip", append([]string{"netns", "exec", h.ns}, argv...)...)
	p.cmd.Env = append(os.Environ(), env...)
	p.cmd.Stderr = &p.errb
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	out, err := p.cmd.StdoutPipe()
	if err != nil {
		l.t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		l.t.Fatal(err)
	}
	go func() {
		s := bufio.NewScanner(out)
		for s.Scan() {
			p.lines <- s.Text()
		}
		close(p.lines)
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	l.procsMu.Lock()
	l.procs = append(l.procs, p)
	l.procsMu.Unlock()
	return p
}

// kill ends the process group (ip netns exec and the test binary).
func (p *proc) kill() {
	if p.cmd.Process != nil {
		syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	}
	<-p.done
}

// expect waits for a line starting with prefix and returns its rest.
func (p *proc) expect(t testing.TB, prefix string, timeout time.Duration) string {
	t.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case line, ok := <-p.lines:
			if !ok {
				<-p.done
				t.Fatalf("%s ended (%v) before %q:\n%s", p.name, p.err, prefix, tail(p.errb.String()))
			}
			if rest, found := strings.CutPrefix(line, prefix); found {
				return strings.TrimSpace(rest)
			}
		case <-deadline:
			t.Fatalf("%s: no %q within %v:\n%s", p.name, prefix, timeout, tail(p.errb.String()))
		}
	}
}

func tail(s string) string {
	if len(s) > 3000 {
		return "..." + s[len(s)-3000:]
	}
	return s
}

// drain reads the rest of p's output in the background, keeping its
// last line (last).
func (p *proc) drain() {
	go func() {
		for line := range p.lines {
			p.lastMu.Lock()
			p.lastLine = line
			p.lastMu.Unlock()
		}
	}()
}

// last is the last line drain saw.
func (p *proc) last() string {
	p.lastMu.Lock()
	defer p.lastMu.Unlock()
	return p.lastLine
}
