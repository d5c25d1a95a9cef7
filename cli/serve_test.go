package cli

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// syncBuffer is a bytes.Buffer safe for a command that prints while the
// test reads.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestServeListen: serve listens on this machine only unless told; every
// interface must be written out (0.0.0.0:PORT), ":PORT" is refused, and
// the server answers on the address it prints.
func TestServeListen(t *testing.T) {
	t.Parallel()
	if def := serveCmd(Output{}).Flags().Lookup("listen").DefValue; def != "127.0.0.1:8080" {
		t.Errorf("serve --listen defaults to %q, want 127.0.0.1:8080", def)
	}
	for _, args := range [][]string{{"serve", "--listen", "0.0.0.0:8080"}, {"serve", "--listen", "[::]:8080"}, {"serve", "--listen", "10.0.0.1:8080"}} {
		if err := checkCommandLine(args); err != nil {
			t.Errorf("clonecd %q: %v", args, err)
		}
	}
	for _, args := range [][]string{{"serve", "--listen", ":8080"}, {"serve", "--listen", "8080"}} {
		if err := checkCommandLine(args); err == nil {
			t.Errorf("clonecd %q accepted", args)
		}
	}

	_, img := packedTree(t)
	store := t.TempDir()
	lay := t.TempDir() + "/node.sfdisk"
	writeFile(t, lay, cliLayout)
	if code, _, errs := runMain(t, "publish", "--dir", store, "--layout", lay, img); code != 0 {
		t.Fatalf("publish: %s", errs)
	}
	var out, errb syncBuffer
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	f := &serveFlags{dir: store, listen: "127.0.0.1:0", maxStreams: 2, quiet: true}
	go func() { done <- runServe(ctx, Output{Stdout: &out, Stderr: &errb}, f, nil) }()
	re := regexp.MustCompile(`on (http://127\.0\.0\.1:[0-9]+),`)
	var url string
	for deadline := time.Now().Add(10 * time.Second); url == "" && time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if m := re.FindStringSubmatch(out.String()); m != nil {
			url = m[1]
		}
	}
	if url == "" {
		cancel()
		t.Fatalf("serve printed no address: %q %q", out.String(), errb.String())
	}
	resp, err := http.Get(url + "/CLONE_CD_VERSION")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if strings.TrimSpace(string(b)) != "1.0" {
		t.Errorf("GET /CLONE_CD_VERSION = %q", b)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("serve: %v", err)
	}
	if strings.Contains(errb.String(), "every interface") {
		t.Errorf("serve on 127.0.0.1 warned: %q", errb.String())
	}
	if !strings.Contains(out.String(), "stopped; 0 image streams served") {
		t.Errorf("serve did not stop cleanly: %q", out.String())
	}
}
