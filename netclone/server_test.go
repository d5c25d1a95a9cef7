package netclone

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"math/rand"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/clonecd/clonecd/fleet"
	"github.com/clonecd/clonecd/internal/testenv"
	"github.com/clonecd/clonecd/medium"
)

// imageDir writes a flat image directory with size bytes of random image
// data and returns the directory and the data.
func imageDir(t testing.TB, dir, version string, size int, seed int64) []byte {
	t.Helper()
	data := make([]byte, size)
	rand.New(rand.NewSource(seed)).Read(data)
	sum := sha256.Sum256(data)
	files := map[string][]byte{
		medium.ImageGzip:             data,
		medium.ImageGzip + ".sha256": []byte(hex.EncodeToString(sum[:]) + "  node.cpio.gz\n"),
		"CLONE_CD_VERSION":           []byte(version + "\n"),
		"node.sfdisk":                []byte("label: dos\n\n/dev/sda1 : start=2048, type=83\n"),
		"isolinux/vmlinuz":           []byte("kernel"),
		"isolinux/initrd.img":        []byte("initrd"),
	}
	for name, b := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return data
}

// store makes DIR/versions/{1.19,1.20} with DIR/current -> versions/1.20.
func store(t testing.TB, size int) (dir string, v19, v20 []byte) {
	dir = t.TempDir()
	v19 = imageDir(t, filepath.Join(dir, "versions", "1.19"), "1.19", size, 19)
	v20 = imageDir(t, filepath.Join(dir, "versions", "1.20"), "1.20", size, 20)
	if err := os.Symlink("versions/1.20", filepath.Join(dir, "current")); err != nil {
		t.Fatal(err)
	}
	return dir, v19, v20
}

func get(t *testing.T, url string, hdr map[string]string) (*http.Response, []byte) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(authed(req, admin()))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

func TestServeRangeETag(t *testing.T) {
	dir, v19, v20 := store(t, 1<<20)
	ts := httptest.NewServer(newServer(t, dir, 2))
	defer ts.Close()
	sum := sha256.Sum256(v20)
	etag := `"sha256-` + hex.EncodeToString(sum[:]) + `"`
	sum19 := sha256.Sum256(v19)

	tests := []struct {
		name     string
		path     string
		hdr      map[string]string
		code     int
		body     []byte
		etag     string
		notEmpty bool
	}{
		{"whole image", "/node.cpio.gz", nil, 200, v20, etag, true},
		{"range", "/node.cpio.gz", map[string]string{"Range": "bytes=100-199"}, 206, v20[100:200], etag, true},
		{"open range", "/node.cpio.gz", map[string]string{"Range": "bytes=1048000-"}, 206, v20[1048000:], etag, true},
		{"if-range match resumes", "/node.cpio.gz", map[string]string{"Range": "bytes=10-", "If-Range": etag}, 206, v20[10:], etag, true},
		{"if-range stale sends all", "/node.cpio.gz", map[string]string{"Range": "bytes=10-", "If-Range": `"sha256-0"`}, 200, v20, etag, true},
		{"if-none-match", "/node.cpio.gz", map[string]string{"If-None-Match": etag}, 304, nil, etag, false},
		{"unsatisfiable", "/node.cpio.gz", map[string]string{"Range": "bytes=2000000-"}, 416, nil, "", false},
		{"other version", "/v/1.19/node.cpio.gz", nil, 200, v19, `"sha256-` + hex.EncodeToString(sum19[:]) + `"`, true},
		{"version file", "/CLONE_CD_VERSION", nil, 200, []byte("1.20\n"), "", true},
		{"kernel", "/isolinux/vmlinuz", nil, 200, []byte("kernel"), "", true},
		{"unknown version", "/v/9.99/node.cpio.gz", nil, 404, nil, "", false},
		{"not served", "/nodes/s001/state.json", nil, 404, nil, "", false},
		{"traversal", "/v/..%2f..%2fetc/passwd", nil, 404, nil, "", false},
		{"traversal 2", "/../../etc/passwd", nil, 404, nil, "", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, b := get(t, ts.URL+tc.path, tc.hdr)
			if resp.StatusCode != tc.code {
				t.Fatalf("status %d, want %d (%s)", resp.StatusCode, tc.code, b)
			}
			if tc.body != nil && !bytes.Equal(b, tc.body) {
				t.Fatalf("body: %d bytes, want %d", len(b), len(tc.body))
			}
			if tc.etag != "" && resp.Header.Get("ETag") != tc.etag {
				t.Fatalf("ETag %q, want %q", resp.Header.Get("ETag"), tc.etag)
			}
			if tc.code == 200 && strings.HasPrefix(tc.path, "/node") && resp.Header.Get(VersionHeader) != "1.20" {
				t.Fatalf("version header %q", resp.Header.Get(VersionHeader))
			}
		})
	}

	// The ETag of the image comes from the .sha256 file, not the data:
	// an edited .sha256 shows (after the cache key changes).
	t.Run("etag from sha256 file", func(t *testing.T) {
		d := t.TempDir()
		imageDir(t, d, "2.0", 4096, 1)
		os.WriteFile(filepath.Join(d, "node.cpio.gz.sha256"), []byte(strings.Repeat("ab", 32)+"  node.cpio.gz\n"), 0o644)
		ts := httptest.NewServer(newServer(t, d, 1))
		defer ts.Close()
		resp, _ := get(t, ts.URL+"/node.cpio.gz", nil)
		if got, want := resp.Header.Get("ETag"), `"sha256-`+strings.Repeat("ab", 32)+`"`; got != want {
			t.Fatalf("ETag %s, want %s", got, want)
		}
	})

	// curl resumes a partial download with the server's help.
	t.Run("curl resume", func(t *testing.T) {
		testenv.NeedTools(t, "curl")
		out := filepath.Join(t.TempDir(), "part")
		os.WriteFile(out, v20[:300000], 0o644)
		testenv.Run(t, "curl", "-sS", "-f", "-u", cred("s001").String(), "-C", "-", "-o", out, ts.URL+"/node.cpio.gz")
		got, _ := os.ReadFile(out)
		if !bytes.Equal(got, v20) {
			t.Fatalf("curl -C - gave %d bytes, different from the image", len(got))
		}
	})
}

func TestServeCanaryAssignment(t *testing.T) {
	dir, v19, v20 := store(t, 4096)
	ts := httptest.NewServer(newServer(t, dir, 2))
	defer ts.Close()
	src, err := NewSource("", dir, Access{})
	if err != nil {
		t.Fatal(err)
	}
	if err := src.Assign(t.Context(), "s001", "1.19", false); err != nil {
		t.Fatal(err)
	}
	if err := src.Assign(t.Context(), "s001", "7.7", false); err == nil {
		t.Fatal("assigning a missing version worked")
	}
	for _, tc := range []struct {
		node string
		want []byte
	}{{"s001", v19}, {"s002", v20}, {"", v20}} {
		_, b := get(t, ts.URL+"/node.cpio.gz", map[string]string{NodeHeader: tc.node})
		if !bytes.Equal(b, tc.want) {
			t.Errorf("node %q got the wrong version", tc.node)
		}
	}
	m, err := NewMedia(t.Context(), ts.URL, MediaOptions{Access: as("s001"), Node: "s001"})
	if err != nil {
		t.Fatal(err)
	}
	if m.Version != "1.19" {
		t.Fatalf("canary media version %s", m.Version)
	}
	// Done with the assigned version clears the assignment.
	writeState(dir, fleet.State{Node: "s001", State: fleet.Done, Version: "1.19"})
	if a := nodesOf(dir).Assigned("s001"); a != "" {
		t.Fatalf("assignment %q kept after done", a)
	}
}

// TestAdmission: with --max-streams 2, six clients that hold their
// streams open: two are served, four wait in line, then all finish and
// the peak stays 2.
func TestAdmission(t *testing.T) {
	dir := t.TempDir()
	data := imageDir(t, dir, "1.0", 32<<20, 3)
	srv := newServer(t, dir, 2)
	ts := httptest.NewServer(srv)
	defer ts.Close()

	release := make(chan struct{})
	var wg sync.WaitGroup
	errs := make(chan error, 6)
	for i := range 6 {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			req, _ := http.NewRequest(http.MethodGet, ts.URL+"/node.cpio.gz", nil)
			resp, err := http.DefaultClient.Do(authed(req, as(fmt.Sprintf("n%d", i))))
			if err != nil {
				errs <- err
				return
			}
			defer resp.Body.Close()
			buf := make([]byte, 1)
			if _, err := io.ReadFull(resp.Body, buf); err != nil {
				errs <- err
				return
			}
			<-release // hold the stream open
			rest, err := io.ReadAll(resp.Body)
			if err != nil || len(rest)+1 != len(data) {
				errs <- fmt.Errorf("client %d: %d bytes, %v", i, len(rest)+1, err)
			}
		}(i)
	}
	waitFor(t, 20*time.Second, func() bool { st := srv.Stats(); return st.Active == 2 && st.Queued == 4 })
	// A queued node shows as waiting (its state is written as it queues).
	waiting := func() int {
		n := 0
		sts, _ := nodesOf(dir).All()
		for _, s := range sts {
			if s.State == fleet.Waiting && strings.HasPrefix(s.Detail, "queued") && s.Version == "1.0" {
				n++
			}
		}
		return n
	}
	waitFor(t, 10*time.Second, func() bool { return waiting() == 4 })
	close(release)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	st := srv.Stats()
	if st.Peak != 2 || st.Served != 6 || st.Active != 0 || st.Queued != 0 {
		t.Fatalf("stats %+v, want peak 2, served 6, none active or queued", st)
	}
}

func TestAdmissionFIFO(t *testing.T) {
	a := &admission{max: 1, maxQueue: 10, wait: time.Minute}
	if err := a.acquire(t.Context(), nil); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var order []int
	var wg sync.WaitGroup
	for i := range 5 {
		wg.Add(1)
		queued := make(chan struct{})
		go func() {
			defer wg.Done()
			a.acquire(t.Context(), func(int) { close(queued) })
			mu.Lock()
			order = append(order, i)
			mu.Unlock()
			a.release()
		}()
		<-queued // the next one queues behind this one
	}
	a.release()
	wg.Wait()
	for i, v := range order {
		if v != i {
			t.Fatalf("served in order %v, want first come first served", order)
		}
	}
	if st := a.stats(); st.Peak != 1 || st.Active != 0 {
		t.Fatalf("stats %+v", st)
	}
}

func waitFor(t testing.TB, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("condition not met in %s", d)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
