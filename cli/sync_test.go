package cli

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/clonecd/clonecd/image"
	"github.com/clonecd/clonecd/internal/testenv"
	"github.com/clonecd/clonecd/nodesync"
	"github.com/clonecd/clonecd/trust"
)

// syncFixture is a store with versions 1.0 (A) and 1.1 (B, A changed in
// every way sync must handle) and a node: A unpacked, with identity
// files of its own.
type syncFixture struct {
	store, imgA, imgB, key, node string
	bigA                         []byte // /usr/lib/big in A (B has other bytes)
}

// bigSize is /usr/lib/big's size: incompressible, so stored raw and sent
// as it is (the proxy below cuts or flips inside it).
const bigSize = 3 << 20

// writeVersion writes tree A, or B: changed, added and removed files, a
// changed mode and owner, a new hard link, a changed symlink, a new
// device node, a file capability.
func writeVersion(t *testing.T, root string, b bool) []byte {
	t.Helper()
	pick := func(a, bv string) string {
		if b {
			return bv
		}
		return a
	}
	// and the directories of a Debian root that hold what a clone installs
	for _, d := range []string{"etc", "usr/bin", "usr/lib", "usr/share", "bin", "data", "boot", "etc/default/grub.d", "etc/grub.d", "usr/local/sbin"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	files := map[string]string{
		"etc/passwd":   "root:x:0:0::/root:/bin/sh\n",
		"etc/hostname": "golden\n",
		"etc/motd":     pick("version A\n", "version B, longer\n"),
		"etc/mode":     "mode\n",
		"etc/owner":    "owner\n",
		"usr/bin/tool": "tool\n",
		"usr/bin/ping": "ping\n",
	}
	if b {
		files["usr/bin/new"] = "new\n"
	} else {
		files["usr/share/old"] = "old\n"
	}
	for name, data := range files {
		writeFile(t, filepath.Join(root, name), data)
	}
	big := make([]byte, bigSize)
	seed := uint64(1)
	if b {
		seed = 2
	}
	r := rand.NewChaCha8([32]byte{byte(seed)})
	r.Read(big)
	if err := os.WriteFile(filepath.Join(root, "usr/lib/big"), big, 0o644); err != nil {
		t.Fatal(err)
	}
	target := pick("../usr/bin/tool", "../usr/bin/new")
	if err := os.Symlink(target, filepath.Join(root, "bin/link")); err != nil {
		t.Fatal(err)
	}
	if b {
		for _, err := range []error{
			os.Chmod(filepath.Join(root, "etc/mode"), 0o600),
			os.Lchown(filepath.Join(root, "etc/owner"), 1000, 1000),
			os.Link(filepath.Join(root, "usr/bin/tool"), filepath.Join(root, "usr/bin/tool-alias")),
			unix.Mknod(filepath.Join(root, "etc/null"), unix.S_IFCHR|0o666, int(unix.Mkdev(1, 3))),
		} {
			if err != nil {
				t.Fatal(err)
			}
		}
		testenv.Run(t, "setcap", "cap_net_raw+ep", filepath.Join(root, "usr/bin/ping"))
	}
	// Times of their own: B's big file has A's size, and a file whose
	// size and time match is taken as unchanged (as rsync's quick check).
	when := unix.NsecToTimespec(int64(seed) * 86400e9)
	filepath.WalkDir(root, func(path string, _ os.DirEntry, err error) error {
		if err == nil {
			err = unix.UtimesNanoAt(unix.AT_FDCWD, path, []unix.Timespec{when, when}, unix.AT_SYMLINK_NOFOLLOW)
		}
		if err != nil {
			t.Fatal(err)
		}
		return nil
	})
	return big
}

func newSyncFixture(t *testing.T) *syncFixture {
	t.Helper()
	testenv.NeedRoot(t)
	testenv.NeedTools(t, "setcap", "getcap")
	dir := t.TempDir()
	fx := &syncFixture{store: filepath.Join(dir, "store"), key: filepath.Join(dir, "clonecd.key"), node: filepath.Join(dir, "node")}
	if code, _, errs := runMain(t, "key", "generate", "-o", fx.key); code != 0 {
		t.Fatalf("key generate: %s", errs)
	}
	lay := filepath.Join(dir, "node.sfdisk")
	writeFile(t, lay, cliLayout)
	for i, v := range []string{"1.0", "1.1"} {
		root := filepath.Join(dir, "tree"+v)
		big := writeVersion(t, root, i == 1)
		img := filepath.Join(dir, v+".cpio.gz")
		if code, _, errs := runMain(t, "pack", "-q", "-o", img, root); code != 0 {
			t.Fatalf("pack %s: %s", v, errs)
		}
		if code, _, errs := runMain(t, "publish", "-q", "--dir", fx.store, "--key", fx.key, "--layout", lay, "--version", v, img); code != 0 {
			t.Fatalf("publish %s: %s", v, errs)
		}
		if i == 0 {
			fx.imgA, fx.bigA = img, big
		} else {
			fx.imgB = img
		}
	}
	if code, _, errs := runMain(t, "unpack", fx.imgA, fx.node); code != 0 {
		t.Fatalf("unpack: %s", errs)
	}
	writeFile(t, filepath.Join(fx.node, "etc/hostname"), "node1\n")
	writeFile(t, filepath.Join(fx.node, "etc/machine-id"), "0123456789abcdef0123456789abcdef\n")
	for _, f := range clonerFiles {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(fx.node, f)), 0o755); err != nil {
			t.Fatal(err)
		}
		writeFile(t, filepath.Join(fx.node, f), "installed by the clone\n")
	}
	return fx
}

// clonerFiles are what a clone installs beside the image (the network
// cloner): sync must leave them be.
var clonerFiles = []string{"boot/clonecd/vmlinuz", image.ClonerBinary, image.ClonerGrubScript, image.ClonerGrubDefault}

// serveStore runs clonecd serve on the store on a loopback port until
// the test ends and returns its URL and TLS pin ("" with plain HTTP).
func serveStore(t *testing.T, store string, plain bool) (url, pin string) {
	t.Helper()
	var out, errb testenv.SyncBuffer
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	f := &serveFlags{dir: store, listen: "127.0.0.1:0", maxStreams: 4, quiet: true, plainHTTP: plain}
	go func() { done <- runServe(ctx, Output{Stdout: &out, Stderr: &errb}, f, nil) }()
	t.Cleanup(func() { cancel(); <-done })
	re := regexp.MustCompile(`on (https?://127\.0\.0\.1:[0-9]+),(?s:.*)credential`)
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if m := re.FindStringSubmatch(out.String()); m != nil {
			url = m[1]
			break
		}
	}
	if url == "" {
		t.Fatalf("serve printed no address: %q %q", out.String(), errb.String())
	}
	if m := regexp.MustCompile(`TLS pin (sha256//\S+)`).FindStringSubmatch(out.String()); m != nil {
		pin = m[1]
	}
	return url, pin
}

func nodeToken(t *testing.T, store, node string) string {
	t.Helper()
	_, token, errs := runMain(t, "token", "--dir", store, node)
	if _, err := trust.ParseCredential(token); err != nil {
		t.Fatalf("clonecd token %s: %q %s: %v", node, token, errs, err)
	}
	return strings.TrimSpace(token)
}

func parseSyncResult(t *testing.T, stdout string) syncResult {
	t.Helper()
	var r syncResult
	if err := json.Unmarshal([]byte(stdout), &r); err != nil || r.Report == nil && r.Result != resultReclone {
		t.Fatalf("sync --json printed %q: %v", stdout, err)
	}
	return r
}

// TestSyncAcceptance is issue 12's first acceptance line: a node unpacked
// from A, with identity files of its own and a tmpfs as /data (in a
// mount namespace of its own), synced over HTTPS with its token and a
// trusted key from a real clonecd serve, is B apart from its identity;
// identity and /data are untouched; a second sync fetches nothing; the
// server shows the node synced.
func TestSyncAcceptance(t *testing.T) {
	testenv.NeedTools(t, "unshare", "mount")
	fx := newSyncFixture(t)
	url, pin := serveStore(t, fx.store, false)
	if pin == "" {
		t.Fatal("serve printed no TLS pin")
	}
	bin := testenv.Clonecd(t)
	token := nodeToken(t, fx.store, "node1")
	dataList := filepath.Join(t.TempDir(), "data.txt")
	syncArgs := []string{bin, "sync", "--json", "--server", url, "--tls-pin", pin, "--token", token, "--root", fx.node,
		"--trust", fx.key + ".pub", "--dir", "/nonexistent"}
	// The node's /data is a tmpfs with a file, in a mount namespace that
	// ends with the sync: sync must neither look into it nor touch it.
	script := `set -u; mount -t tmpfs tmpfs "$ROOT/data" && echo kept > "$ROOT/data/state" || exit 9
"$@"; rc=$?; (ls -A "$ROOT/data"; cat "$ROOT/data/state") > "$LIST"; exit $rc`
	cmd := exec.Command("unshare", append([]string{"-m", "--propagation", "private", "sh", "-c", script, "sh"}, syncArgs...)...)
	cmd.Env = append(os.Environ(), "ROOT="+fx.node, "LIST="+dataList)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("clonecd sync: %v\n%s\n%s", err, stdout.String(), stderr.String())
	}
	res := parseSyncResult(t, stdout.String())
	if res.Result != resultSynced || res.Version != "1.1" || !strings.HasPrefix(res.Trust, "signed by") || res.Report.Fetched < bigSize {
		t.Errorf("sync = %s version %s trust %q, fetched %d; want synced to 1.1, signed, at least %d bytes fetched",
			res.Result, res.Version, res.Trust, res.Report.Fetched, bigSize)
	}
	if b, err := os.ReadFile(dataList); err != nil || string(b) != "state\nkept\n" {
		t.Errorf("the node's /data after sync: %q (%v); want only state, kept", b, err)
	}
	// verify: identical to B apart from the identity files.
	code, vout, verr := runMain(t, "verify", "--json", "-q", fx.imgB, fx.node)
	if code != 0 {
		t.Errorf("clonecd verify B NODE = exit %d; want 0 (same)\n%s%s", code, vout, verr)
	}
	var vr verifyReport
	json.Unmarshal([]byte(vout), &vr)
	own := map[string]string{"etc/hostname": "node1\n", "etc/machine-id": "0123456789abcdef0123456789abcdef\n", "etc/clonecd-version": "1.1\n"}
	for _, f := range clonerFiles {
		own[f] = "installed by the clone\n"
	}
	for _, d := range vr.Identity {
		if _, ok := own[strings.TrimPrefix(d.Path, "/")]; !ok && !strings.HasSuffix(d.Path, "/") && d.Path != "/boot/clonecd" {
			t.Errorf("verify lists %s as an identity difference; only the node's own files differ", d.Path)
		}
	}
	for name, want := range own {
		if b, _ := os.ReadFile(filepath.Join(fx.node, name)); string(b) != want {
			t.Errorf("/%s after sync = %q; want %q", name, b, want)
		}
	}
	if out := testenv.Run(t, "getcap", filepath.Join(fx.node, "usr/bin/ping")); !strings.Contains(out, "cap_net_raw") {
		t.Errorf("getcap usr/bin/ping = %q; want cap_net_raw", out)
	}
	// The blob store is behind the reader credential, as the image is.
	cfg, err := trust.ClientTLSConfig(pin, "")
	if err != nil {
		t.Fatal(err)
	}
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: cfg}}
	sum := sha256.Sum256([]byte("new\n"))
	for _, tt := range []struct {
		cred string
		want int
	}{{"", http.StatusUnauthorized}, {token, http.StatusOK}} {
		req, _ := http.NewRequest(http.MethodGet, fmt.Sprintf("%s%s%x", url, nodesync.Prefix, sum), nil)
		if c, err := trust.ParseCredential(tt.cred); err == nil {
			req.SetBasicAuth(c.User, c.Token)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tt.want || tt.want == http.StatusOK && string(body) != "new\n" {
			t.Errorf("GET %s%x with credential %q = %s %q; want %d", nodesync.Prefix, sum, tt.cred, resp.Status, body, tt.want)
		}
	}
	// A second sync has nothing to do and fetches no content.
	code, sout, serr := runMain(t, syncArgs[1:]...)
	if code != 0 {
		t.Fatalf("second sync: exit %d\n%s", code, serr)
	}
	if res := parseSyncResult(t, sout); res.Result != resultCurrent || res.Report.Fetched != 0 || res.Report.FetchedBlobs != 0 {
		t.Errorf("second sync = %s, fetched %d bytes in %d blobs; want current, nothing fetched", res.Result, res.Report.Fetched, res.Report.FetchedBlobs)
	}
	// The server knows: status shows the node synced to 1.1.
	code, st, _ := runMain(t, "status", "--dir", fx.store, "node1")
	if code != 0 || !strings.Contains(st, "synced") || !strings.Contains(st, "1.1") {
		t.Errorf("clonecd status node1 = exit %d %q; want synced, 1.1", code, st)
	}
}

// TestSyncSigned: with --trust, a key that did not sign the version is
// refused before the first write (exit 2, the node unchanged).
func TestSyncSigned(t *testing.T) {
	fx := newSyncFixture(t)
	url, pin := serveStore(t, fx.store, false)
	other := filepath.Join(t.TempDir(), "other.key")
	runMain(t, "key", "generate", "-o", other)
	before, _ := os.ReadFile(filepath.Join(fx.node, "etc/motd"))
	code, _, errs := runMain(t, "sync", "--server", url, "--tls-pin", pin, "--token", nodeToken(t, fx.store, "node1"),
		"--root", fx.node, "--trust", other+".pub", "--dir", "/nonexistent")
	after, _ := os.ReadFile(filepath.Join(fx.node, "etc/motd"))
	if code != 2 || !bytes.Equal(before, after) || !strings.Contains(errs, "MANIFEST") {
		t.Errorf("sync --trust OTHER.pub = exit %d, motd %q -> %q, %q; want 2, unchanged, naming MANIFEST", code, before, after, errs)
	}
}

// TestSyncLayoutCheck: a disk whose table is not the version's layout
// makes the node "needs reclone" (exit 1), and nothing is written.
func TestSyncLayoutCheck(t *testing.T) {
	testenv.NeedTools(t, "sfdisk")
	fx := newSyncFixture(t)
	url, pin := serveStore(t, fx.store, false)
	disk := testenv.Sparse(t, "disk.img", 64<<20)
	testenv.Run(t, "sh", "-c", `echo 'label: dos
size=16MiB, type=83' | sfdisk -q "$0"`, disk)
	code, out, errs := runMain(t, "sync", "--json", "--server", url, "--tls-pin", pin, "--token", nodeToken(t, fx.store, "node1"),
		"--root", fx.node, "--disk", disk, "--dir", "/nonexistent")
	res := parseSyncResult(t, out)
	if code != 1 || res.Result != resultReclone || res.Reason == "" {
		t.Errorf("sync --disk OTHER-TABLE = exit %d, %s (%s) %s; want 1, needs reclone with a reason", code, res.Result, res.Reason, errs)
	}
	if b, _ := os.ReadFile(filepath.Join(fx.node, "etc/motd")); string(b) != "version A\n" {
		t.Errorf("motd after a refused sync: %q", b)
	}
}

// TestSyncBrokenTransfer is issue 12's second acceptance line: a
// connection cut, or a byte flipped, in the middle of the content leaves
// every file old or new (the big file A's) and no temporary file; the
// next sync completes. Plain HTTP, so that a flipped byte reaches
// nodesync's hash check (under TLS it breaks the connection instead).
func TestSyncBrokenTransfer(t *testing.T) {
	for _, mode := range []string{"cut", "flip"} {
		t.Run(mode, func(t *testing.T) {
			fx := newSyncFixture(t)
			url, _ := serveStore(t, fx.store, true)
			p := startProxy(t, strings.TrimPrefix(url, "http://"), mode)
			args := []string{"sync", "--json", "--server", "http://" + p.addr, "--token", nodeToken(t, fx.store, "node1"),
				"--root", fx.node, "--dir", "/nonexistent"}
			code, out, errs := runMain(t, args...)
			res := parseSyncResult(t, out)
			if code != 2 || res.Result != resultFailed || len(res.Report.Failed) == 0 {
				t.Fatalf("sync through a %s connection = exit %d, %s; want 2, failed with entries not updated\n%s", mode, code, res.Result, errs)
			}
			if p.broken.Load() == 0 {
				t.Fatalf("the proxy never broke a transfer")
			}
			if b, err := os.ReadFile(filepath.Join(fx.node, "usr/lib/big")); err != nil || !bytes.Equal(b, fx.bigA) {
				t.Errorf("usr/lib/big after a broken sync: %d bytes, sha256 %x (%v); want A's", len(b), sha256.Sum256(b), err)
			}
			filepath.WalkDir(fx.node, func(path string, d os.DirEntry, err error) error {
				if err == nil && strings.HasPrefix(d.Name(), ".~clonecd") {
					t.Errorf("temporary file left: %s", path)
				}
				return nil
			})
			p.pass.Store(true)
			if code, out, errs := runMain(t, args...); code != 0 {
				t.Fatalf("sync again: exit %d %s %s", code, out, errs)
			}
			if code, vout, _ := runMain(t, "verify", "-q", fx.imgB, fx.node); code != 0 {
				t.Errorf("verify after the second sync: exit %d\n%s", code, vout)
			}
		})
	}
}

// proxy forwards loopback TCP to a server; until pass is set, the
// server's answers longer than a MiB have their byte there flipped (mode
// flip), or are cut there and every later connection is dropped at once
// (mode cut: the network is gone, past the client's retries).
type proxy struct {
	addr   string
	pass   atomic.Bool
	broken atomic.Int32

	connsMu sync.Mutex
	conns   []net.Conn
}

func (p *proxy) track(c ...net.Conn) {
	p.connsMu.Lock()
	p.conns = append(p.conns, c...)
	p.connsMu.Unlock()
}

func startProxy(t *testing.T, server, mode string) *proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{addr: ln.Addr().String()}
	var wg sync.WaitGroup
	t.Cleanup(func() {
		ln.Close()
		p.connsMu.Lock()
		for _, c := range p.conns { // the client's idle keep-alive connections
			c.Close()
		}
		p.connsMu.Unlock()
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			if mode == "cut" && p.broken.Load() > 0 && !p.pass.Load() {
				c.Close()
				continue
			}
			s, err := net.Dial("tcp", server)
			if err != nil {
				c.Close()
				continue
			}
			p.track(c, s)
			wg.Add(2)
			go func() { defer wg.Done(); io.Copy(s, c); s.(*net.TCPConn).CloseWrite() }()
			go func() {
				defer wg.Done()
				defer c.Close()
				defer s.Close()
				p.answer(c, s, mode)
			}()
		}
	}()
	return p
}

const breakAt = 1 << 20

func (p *proxy) answer(c io.Writer, s io.Reader, mode string) {
	buf := make([]byte, 32<<10)
	var n int64
	for {
		k, err := s.Read(buf)
		if k > 0 {
			chunk := buf[:k]
			if !p.pass.Load() && n <= breakAt && n+int64(k) > breakAt {
				switch mode {
				case "cut":
					c.Write(chunk[:breakAt-n])
					p.broken.Add(1)
					return
				case "flip":
					chunk[breakAt-n] ^= 0x20
					p.broken.Add(1)
				}
			}
			n += int64(k)
			if _, err := c.Write(chunk); err != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// TestSyncAll runs sync NODE... and sync-all as an admin would, with a
// stand-in for ssh (no sshd helper in this package): --rsh is a script
// that runs the command locally for a node, or fails as ssh does (255)
// for node "down"; --command is a wrapper that points the node's sync at
// its own directory. Each node gets its credential on standard input
// from the store's secret, the table lists each node's result, and a
// failed node makes the exit status 1.
func TestSyncAll(t *testing.T) {
	fx := newSyncFixture(t)
	url, pin := serveStore(t, fx.store, false)
	bin := testenv.Clonecd(t)
	nodes := filepath.Dir(fx.node)
	for _, n := range []string{"node1", "node2"} {
		if code, _, errs := runMain(t, "unpack", fx.imgA, filepath.Join(nodes, n)); code != 0 {
			t.Fatalf("unpack: %s", errs)
		}
	}
	rsh := filepath.Join(nodes, "rsh")
	writeFile(t, rsh, `#!/bin/sh
while [ "$1" != "--" ]; do shift; done
[ "$2" = down ] && { echo "ssh: connect to host down port 22: No route to host" >&2; exit 255; }
NODE=$2 exec sh -c "$3"
`)
	wrapper := filepath.Join(nodes, "node-clonecd")
	writeFile(t, wrapper, `#!/bin/sh
exec "`+bin+`" "$@" --root "`+nodes+`/$NODE" --disk none
`)
	os.Chmod(rsh, 0o755)
	os.Chmod(wrapper, 0o755)
	code, out, errs := runMain(t, "sync", "--server", url, "--tls-pin", pin, "--dir", fx.store, "--rsh", rsh+" -o BatchMode=yes",
		"--command", wrapper, "--parallel", "2", "node[1-2]", "down")
	for _, want := range []*regexp.Regexp{
		regexp.MustCompile(`(?m)^node1 +synced +3 +3 +\d+ +1 `),
		regexp.MustCompile(`(?m)^node2 +synced `),
		regexp.MustCompile(`(?m)^down +unreachable .*No route to host`),
		regexp.MustCompile(`2 of 3 nodes synced or current`),
	} {
		if !want.MatchString(out) {
			t.Errorf("sync node[1-2] down: table lacks %s:\n%s%s", want, out, errs)
		}
	}
	if code != 1 {
		t.Errorf("sync with an unreachable node = exit %d; want 1", code)
	}
	// sync-all --dry-run: both nodes current now.
	code, out, errs = runMain(t, "sync-all", "--json", "--dry-run", "--server", url, "--tls-pin", pin, "--dir", fx.store,
		"--rsh", rsh, "--command", wrapper, "--pattern", "node%d", "1", "2")
	var results []syncResult
	if err := json.Unmarshal([]byte(out), &results); err != nil || len(results) != 2 || code != 0 {
		t.Fatalf("sync-all --json --dry-run 1 2 = exit %d %q %s (%v)", code, out, errs, err)
	}
	for _, r := range results {
		if r.Result != resultCurrent || r.Version != "1.1" {
			t.Errorf("sync-all --dry-run: %s is %s at %s; want current at 1.1", r.Node, r.Result, r.Version)
		}
	}
}

// TestSyncUsage: flags that make no sense together are refused before
// anything runs (exit 2).
func TestSyncUsage(t *testing.T) {
	for _, args := range [][]string{
		{"sync", "--root", "/mnt", "--server", "https://m:8443", "s001"},
		{"sync", "--parallel", "0", "--server", "https://m:8443", "s001"},
		{"sync", "--exclude", "[", "--server", "https://m:8443"},
		{"sync", "--version", "1", "--server", "https://m:8443"},
		{"sync", "--server", "https://m:8443", "-s001"},
		{"sync-all", "--server", "https://m:8443", "1"},
	} {
		if code, _, errs := runMain(t, args...); code != 2 || errs == "" {
			t.Errorf("clonecd %q = exit %d %q; want 2 and a message", args, code, errs)
		}
	}
}

// TestRemoteSync: the command line sync NODE... runs on each node
// passes the flags that concern the node, quoted for its shell.
func TestRemoteSync(t *testing.T) {
	f := &syncFlags{version: "1.2", dryRun: true, noDelete: true, exclude: patternsFlag{"/opt/it's/***"}, trust: []string{"/etc/k.pub"}}
	f.fleet.command = "clonecd"
	got := remoteSync(f, "https://m:8443", "sha256//x+y=", true)
	want := `clonecd sync --json --server https://m:8443 --tls-pin sha256//x+y= --version 1.2 --dry-run --no-delete --exclude '/opt/it'\''s/***' --trust /etc/k.pub --credential -`
	if got != want {
		t.Errorf("remoteSync = %s\nwant          %s", got, want)
	}
}
