package e2e

// The swarm's QEMU acceptance (issue 13), folded into the net-bios
// power-cut chain: its image server is `clonecd serve --swarm` (the real
// binary) and the chain reclones node03 to version newer, published
// with `clonecd publish` (node.torrent, its btih in the signed MANIFEST).
// Two network namespaces joined by a veth make the cluster network:
//
//	master  10.81.0.1: clonecd serve --swarm (tracker, seeder on :6881,
//	        the image route as webseed), and QEMU, whose user network
//	        connects from here: the guest reaches 10.81.0.1 and 10.81.0.2
//	seeder  10.81.0.2: clonecd fetch --seed 30m, a node that already has
//	        the version and seeds it while the server says nodes need it
//
// The seeder starts after the chain's first attempt (the node then shows
// as cloning newer in the fleet's state, so the tracker counts it as
// needing the version before it joins the swarm). Each later attempt's
// cloner takes the image from the swarm (the default when the server
// offers one); the node boots newer; the seeder sent it image bytes and
// stopped seeding once the node was done. Nothing is added to the host's
// own namespace.

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"syscall"
	"testing"
	"time"

	"github.com/clonecd/clonecd/internal/testenv"
	"github.com/clonecd/clonecd/medium"
)

const (
	swarmMasterIP = "10.81.0.1"
	swarmSeederIP = "10.81.0.2"
)

// swarmNet makes the two namespaces and their veth until the test ends.
func swarmNet(t *testing.T) (master, seeder string) {
	t.Helper()
	testenv.NeedTools(t, "ip")
	base := fmt.Sprintf("cde2e%d", os.Getpid())
	master, seeder = base+"m", base+"s"
	for _, ns := range []string{master, seeder} {
		testenv.Run(t, "ip", "netns", "add", ns)
		t.Cleanup(func() { testenv.Output("ip", "netns", "del", ns) })
		testenv.Run(t, "ip", "-n", ns, "link", "set", "lo", "up")
	}
	testenv.Run(t, "ip", "-n", master, "link", "add", "m0", "type", "veth", "peer", "name", "s0", "netns", seeder)
	for _, l := range []struct{ ns, dev, ip string }{{master, "m0", swarmMasterIP}, {seeder, "s0", swarmSeederIP}} {
		testenv.Run(t, "ip", "-n", l.ns, "addr", "add", l.ip+"/24", "dev", l.dev)
		testenv.Run(t, "ip", "-n", l.ns, "link", "set", l.dev, "up")
	}
	return master, seeder
}

// netnsCmd is name with args in network namespace ns (ip execs it: the
// process is name's), killed if the test binary dies.
func netnsCmd(ns, name string, args ...string) *exec.Cmd {
	cmd := exec.Command("ip", append([]string{"netns", "exec", ns, name}, args...)...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	return cmd
}

// startSwarmChainServer is startChainServer's swarm twin: a store with
// version and, published by clonecd publish and current, newer (the same
// image), served by clonecd serve --swarm in the master's namespace.
func startSwarmChainServer(t *testing.T, w *work, name, image, layout string) *chainServer {
	master, seeder := swarmNet(t)
	vs := netStore(t, w, storeSpec{name: name, image: image, layout: layout, versions: []string{version}})
	storeSecret(t, vs) // before serve: the test's credentials are serve's
	run(t, w.bin, "publish", "-q", "--dir", vs.Dir, "--key", w.key, "--version", newer, image)
	if _, err := os.Stat(filepath.Join(vs.Dir, "versions", newer, medium.Torrent)); err != nil {
		t.Fatalf("publish made no %s: %v", medium.Torrent, err)
	}
	addr := swarmMasterIP + ":8443"
	var out testenv.SyncBuffer
	cmd := netnsCmd(master, w.bin, "serve", "--dir", vs.Dir, "--listen", addr, "--swarm", "-q")
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		t.Logf("clonecd serve --swarm:\n%s", out.String())
	})
	pinRE := regexp.MustCompile(`TLS pin (sha256//\S+)`)
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(100 * time.Millisecond) {
		if m := pinRE.FindStringSubmatch(out.String()); m != nil {
			return &chainServer{vs: vs, url: "https://" + addr, pin: m[1], version: newer, netns: master, seederNS: seeder, serveLog: &out}
		}
		if time.Now().After(deadline) || cmd.ProcessState != nil {
			t.Fatalf("clonecd serve --swarm printed no TLS pin:\n%s", out.String())
		}
	}
}

// seederProc is the namespace seeder: clonecd fetch with --seed.
type seederProc struct {
	cmd    *exec.Cmd
	stdout testenv.SyncBuffer
	stderr testenv.SyncBuffer
	done   chan error
}

// startSeeder runs the seeder in its namespace: it fetches the current
// version (from the master's seeder and webseed), then seeds it for up
// to 30 minutes while the server says nodes still need it.
func (c *chainServer) startSeeder(t *testing.T, w *work) *seederProc {
	t.Helper()
	dir := t.TempDir()
	cred := filepath.Join(dir, "credential")
	if err := os.WriteFile(cred, []byte(nodeCredential(t, c.vs, "seeder").String()+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s := &seederProc{done: make(chan error, 1)}
	s.cmd = netnsCmd(c.seederNS, w.bin, "fetch", "--server", c.url, "--tls-pin", c.pin, "--credential", cred,
		"--swarm-listen", swarmSeederIP+":6881", "--swarm-dir", dir, "--seed", "30m", "--json", "-q", "-o", filepath.Join(dir, medium.ImageGzip))
	s.cmd.Stdout, s.cmd.Stderr = &s.stdout, &s.stderr
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { s.done <- s.cmd.Wait() }()
	t.Cleanup(func() { s.cmd.Process.Kill() })
	return s
}

// finish waits for the seeder to stop seeding (the node is done) and
// checks that it sent the node image bytes.
func (s *seederProc) finish(t *testing.T, within time.Duration) {
	t.Helper()
	select {
	case err := <-s.done:
		var res struct {
			Swarm *struct {
				FromPeers, FromWebseeds, Uploaded int64
			} `json:"swarm"`
		}
		if err != nil || json.Unmarshal([]byte(s.stdout.String()), &res) != nil || res.Swarm == nil {
			t.Fatalf("the namespace seeder: %v\n%s\n%s", err, s.stdout.String(), s.stderr.String())
		}
		t.Logf("the namespace seeder: %d bytes from peers, %d from the webseed, %d sent to the node", res.Swarm.FromPeers, res.Swarm.FromWebseeds, res.Swarm.Uploaded)
		if res.Swarm.Uploaded == 0 {
			t.Errorf("the namespace seeder sent the node no image byte: the node did not take the image from the swarm")
		}
	case <-time.After(within):
		t.Errorf("the namespace seeder still seeds %s after the node was done (the server should say no node needs the version)\n%s", within, s.stderr.String())
	}
}

// swarmUsed checks an attempt's console: the cloner took the image from
// the swarm, and what it says it got from where.
func swarmUsed(t *testing.T, attempt int, out string) {
	t.Helper()
	if !regexp.MustCompile(`netclone: ` + regexp.QuoteMeta(medium.ImageGzip) + ` from the swarm`).MatchString(out) {
		t.Errorf("attempt %d: the cloner did not take the image from the swarm of serve --swarm", attempt)
	}
	if m := regexp.MustCompile(`netclone: \S+ through the swarm: [^\r\n]*`).FindString(out); m != "" {
		t.Logf("attempt %d: %s", attempt, m)
	}
}

// servedByPeers checks clonecd status on the master: the image bytes
// the peers served each other (the seeder's announces) are counted apart
// from the master's, in all and for c.version.
func servedByPeers(t *testing.T, w *work, c *chainServer) {
	t.Helper()
	out, err := netnsCmd(c.netns, w.bin, "status", "--server", c.url, "--tls-pin", c.pin, "--dir", c.vs.Dir).CombinedOutput()
	if err != nil {
		t.Fatalf("clonecd status: %v\n%s", err, out)
	}
	for _, prefix := range []string{"image bytes served: ", "  " + c.version + ": "} {
		line := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(prefix) + `master .*$`).Find(out)
		t.Logf("clonecd status: %s", line)
		if m := regexp.MustCompile(`peers ([0-9.]+) `).FindSubmatch(line); m == nil || string(m[1]) == "0" {
			t.Errorf("clonecd status shows no image bytes served by peers (line %q):\n%s", prefix, out)
		}
	}
}
