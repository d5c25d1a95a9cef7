package versions_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/clonecd/clonecd/fleet"
	"github.com/clonecd/clonecd/internal/testenv"
	"github.com/clonecd/clonecd/partition"
	"github.com/clonecd/clonecd/trust"
	"github.com/clonecd/clonecd/versions"
)

// cloneLayout: swap, root, preserved /data on a 4 GiB disk.
const cloneLayout = `label: dos
unit: sectors

/dev/sda1 : start=2048, size=262144, type=82
/dev/sda2 : start=264192, size=5242880, type=83, bootable
/dev/sda3 : start=5507072, type=83
# clonecd: part=1 fs=swap label=swap
# clonecd: part=2 fs=ext4 mount=/ label=root
# clonecd: part=3 fs=ext4 mount=/data label=data preserve=yes
`

// TestCloneEachVersion is the versions acceptance test end to end with the
// real commands, as the README has them run: three images of the golden
// root are published, signed (key generate, publish --key), into a store
// that the real `clonecd serve` serves over HTTPS with credentials; the
// clone presents the node's token (clonecd token) and pins the server's
// certificate (the pin serve printed); after the publishes, a
// promote, a rollback and a prune, one disk image is recloned from the
// server (`clonecd clone --net`, the network cloner's media and reports)
// and the clone's /etc/clonecd-version, the store's current version and the
// server's state for the node (`clonecd status --json`) must all agree with
// the version the step should have made current.
func TestCloneEachVersion(t *testing.T) {
	testenv.NeedRoot(t)
	testenv.NeedTools(t, "sfdisk", "losetup", "partx", "mkfs.ext4", "mkswap", "mount", "umount")
	bin := testenv.Clonecd(t)
	golden := testenv.GoldenRoot(t)
	dir := t.TempDir()
	store := filepath.Join(dir, "clone_image")
	layout := filepath.Join(dir, "node.sfdisk")
	if err := os.WriteFile(layout, []byte(cloneLayout), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := func(args ...string) string {
		t.Helper()
		start := time.Now()
		out := testenv.Run(t, bin, args...)
		t.Logf("clonecd %s: %.1fs", strings.Join(args[:min(len(args), 3)], " "), time.Since(start).Seconds())
		return out
	}

	// One pack of the golden root, published as three signed versions.
	img := filepath.Join(dir, "node.cpio.gz")
	key := filepath.Join(dir, "clonecd.key")
	cmd("key", "generate", "-o", key)
	cmd("pack", "-q", "-o", img, golden)
	for _, v := range []string{"1.0", "1.1", "1.2"} {
		cmd("publish", "--dir", store, "--key", key, "--layout", layout, "--version", v, "--note", "golden "+v, img)
	}

	// The real server on a free loopback port.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	srv := exec.Command(bin, "serve", "--dir", store, "--listen", addr)
	srvLog, err := os.Create(filepath.Join(dir, "serve.log"))
	if err != nil {
		t.Fatal(err)
	}
	srv.Stdout, srv.Stderr = srvLog, srvLog
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		srv.Process.Kill()
		srv.Wait()
		if t.Failed() {
			b, _ := os.ReadFile(srvLog.Name())
			t.Logf("clonecd serve's log:\n%s", b)
		}
	})
	url := "https://" + addr
	var pin string
	for i := 0; ; i++ {
		b, _ := os.ReadFile(srvLog.Name())
		if m := regexp.MustCompile(`TLS pin (sha256//\S+)`).FindSubmatch(b); m != nil && bytes.Contains(b, []byte("credential")) {
			pin = string(m[1])
			break
		}
		if i == 100 {
			t.Fatalf("clonecd serve on %s printed no pin:\n%s", addr, b)
		}
		time.Sleep(100 * time.Millisecond)
	}
	tlsCfg, err := trust.ClientTLSConfig(pin, "")
	if err != nil {
		t.Fatal(err)
	}
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: tlsCfg}}
	admin, err := trust.ParseCredential(cmd("token", "--dir", store, "admin"))
	if err != nil {
		t.Fatal(err)
	}

	disk := testenv.Sparse(t, "node.img", 4<<30)
	const node = "vnode01"
	nodeCred := strings.TrimSpace(cmd("token", "--dir", store, node))
	var lastUUID string
	var lastFinished time.Time
	steps := []struct {
		name string
		args []string
		want string // current version after the step
	}{
		{"publish", nil, "1.2"},
		{"promote", []string{"promote", "--dir", store, "1.0"}, "1.0"},
		{"rollback", []string{"rollback", "--dir", store, "--reason", "test"}, "1.2"},
		{"prune", []string{"prune", "--dir", store, "--keep", "1"}, "1.2"},
	}
	for i, st := range steps {
		if st.args != nil {
			cmd(st.args...)
		}
		s, err := versions.Open(store)
		if err != nil {
			t.Fatal(err)
		}
		cur, err := s.Current()
		if err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		if cur.Version != st.want {
			t.Fatalf("after %s the store's current version is %s, want %s", st.name, cur.Version, st.want)
		}

		start := time.Now()
		out, err := testenv.Output(bin, "clone", "--net", url, "--token", nodeCred, "--tls-pin", pin, "--target", disk, "--hostname", node, "--no-tune")
		if err != nil {
			t.Fatalf("after %s: clonecd clone --net: %v\n%s", st.name, err, out)
		}
		t.Logf("after %s: clone of %s from the server: %.1fs", st.name, st.want, time.Since(start).Seconds())

		ver, uuid := readClone(t, disk, i == 0)
		if ver != st.want {
			t.Errorf("after %s: the clone's /etc/clonecd-version is %q, want %s", st.name, ver, st.want)
		}
		if uuid == lastUUID {
			t.Errorf("after %s: the root filesystem was not made anew (UUID %s)", st.name, uuid)
		}
		lastUUID = uuid

		var rows []fleet.State
		js := testenv.Run(t, bin, "status", "--json", "--server", url, "--dir", store, node)
		if err := json.Unmarshal([]byte(js), &rows); err != nil || len(rows) != 1 {
			t.Fatalf("after %s: clonecd status --json: %v\n%s", st.name, err, js)
		}
		r := rows[0]
		if r.Node != node || r.Version != st.want || r.State != fleet.Done || !r.Finished.After(lastFinished) {
			t.Errorf("after %s: the server reports %s %s %s finished %s; want %s done after %s", st.name, r.Node, r.Version, r.State, r.Finished, st.want, lastFinished)
		}
		lastFinished = r.Finished
		if st.name == "prune" {
			for _, v := range []string{"1.0", "1.1"} {
				req, _ := http.NewRequest(http.MethodGet, url+"/v/"+v+"/CLONE_CD_VERSION", nil)
				req.SetBasicAuth(admin.User, admin.Token)
				resp, err := client.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				if resp.StatusCode != http.StatusNotFound {
					t.Errorf("after prune --keep 1 the server still serves version %s: %s", v, resp.Status)
				}
			}
		}
	}
}

// readClone mounts the cloned disk's root and /data read-only and returns
// the root's /etc/clonecd-version and filesystem UUID. The first time
// (mark) it leaves a file in /data; later it checks the file was kept.
func readClone(t *testing.T, disk string, mark bool) (version, uuid string) {
	t.Helper()
	out := testenv.Run(t, "losetup", "--find", "--show", disk)
	loop := strings.TrimSpace(out)
	defer func() {
		testenv.Output("partx", "-d", loop)
		testenv.Output("losetup", "-d", loop)
	}()
	testenv.Output("partx", "-a", loop)
	root := loop + "p2"
	info, err := partition.ProbeFS(root)
	if err != nil {
		t.Fatalf("root of the clone: %v", err)
	}
	mnt := t.TempDir()
	testenv.Run(t, "mount", "-o", "ro", root, mnt)
	b, err := os.ReadFile(filepath.Join(mnt, "etc/clonecd-version"))
	testenv.Run(t, "umount", mnt)
	if err != nil {
		t.Errorf("the clone: %v", err)
	}
	opts := "ro"
	if mark {
		opts = "rw"
	}
	testenv.Run(t, "mount", "-o", opts, loop+"p3", mnt)
	defer testenv.Run(t, "umount", mnt)
	keep := filepath.Join(mnt, "keep.txt")
	if mark {
		if err := os.WriteFile(keep, []byte("precious\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	} else if k, err := os.ReadFile(keep); err != nil || string(k) != "precious\n" {
		t.Errorf("/data/keep.txt after a reclone: %q, %v; want it kept", k, err)
	}
	return strings.TrimSpace(string(b)), fmt.Sprint(info.UUID)
}
