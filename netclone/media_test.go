package netclone

import (
	"bytes"
	"errors"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/clonecd/clonecd/fleet"
	"github.com/clonecd/clonecd/internal/testenv"
	"github.com/clonecd/clonecd/medium"
)

func fastOpts() MediaOptions {
	return MediaOptions{Access: admin(), Backoff: 50 * time.Millisecond, MaxBackoff: 400 * time.Millisecond, Retries: 40, IdleTimeout: 5 * time.Second}
}

// TestStreamSurvivesServerRestart kills the server (listener and open
// connections) in the middle of the stream and starts a new one on the
// same address a second later: the stream resumes with Range and
// If-Range and delivers the image intact.
func TestStreamSurvivesServerRestart(t *testing.T) {
	dir := t.TempDir()
	data := imageDir(t, dir, "1.0", 24<<20, 7)
	srv := newServer(t, dir, 2)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	hs := &http.Server{Handler: srv}
	go hs.Serve(ln)

	m, err := NewMedia(t.Context(), "http://"+addr, fastOpts())
	if err != nil {
		t.Fatal(err)
	}
	f, err := m.Open(medium.ImageGzip)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	s := f.(*Stream)
	if s.Size() != int64(len(data)) {
		t.Fatalf("size %d", s.Size())
	}
	got := make([]byte, 0, len(data))
	buf := make([]byte, 64<<10)
	for len(got) < len(data)/3 {
		n, err := s.Read(buf)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, buf[:n]...)
	}
	hs.Close() // kill: listener and the open stream go away
	restarted := make(chan *http.Server, 1)
	go func() {
		time.Sleep(time.Second) // the server is down for a while
		ln2, err := net.Listen("tcp", addr)
		if err != nil {
			t.Error(err)
			restarted <- nil
			return
		}
		hs2 := &http.Server{Handler: newServer(t, dir, 2)}
		restarted <- hs2
		hs2.Serve(ln2)
	}()
	rest, err := io.ReadAll(s)
	if hs2 := <-restarted; hs2 != nil {
		defer hs2.Close()
	}
	if err != nil {
		t.Fatalf("after restart: %v", err)
	}
	got = append(got, rest...)
	if !bytes.Equal(got, data) {
		t.Fatalf("got %d bytes, different from the %d-byte image", len(got), len(data))
	}
	if s.Resumes < 1 {
		t.Fatalf("no resume counted")
	}
}

// corrupter flips one byte of the first n image responses.
type corrupter struct {
	h      http.Handler
	at     int64
	left   atomic.Int32
	served atomic.Int32
}

func (c *corrupter) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/v/1.0/"+medium.ImageGzip && r.Header.Get("Range") == "" && c.left.Add(-1) >= 0 {
		c.served.Add(1)
		w = &testenv.FlipWriter{ResponseWriter: w, At: c.at, Mask: 0x20}
	}
	c.h.ServeHTTP(w, r)
}

// TestStreamRejectsCorruptByte: one flipped byte makes the stream end in
// ErrChecksum; Fetch then downloads again and succeeds.
func TestStreamRejectsCorruptByte(t *testing.T) {
	dir := t.TempDir()
	data := imageDir(t, dir, "1.0", 3<<20, 9)
	c := &corrupter{h: newServer(t, dir, 2), at: 1234567}
	c.left.Store(1)
	ts := httptest.NewServer(c)
	defer ts.Close()

	// The stream itself rejects the image.
	m, err := NewMedia(t.Context(), ts.URL, fastOpts())
	if err != nil {
		t.Fatal(err)
	}
	s, err := m.OpenImage()
	if err != nil {
		t.Fatal(err)
	}
	_, err = io.ReadAll(s)
	s.Close()
	if !errors.Is(err, ErrChecksum) {
		t.Fatalf("corrupt image read with error %v, want ErrChecksum", err)
	}

	// Fetch tries again and gets the good image.
	c.left.Store(1)
	out := filepath.Join(t.TempDir(), "img")
	logFile := filepath.Join(t.TempDir(), "clone.log")
	res, err := Fetch(t.Context(), ts.URL, FetchOptions{MediaOptions: MediaOptions{Access: as("s001"), Node: "s001"}, Report: true, LogFile: logFile,
		Open: func() (io.Writer, error) { return os.Create(out) }})
	if err != nil {
		t.Fatal(err)
	}
	if res.Attempts != 2 {
		t.Fatalf("%d attempts, want 2 (one rejected)", res.Attempts)
	}
	if got, _ := os.ReadFile(out); !bytes.Equal(got, data) {
		t.Fatal("fetched image differs")
	}
	if c.served.Load() != 2 {
		t.Fatalf("corrupted %d responses, want 2", c.served.Load())
	}
	st, err := readState(dir, "s001")
	if err != nil {
		t.Fatal(err)
	}
	if st.State != fleet.Done || st.Version != "1.0" || st.Attempt != 2 || st.Log == "" {
		t.Fatalf("state %+v", st)
	}
	lg, _ := os.ReadFile(st.Log)
	if !bytes.Contains(lg, []byte("sha256 mismatch")) {
		t.Fatalf("uploaded log does not show the rejected attempt:\n%s", lg)
	}

	// Corrupt every time: Fetch gives up after Attempts and reports failure.
	c.left.Store(100)
	_, err = Fetch(t.Context(), ts.URL, FetchOptions{MediaOptions: MediaOptions{Access: as("s002"), Node: "s002"}, Report: true, Attempts: 2, LogFile: logFile,
		Open: func() (io.Writer, error) { return io.Discard, nil }})
	if !errors.Is(err, ErrChecksum) {
		t.Fatalf("err %v, want ErrChecksum", err)
	}
	if st, _ := readState(dir, "s002"); st.Summary() != "failed at unpack" {
		t.Fatalf("s002 %q, want failed at unpack", st.Summary())
	}
}

// TestStreamVersionChanged: a resume after the server started serving
// another file fails with ErrChanged instead of splicing two images.
func TestStreamVersionChanged(t *testing.T) {
	dir := t.TempDir()
	imageDir(t, dir, "1.0", 8<<20, 1)
	var mu sync.Mutex
	drop := true
	srv := newServer(t, dir, 2)
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		d := drop && r.URL.Path == "/v/1.0/"+medium.ImageGzip
		if d {
			drop = false
		}
		mu.Unlock()
		if d {
			// Drop the connection after 1 MiB and replace the image with
			// different content at the same path.
			srv.ServeHTTP(&cutWriter{ResponseWriter: w, left: 1 << 20, onCut: func() { imageDir(t, dir, "1.0", 8<<20, 2) }}, r)
			return
		}
		srv.ServeHTTP(w, r)
	}))
	defer ts.Close()
	m, err := NewMedia(t.Context(), ts.URL, fastOpts())
	if err != nil {
		t.Fatal(err)
	}
	s, err := m.OpenImage()
	if err != nil {
		t.Fatal(err)
	}
	_, err = io.ReadAll(s)
	if !errors.Is(err, ErrChanged) {
		t.Fatalf("err %v, want ErrChanged", err)
	}
}

// cutWriter stops the response after left bytes (a dropped connection).
type cutWriter struct {
	http.ResponseWriter
	left  int
	onCut func()
}

func (c *cutWriter) Write(p []byte) (int, error) {
	if c.left <= 0 {
		if c.onCut != nil {
			c.onCut()
			c.onCut = nil
		}
		panic(http.ErrAbortHandler)
	}
	if len(p) > c.left {
		p = p[:c.left]
	}
	c.left -= len(p)
	return c.ResponseWriter.Write(p)
}

// TestStreamGivesUp: a server that never comes back ends the stream with
// an error after Retries attempts, instead of retrying forever.
func TestStreamGivesUp(t *testing.T) {
	dir := t.TempDir()
	imageDir(t, dir, "1.0", 1<<20, 1)
	ts := httptest.NewServer(newServer(t, dir, 1))
	m, err := NewMedia(t.Context(), ts.URL, MediaOptions{Access: admin(), Backoff: 10 * time.Millisecond, MaxBackoff: 20 * time.Millisecond, Retries: 3})
	if err != nil {
		t.Fatal(err)
	}
	ts.Close()
	_, err = m.OpenImage()
	if err == nil {
		t.Fatal("opened an image from a dead server")
	}
	t.Log(err)
}

// TestMediaFS: the media is an fs.FS with the clone's files.
func TestMediaFS(t *testing.T) {
	dir := t.TempDir()
	imageDir(t, dir, "1.0", 100000, 1)
	ts := httptest.NewServer(newServer(t, dir, 1))
	defer ts.Close()
	m, err := NewMedia(t.Context(), ts.URL, fastOpts())
	if err != nil {
		t.Fatal(err)
	}
	b, err := fs.ReadFile(m, "node.sfdisk")
	if err != nil || !bytes.HasPrefix(b, []byte("label: dos")) {
		t.Fatalf("node.sfdisk: %q %v", b, err)
	}
	if _, err := m.Open("nodes"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("missing file: %v, want ErrNotExist", err)
	}
	if _, err := m.Open("../etc/passwd"); !errors.Is(err, fs.ErrInvalid) {
		t.Fatalf("bad path: %v", err)
	}
	img, err := fs.ReadFile(onlyOpen{m}, medium.ImageGzip)
	if err != nil || len(img) != 100000 {
		t.Fatalf("image: %d bytes, %v", len(img), err)
	}
}

type onlyOpen struct{ m *Media }

func (o onlyOpen) Open(name string) (fs.File, error) { return o.m.Open(name) }

func TestParseContentRange(t *testing.T) {
	for _, tc := range []struct {
		in           string
		start, total int64
		ok           bool
	}{
		{"bytes 100-199/1000", 100, 1000, true},
		{"bytes 0-0/*", 0, -1, true},
		{"bytes 5-/10", 5, 10, true},
		{"bytes -5/10", 0, 0, false},
		{"items 1-2/3", 0, 0, false},
		{"bytes 1-2", 0, 0, false},
		{"bytes x-2/3", 0, 0, false},
	} {
		s, n, ok := parseContentRange(tc.in)
		if ok != tc.ok || ok && (s != tc.start || n != tc.total) {
			t.Errorf("%q: %d %d %v", tc.in, s, n, ok)
		}
	}
}

func FuzzParseContentRange(f *testing.F) {
	f.Add("bytes 100-199/1000")
	f.Add("bytes 0-0/*")
	f.Fuzz(func(t *testing.T, s string) {
		start, total, ok := parseContentRange(s)
		if ok && (start < 0 || total < -1) {
			t.Fatalf("%q: start %d total %d", s, start, total)
		}
	})
}
