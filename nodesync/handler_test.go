package nodesync

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"io"
	"io/fs"
	"net/http"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"
)

// TestHandler: one blob by GET (strong ETag, immutable, 304, Range, zstd
// when asked for and stored so), batches by POST, and the refusals.
func TestHandler(t *testing.T) {
	store := newStore(t)
	text := []byte(strings.Repeat("0123456789abcdef", 8192)) // stored zstd
	random := []byte(pseudoRandom(5000))                     // stored raw
	ts, err := store.Put(text)
	if err != nil {
		t.Fatal(err)
	}
	rs, err := store.Put(random)
	if err != nil {
		t.Fatal(err)
	}
	srv := serve(t, store)
	missing := Sum(sha256.Sum256([]byte("not stored")))
	for _, tt := range []struct {
		name    string
		method  string
		path    string
		header  map[string]string
		body    string
		status  int
		want    []byte // body (decoded when zstd)
		headers map[string]string
	}{
		{name: "raw blob", path: rs.String(), status: 200, want: random,
			headers: map[string]string{"Etag": `"` + rs.String() + `"`, "Cache-Control": "public, max-age=31536000, immutable", "Content-Encoding": ""}},
		{name: "zstd blob, identity", path: ts.String(), status: 200, want: text,
			headers: map[string]string{"Etag": `"` + ts.String() + `"`, "Content-Length": "131072", "Content-Encoding": ""}},
		{name: "zstd blob, zstd", path: ts.String(), header: map[string]string{"Accept-Encoding": "gzip, zstd"}, status: 200, want: text,
			headers: map[string]string{"Etag": `"` + ts.String() + `.zst"`, "Content-Encoding": "zstd", "Vary": "Accept-Encoding"}},
		{name: "zstd refused by q=0", path: ts.String(), header: map[string]string{"Accept-Encoding": "zstd;q=0"}, status: 200, want: text,
			headers: map[string]string{"Content-Encoding": ""}},
		{name: "range of a raw blob", path: rs.String(), header: map[string]string{"Range": "bytes=100-199"}, status: 206, want: random[100:200]},
		{name: "range of a zstd blob", path: ts.String(), header: map[string]string{"Range": "bytes=70000-70009"}, status: 206, want: text[70000:70010]},
		{name: "suffix range of a zstd blob", path: ts.String(), header: map[string]string{"Range": "bytes=-5"}, status: 206, want: text[len(text)-5:]},
		{name: "not modified", path: rs.String(), header: map[string]string{"If-None-Match": `"` + rs.String() + `"`}, status: 304},
		{name: "head", method: "HEAD", path: rs.String(), status: 200, headers: map[string]string{"Content-Length": "5000"}},
		{name: "missing", path: missing.String(), status: 404},
		{name: "not a hash", path: "../etc/passwd", status: 404},
		{name: "upper case hash", path: strings.ToUpper(rs.String()), status: 404},
		{name: "put", method: "PUT", path: rs.String(), status: 405},
		{name: "get the batch URL", path: "", status: 405},
		{name: "batch, bad line", method: "POST", body: rs.String() + "\nxyz\n", status: 400},
		{name: "batch, too many", method: "POST", body: strings.Repeat(rs.String()+"\n", 16385), status: 413},
	} {
		method := tt.method
		if method == "" {
			method = "GET"
		}
		req, _ := http.NewRequest(method, srv.URL+tt.path, strings.NewReader(tt.body))
		for k, v := range tt.header {
			req.Header.Set(k, v)
		}
		resp, err := (&http.Client{Transport: &http.Transport{DisableCompression: true}}).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body := readAll(t, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tt.status {
			t.Errorf("%s: %s %s = %s; want %d", tt.name, method, tt.path, resp.Status, tt.status)
			continue
		}
		for k, v := range tt.headers {
			if got := resp.Header.Get(k); got != v {
				t.Errorf("%s: header %s = %q; want %q", tt.name, k, got, v)
			}
		}
		if resp.Header.Get("Content-Encoding") == "zstd" {
			d, _ := zstd.NewReader(nil)
			body, err = d.DecodeAll(body, nil)
			d.Close()
			if err != nil {
				t.Fatalf("%s: %v", tt.name, err)
			}
		}
		if tt.want != nil && !bytes.Equal(body, tt.want) {
			t.Errorf("%s: body of %d bytes, not the %d wanted", tt.name, len(body), len(tt.want))
		}
	}
}

// TestSources: the batch and single HTTP sources and the store itself
// deliver each blob and name the missing ones.
func TestSources(t *testing.T) {
	store := newStore(t)
	var sums []Sum
	want := map[Sum][]byte{}
	// A compressible content under 256 bytes: zstd leaves its size out of
	// the frame header unless told otherwise.
	for i, s := range []string{strings.Repeat("a", 100000), pseudoRandom(3000), "x", strings.Repeat("c", 200), strings.Repeat("b", 7)} {
		b := []byte(s)
		if i == 4 {
			b = b[:0:0]
		}
		sum, err := store.Put(b)
		if err != nil {
			t.Fatal(err)
		}
		if len(b) > 0 {
			sums = append(sums, sum)
			want[sum] = b
		}
	}
	missing := Sum(sha256.Sum256([]byte("not stored")))
	srv := serve(t, store)
	for _, tt := range []struct {
		name string
		src  Source
	}{
		{"store", store},
		{"batch", &HTTPSource{URL: srv.URL}},
		{"batches of one", &HTTPSource{URL: srv.URL, Batch: 1}},
		{"single", &HTTPSource{URL: srv.URL, Single: true}},
	} {
		got := map[Sum][]byte{}
		err := tt.src.Fetch(context.Background(), append(append([]Sum{}, sums...), missing), func(s Sum, r io.Reader) error {
			b, err := io.ReadAll(r)
			got[s] = b
			return err
		})
		var me *MissingError
		if !errors.As(err, &me) || len(me.Sums) != 1 || me.Sums[0] != missing || !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s: Fetch = %v; want the one missing blob named", tt.name, err)
		}
		for _, s := range sums {
			if !bytes.Equal(got[s], want[s]) {
				t.Errorf("%s: blob %s: %d bytes, want %d", tt.name, s, len(got[s]), len(want[s]))
			}
		}
	}
	// A source that answers with an error status.
	bad := &HTTPSource{URL: srv.URL + "nothing/here/"}
	if err := bad.Fetch(context.Background(), sums, func(Sum, io.Reader) error { return nil }); err == nil || !strings.Contains(err.Error(), "404") {
		t.Errorf("Fetch from a wrong URL = %v; want the 404 named", err)
	}
}

// fuzzTransport answers every request with the same body.
type fuzzTransport struct{ body []byte }

func (f fuzzTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	h := http.Header{}
	h.Set("Content-Type", BatchType)
	return &http.Response{StatusCode: 200, Header: h, Body: io.NopCloser(bytes.NewReader(f.body)), Request: r}, nil
}

// FuzzBatch: whatever a server answers to a batch, the client neither
// panics nor hands fn a blob it did not ask for, nor more bytes than the
// frame holds.
func FuzzBatch(f *testing.F) {
	a := Sum(sha256.Sum256([]byte("a")))
	b := Sum(sha256.Sum256([]byte("bb")))
	f.Add([]byte(a.String() + " raw 1\na" + b.String() + " raw 2\nbbend\n"))
	f.Add([]byte(a.String() + " missing 0\n" + b.String() + " zstd 5\n\x28\xb5\x2f\xfd\x00end\n"))
	f.Add([]byte(a.String() + " raw 99999999999\n"))
	f.Fuzz(func(t *testing.T, body []byte) {
		src := &HTTPSource{URL: "http://fuzz/blobs/", Client: &http.Client{Transport: fuzzTransport{body}}, Retries: -1}
		asked := map[Sum]bool{a: true, b: true}
		src.Fetch(context.Background(), []Sum{a, b}, func(s Sum, r io.Reader) error {
			if !asked[s] {
				t.Fatalf("fn called for %s, not asked for", s)
			}
			n, _ := io.Copy(io.Discard, io.LimitReader(r, 1<<20))
			if n > int64(len(body)) && !bytes.Contains(body, []byte(" zstd ")) {
				t.Fatalf("fn read %d bytes from a %d-byte answer", n, len(body))
			}
			return nil
		})
	})
}
