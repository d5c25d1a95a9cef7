package netclone

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/clonecd/clonecd/internal/testenv"
	"github.com/clonecd/clonecd/medium"
	"github.com/clonecd/clonecd/trust"
)

// The test binary doubles as a simulated node's network cloner: the fake
// node's ssh command starts it with NETCLONE_FAKE_NODE=1 (see nodeScript).
func TestMain(m *testing.M) { os.Exit(testenv.GuardEtcOr(m, "NETCLONE_FAKE_NODE", fakeNode)) }

// fakeNode does what a rebooted node's cloner does over the network:
// stream the image from the server (resume, sha256), report its steps,
// result and log, and write the image to a file (its "disk").
func fakeNode() int {
	out, logFile := os.Getenv("NODE_DISK"), os.Getenv("NODE_LOG")
	c, err := trust.ParseCredential(os.Getenv("NODE_CREDENTIAL"))
	if err != nil {
		fmt.Fprintln(os.Stderr, "NODE_CREDENTIAL:", err)
		return 1
	}
	_, err = FetchFile(context.Background(), os.Getenv("NODE_SERVER"), out, FetchOptions{
		MediaOptions: MediaOptions{Access: Access{Credential: c}, Node: os.Getenv("NODE_NAME")},
		Report:       true, LogFile: logFile,
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// nodeScript is the ForceCommand of a fake node's sshd: it accepts only
// "clonecd ramclone --reboot", answers like ramclone, and "reboots" into
// the network cloner (fakeNode) in the background.
const nodeScript = `#!/bin/sh
case "$SSH_ORIGINAL_COMMAND" in
"clonecd ramclone --reboot") ;;
*) echo "fake node: unexpected command: $SSH_ORIGINAL_COMMAND" >&2; exit 1 ;;
esac
echo "clonecd ramclone: grub: next boot is \"ramclone\""
echo "` + RamcloneMarker + `"
NETCLONE_FAKE_NODE=1 setsid "$NODE_CLONER" >"$NODE_DIR/cloner.out" 2>&1 </dev/null &
exit 0
`

type simCluster struct {
	server   *Server
	url      string
	dir      string
	image    []byte
	sshCfg   string
	nodes    []string // reachable, then unreachable
	work     string
	bridgeIP string
}

// newSimCluster builds n simulated nodes, each in its own network
// namespace on a bridge, with a real OpenSSH sshd (per-test host key and
// authorized_keys), plus unreachable names that resolve to an address
// nobody has. The image server listens on the bridge; streams are paced
// to rate bytes/s each so that they overlap.
func newSimCluster(t testing.TB, n, unreachable, maxStreams int, imageSize int, rate int64) *simCluster {
	testenv.NeedRoot(t)
	testenv.NeedTools(t, "ip", "sshd", "ssh", "ssh-keygen", "setsid")
	sshd := testenv.Tool("sshd")
	work := t.TempDir()
	os.Chmod(work, 0o755)
	id := os.Getpid() % 100000
	subnet := fmt.Sprintf("10.213.%d", id%250)
	bridge := fmt.Sprintf("cdbr%d", id)
	run := func(args ...string) {
		t.Helper()
		testenv.Run(t, "ip", args...)
	}
	run("link", "add", bridge, "type", "bridge")
	t.Cleanup(func() { testenv.Output("ip", "link", "del", bridge) })
	run("addr", "add", subnet+".1/24", "dev", bridge)
	run("link", "set", bridge, "up")

	// Keys: one host key for all nodes, one client key.
	testenv.Run(t, "ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", filepath.Join(work, "hostkey"))
	testenv.Run(t, "ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", filepath.Join(work, "id"))
	hostPub, _ := os.ReadFile(filepath.Join(work, "hostkey.pub"))
	pub, _ := os.ReadFile(filepath.Join(work, "id.pub"))
	os.WriteFile(filepath.Join(work, "authorized_keys"), pub, 0o600)
	os.WriteFile(filepath.Join(work, "node.sh"), []byte(nodeScript), 0o755)
	os.MkdirAll("/run/sshd", 0o755) // sshd's privilege separation directory
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}

	c := &simCluster{work: work, bridgeIP: subnet + ".1"}
	var known, cfg bytes.Buffer
	fmt.Fprintf(&cfg, "Host *\n  User root\n  IdentityFile %s/id\n  IdentitiesOnly yes\n  UserKnownHostsFile %s/known_hosts\n  StrictHostKeyChecking yes\n  BatchMode yes\n  ConnectTimeout 3\n  LogLevel ERROR\n", work, work)
	var sshds []*exec.Cmd
	t.Cleanup(func() {
		for _, p := range sshds {
			p.Process.Kill()
			p.Wait()
		}
	})
	for i := 1; i <= n+unreachable; i++ {
		name := fmt.Sprintf("s%03d", i)
		c.nodes = append(c.nodes, name)
		if i > n {
			fmt.Fprintf(&cfg, "Host %s\n  HostName %s.250\n", name, subnet)
			continue
		}
		addr := fmt.Sprintf("%s.%d", subnet, 10+i)
		ns := fmt.Sprintf("cdn%d-%d", id, i)
		host := fmt.Sprintf("cdh%d-%d", id, i)
		run("netns", "add", ns)
		t.Cleanup(func() { testenv.Output("ip", "netns", "del", ns) })
		run("link", "add", host, "type", "veth", "peer", "name", "eth0", "netns", ns)
		run("link", "set", host, "master", bridge, "up")
		run("-n", ns, "addr", "add", addr+"/24", "dev", "eth0")
		run("-n", ns, "link", "set", "eth0", "up")
		run("-n", ns, "link", "set", "lo", "up")
		nodeDir := filepath.Join(work, name)
		os.MkdirAll(nodeDir, 0o755)
		conf := filepath.Join(nodeDir, "sshd_config")
		os.WriteFile(conf, []byte(fmt.Sprintf(`ListenAddress %s
Port 22
HostKey %s/hostkey
PidFile none
AuthorizedKeysFile %s/authorized_keys
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
ForceCommand %s/node.sh
SetEnv NODE_NAME=%s NODE_CREDENTIAL=%s NODE_DIR=%s NODE_DISK=%s/disk.img NODE_LOG=%s/clone.log NODE_CLONER=%s NODE_SERVER=http://%s.1:%%PORT%%
`, addr, work, work, work, name, cred(name), nodeDir, nodeDir, nodeDir, self, subnet)), 0o644)
		fmt.Fprintf(&known, "%s %s", addr, hostPub)
		fmt.Fprintf(&cfg, "Host %s\n  HostName %s\n", name, addr)
	}
	os.WriteFile(filepath.Join(work, "known_hosts"), known.Bytes(), 0o644)
	c.sshCfg = filepath.Join(work, "ssh_config")
	os.WriteFile(c.sshCfg, cfg.Bytes(), 0o644)

	// The image server on the bridge.
	c.dir = filepath.Join(work, "store")
	c.image = imageDir(t, c.dir, "1.20", imageSize, 42)
	c.server = newServer(t, c.dir, maxStreams)
	ln, err := net.Listen("tcp", c.bridgeIP+":0")
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: paced(c.server, rate)}
	go hs.Serve(ln)
	t.Cleanup(func() { hs.Close() })
	c.url = "http://" + ln.Addr().String()
	port := fmt.Sprint(ln.Addr().(*net.TCPAddr).Port)

	// Start the sshds now that the port is known.
	for i := 1; i <= n; i++ {
		name, ns := c.nodes[i-1], fmt.Sprintf("cdn%d-%d", id, i)
		conf := filepath.Join(work, name, "sshd_config")
		b, _ := os.ReadFile(conf)
		os.WriteFile(conf, bytes.ReplaceAll(b, []byte("%PORT%"), []byte(port)), 0o644)
		cmd := exec.Command("ip", "netns", "exec", ns, sshd, "-D", "-e", "-f", conf)
		cmd.Stderr = &bytes.Buffer{}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		sshds = append(sshds, cmd)
	}
	for i := 1; i <= n; i++ {
		addr := fmt.Sprintf("%s.%d:22", subnet, 10+i)
		deadline := time.Now().Add(20 * time.Second)
		for {
			conn, err := net.DialTimeout("tcp", addr, time.Second)
			if err == nil {
				conn.Close()
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("sshd on %s did not come up: %v\n%s", addr, err, sshds[i-1].Stderr)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	return c
}

// paced slows image responses to rate bytes/s per stream (a link).
func paced(h http.Handler, rate int64) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if rate > 0 && strings.HasSuffix(r.URL.Path, "/"+medium.ImageGzip) {
			w = &paceWriter{ResponseWriter: w, rate: rate, start: time.Now()}
		}
		h.ServeHTTP(w, r)
	})
}

type paceWriter struct {
	http.ResponseWriter
	rate  int64
	sent  int64
	start time.Time
}

func (p *paceWriter) Write(b []byte) (int, error) {
	n, err := p.ResponseWriter.Write(b)
	p.sent += int64(n)
	if ahead := time.Duration(p.sent*int64(time.Second)/p.rate) - time.Since(p.start); ahead > 0 {
		time.Sleep(ahead) // the link's speed
	}
	return n, err
}

func (c *simCluster) recloner(delay time.Duration, parallel int, out io.Writer) *Recloner {
	src, _ := NewSource(c.url, "", admin())
	return &Recloner{
		Source: src, Rsh: []string{"ssh", "-F", c.sshCfg}, Delay: delay, Parallel: parallel,
		Timeout: 3 * time.Minute, RshTimeout: 90 * time.Second, Poll: 100 * time.Millisecond, Out: out, // ssh logins take up to 30 s on a loaded 2-core machine
	}
}

// TestRecloneAllNamespaces: reclone-all of 16 simulated nodes (network
// namespaces with real sshds) plus one unreachable: starts honour --delay
// and --parallel, the server never streams more than --max-streams at
// once, every node ends done on the served version with its image and
// log, the unreachable node is reported, and the summary says so.
func TestRecloneAllNamespaces(t *testing.T) {
	const (
		nodes, maxStreams, parallel = 16, 3, 6
		delay                       = 150 * time.Millisecond
	)
	c := newSimCluster(t, nodes, 1, maxStreams, 4<<20, 2<<20) // 2 s per stream: they overlap
	var log bytes.Buffer
	r := c.recloner(delay, parallel, &log)
	results, err := r.Run(t.Context(), c.nodes)
	if err != nil {
		t.Fatal(err)
	}
	var table bytes.Buffer
	WriteTable(&table, results)
	t.Logf("events:\n%s\n%s", log.String(), table.String())

	// Results and summary.
	for i, res := range results {
		name := c.nodes[i]
		if res.Node != name {
			t.Fatalf("result %d is for %s, want %s", i, res.Node, name)
		}
		if i < nodes {
			if !res.OK || res.Result != "done" || res.Version != "1.20" {
				t.Errorf("%s: %+v", name, res)
				continue
			}
			disk, err := os.ReadFile(filepath.Join(c.work, name, "disk.img"))
			if err != nil || !bytes.Equal(disk, c.image) {
				t.Errorf("%s: image on its disk differs (%v)", name, err)
			}
			st, err := readState(c.dir, name)
			if err != nil || st.Summary() != "done" || st.Version != "1.20" || st.Log == "" {
				t.Errorf("%s: state %+v %v", name, st, err)
			}
		} else if res.OK || res.Result != "unreachable" {
			t.Errorf("%s (no such host): %+v, want unreachable", name, res)
		}
	}
	if !strings.Contains(table.String(), fmt.Sprintf("%d of %d nodes ok, 1 failed", nodes, nodes+1)) {
		t.Errorf("summary wrong:\n%s", table.String())
	}
	if st, _ := readState(c.dir, c.nodes[nodes]); !strings.Contains(st.Error, "unreachable") {
		t.Errorf("unreachable node's state: %+v", st)
	}

	// --delay: consecutive starts at least delay apart.
	starts := r.Starts()
	if len(starts) != nodes+1 {
		t.Fatalf("%d starts, want %d", len(starts), nodes+1)
	}
	for i := 1; i < len(starts); i++ {
		if gap := starts[i].Sub(starts[i-1]); gap < delay-2*time.Millisecond {
			t.Errorf("start %d only %s after the previous one, --delay %s", i, gap, delay)
		}
	}
	// --parallel: never more nodes in flight (start to result) than the cap.
	type ev struct {
		t time.Time
		d int
	}
	var evs []ev
	for _, res := range results {
		evs = append(evs, ev{res.Start, +1}, ev{res.Start.Add(res.Duration), -1})
	}
	sort.Slice(evs, func(i, j int) bool {
		return evs[i].t.Before(evs[j].t) || evs[i].t.Equal(evs[j].t) && evs[i].d < evs[j].d
	})
	inflight, most := 0, 0
	for _, e := range evs {
		inflight += e.d
		most = max(most, inflight)
	}
	if most > parallel || most < 2 {
		t.Errorf("at most %d nodes in flight, want 2..%d", most, parallel)
	}
	// --max-streams, counted on the server.
	st := c.server.Stats()
	t.Logf("server: %+v; nodes in flight at most %d", st, most)
	if st.Peak > maxStreams || st.Peak < 2 || st.Served < nodes {
		t.Errorf("server stats %+v: want peak 2..%d and %d streams served", st, maxStreams, nodes)
	}

	// --skip-current: a second run leaves them all alone (the unreachable
	// one is still unreachable).
	r2 := c.recloner(0, parallel, io.Discard)
	r2.SkipCurrent = true
	again, err := r2.Run(t.Context(), c.nodes)
	if err != nil {
		t.Fatal(err)
	}
	for i, res := range again[:nodes] {
		if res.Result != "skipped" || !res.OK {
			t.Errorf("%s with --skip-current: %+v", c.nodes[i], res)
		}
	}
	if st := c.server.Stats(); st.Served != int64(nodes) && st.Served < int64(nodes) {
		t.Errorf("skip-current streamed the image again: %+v", st)
	}
}
