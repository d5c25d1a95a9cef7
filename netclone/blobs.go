package netclone

import (
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/clonecd/clonecd/nodesync"
)

// maxBlobsBody bounds a batch request of the blob store: its default
// MaxBatch sums of 64 hex digits and a newline.
const maxBlobsBody = 16384 * 65

// blobs serves the store's blob store (versions.Store.BlobDir) at
// nodesync.Prefix. The server creates nothing: until a publish made the
// directory every blob is 404.
type blobs struct {
	dir string

	handlerMu sync.Mutex
	handler   http.Handler
}

func (b *blobs) get() http.Handler {
	b.handlerMu.Lock()
	defer b.handlerMu.Unlock()
	if b.handler != nil {
		return b.handler
	}
	if st, err := os.Stat(b.dir); err != nil || !st.IsDir() {
		return nil
	}
	store, err := nodesync.OpenStore(b.dir) // exists: creates nothing
	if err != nil {
		return nil
	}
	b.handler = store.Handler(nodesync.HandlerOptions{})
	return b.handler
}

func (s *Server) handleBlobs(w http.ResponseWriter, r *http.Request) {
	h := s.blobs.get()
	if h == nil {
		http.Error(w, "no blob store: nothing published with clonecd publish yet", http.StatusNotFound)
		return
	}
	h.ServeHTTP(w, r)
}

// HTTPClient is an HTTP client with a's TLS settings for a client that
// makes its own requests (clonecd sync's blob source): no overall
// timeout, a minute for an answer's headers.
func (a Access) HTTPClient() *http.Client {
	return &http.Client{Transport: a.transport(time.Minute)}
}

// Header is a's credential as request headers (nil: none).
func (a Access) Header() http.Header {
	if a.Credential.User == "" {
		return nil
	}
	r := &http.Request{Header: http.Header{}}
	a.authorize(r)
	return r.Header
}
