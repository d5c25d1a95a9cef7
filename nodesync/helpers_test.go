package nodesync

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/clonecd/clonecd/image"
	"github.com/clonecd/clonecd/internal/testenv"
)

// node is a test tree: a path and what to put there.
type node struct {
	path   string // relative to the tree, "usr/bin/tool"
	kind   Type   // Regular (default), Dir, Symlink, Hardlink (data: target), Char, Fifo
	data   string // content, symlink or hard link target
	mode   uint32 // 0: 0644 (files), 0755 (dirs)
	uid    int
	gid    int
	mtime  int64 // 0: 1700000000
	rdev   [2]uint32
	cap    string // setcap capability text, "cap_net_raw+ep"
	remove bool   // remove the path instead
}

// build applies nodes to dir in order.
func build(t testing.TB, dir string, nodes []node) {
	t.Helper()
	for _, n := range nodes {
		p := filepath.Join(dir, n.path)
		if n.remove {
			if err := os.RemoveAll(p); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		os.RemoveAll(p)
		mode := n.mode
		var err error
		switch n.kind {
		case Dir:
			if mode == 0 {
				mode = 0o755
			}
			err = os.Mkdir(p, 0o700)
		case Symlink:
			err = os.Symlink(n.data, p)
		case Hardlink:
			err = os.Link(filepath.Join(dir, n.data), p)
		case Char:
			err = unix.Mknod(p, unix.S_IFCHR|0o600, int(unix.Mkdev(n.rdev[0], n.rdev[1])))
		case Fifo:
			err = unix.Mkfifo(p, 0o600)
		default:
			err = os.WriteFile(p, []byte(n.data), 0o600)
		}
		if err != nil {
			t.Fatal(err)
		}
		if n.kind == Hardlink {
			continue
		}
		if mode == 0 {
			mode = 0o644
		}
		if err := os.Lchown(p, n.uid, n.gid); err != nil {
			t.Fatal(err)
		}
		if n.kind != Symlink {
			if err := unix.Fchmodat(unix.AT_FDCWD, p, mode, 0); err != nil {
				t.Fatal(err)
			}
		}
		if n.cap != "" {
			testenv.Run(t, "setcap", n.cap, p)
		}
		mtime := n.mtime
		if mtime == 0 {
			mtime = 1700000000
		}
		ts := []unix.Timespec{{Sec: mtime}, {Sec: mtime}}
		if err := unix.UtimesNanoAt(unix.AT_FDCWD, p, ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			t.Fatal(err)
		}
	}
}

// fixDirTimes gives every directory under dir the same time, so that
// building a tree in steps does not leave times that differ by run.
func fixDirTimes(t testing.TB, dir string) {
	t.Helper()
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			ts := []unix.Timespec{{Sec: 1700000000}, {Sec: 1700000000}}
			unix.UtimesNanoAt(unix.AT_FDCWD, p, ts, unix.AT_SYMLINK_NOFOLLOW)
		}
		return nil
	})
}

// pack packs dir into an image under t's temp dir.
func pack(t testing.TB, dir string) string {
	t.Helper()
	img := filepath.Join(t.TempDir(), "node.cpio.gz")
	f, err := image.NewFilter(true, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := image.PackFile(dir, img, image.PackOptions{Filter: f}); err != nil {
		t.Fatal(err)
	}
	return img
}

func unpack(t testing.TB, img, dir string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := image.UnpackFile(img, dir, image.UnpackOptions{}); err != nil {
		t.Fatal(err)
	}
}

// publish builds node.files and the blobs of img in a new store.
func publish(t testing.TB, img string, store *Store) *Files {
	t.Helper()
	if store == nil {
		t.Fatal("publish: no store")
	}
	out := filepath.Join(t.TempDir(), "node.files")
	f, _, err := Publish(img, store.Dir(), out, BuildOptions{Store: store})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func newStore(t testing.TB) *Store {
	t.Helper()
	s, err := OpenStore(filepath.Join(t.TempDir(), "blobs"))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// server serves a store's blobs on loopback; wrap (may be nil) stands
// between the client and the handler. Requests counts blob requests.
type server struct {
	URL      string
	Requests atomic.Int64
	mu       sync.Mutex
	wrap     func(http.ResponseWriter, *http.Request, http.Handler)
}

func serve(t testing.TB, s *Store) *server {
	t.Helper()
	srv := &server{}
	h := s.Handler(HandlerOptions{})
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		srv.Requests.Add(1)
		srv.mu.Lock()
		wrap := srv.wrap
		srv.mu.Unlock()
		if wrap != nil {
			wrap(w, r, h)
			return
		}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(ts.Close)
	srv.URL = ts.URL + Prefix
	return srv
}

func (s *server) setWrap(w func(http.ResponseWriter, *http.Request, http.Handler)) {
	s.mu.Lock()
	s.wrap = w
	s.mu.Unlock()
}

// countingClient counts the bytes that cross its connections, both ways.
func countingClient(n *atomic.Int64) *http.Client {
	d := &net.Dialer{}
	tr := &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := d.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return &countConn{Conn: c, n: n}, nil
	}}
	return &http.Client{Transport: tr}
}

type countConn struct {
	net.Conn
	n *atomic.Int64
}

func (c *countConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.n.Add(int64(n))
	return n, err
}

func (c *countConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	c.n.Add(int64(n))
	return n, err
}

// verifyImage compares dir with img; skip lists paths sync leaves alone.
func verifyImage(t testing.TB, img, dir string, skip ...string) *image.Report {
	t.Helper()
	f, err := os.Open(img)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rep, err := image.Verify(f, dir, image.VerifyOptions{Skip: skip})
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

// readFiles parses a node.files from bytes.
func readFiles(t testing.TB, b []byte) *Files {
	t.Helper()
	f, err := Parse(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// temps lists temporary files of ours left in dir.
func temps(t testing.TB, dir string) []string {
	t.Helper()
	var out []string
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && strings.HasPrefix(d.Name(), tempPrefix) {
			out = append(out, p)
		}
		return nil
	})
	return out
}

func readAll(t testing.TB, r io.Reader) []byte {
	t.Helper()
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

var (
	sharedMu  sync.Mutex
	sharedDir string
)

// sharedTemp is a directory shared by the tests of this binary (the
// golden images), removed by TestMain.
func sharedTemp(t testing.TB) string {
	t.Helper()
	sharedMu.Lock()
	defer sharedMu.Unlock()
	if sharedDir == "" {
		d, err := os.MkdirTemp("", "nodesync-test-")
		if err != nil {
			t.Fatal(err)
		}
		sharedDir = d
	}
	return sharedDir
}

func cleanupShared() {
	if sharedDir != "" {
		os.RemoveAll(sharedDir)
	}
}

// selfCPU is the CPU time (user+system) this process used so far.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
