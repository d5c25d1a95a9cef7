package nodesync

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/klauspost/compress/zstd"
)

// Source delivers blobs. Fetch calls fn once for each sum it can deliver,
// in any order, with a reader of the content as the source has it: not
// trusted, fn checks it against the sum. A broken transfer may be retried,
// so fn may be called again for a sum whose earlier reader failed. Fetch
// returns an error naming the blobs it could not deliver, or the first
// error fn returned (which stops it).
type Source interface {
	Fetch(ctx context.Context, sums []Sum, fn func(Sum, io.Reader) error) error
}

// MissingError lists blobs a source does not have.
type MissingError struct{ Sums []Sum }

func (e *MissingError) Error() string {
	if len(e.Sums) == 1 {
		return fmt.Sprintf("blob %s: not found", e.Sums[0])
	}
	return fmt.Sprintf("%d blobs not found (first %s)", len(e.Sums), e.Sums[0])
}

func (e *MissingError) Unwrap() error { return fs.ErrNotExist }

// Fetch makes a Store a Source (a local blob directory, a mounted CD).
func (s *Store) Fetch(ctx context.Context, sums []Sum, fn func(Sum, io.Reader) error) error {
	var missing []Sum
	for _, sum := range sums {
		if err := ctx.Err(); err != nil {
			return err
		}
		b, err := s.Open(sum)
		if errors.Is(err, fs.ErrNotExist) {
			missing = append(missing, sum)
			continue
		}
		if err != nil {
			return err
		}
		rc, err := b.Content()
		if err == nil {
			err = fn(sum, rc)
			rc.Close()
		}
		b.Close()
		if err != nil {
			return err
		}
	}
	if len(missing) > 0 {
		return &MissingError{missing}
	}
	return nil
}

// HTTPSource fetches blobs from a server's blob handler, in batches (one
// POST streams many blobs) or, with Single, one GET per blob (what an
// HTTP cache in between can keep).
type HTTPSource struct {
	URL    string       // the handler's address, "http://server:8080/blobs/"
	Client *http.Client // nil: http.DefaultClient
	Header http.Header  // added to every request (credentials)
	Batch  int          // sums per POST; 0: 2048
	Single bool         // one GET per blob instead of batches
	// Retries is how often a broken transfer is taken up again where it
	// broke; 0: 2, negative: never.
	Retries int
	// Stall is how long an answer may move no byte before it counts as
	// broken; 0: 60 s.
	Stall time.Duration
}

// transportError marks a failure of the source (connection, framing)
// rather than of what fn did with a blob.
type transportError struct{ err error }

func (e *transportError) Error() string { return e.err.Error() }
func (e *transportError) Unwrap() error { return e.err }

// Fetch implements Source.
func (h *HTTPSource) Fetch(ctx context.Context, sums []Sum, fn func(Sum, io.Reader) error) error {
	batch := h.Batch
	if batch <= 0 {
		batch = 2048
	}
	if h.Single {
		batch = 1
	}
	retries := h.Retries
	if retries == 0 {
		retries = 2
	}
	dec, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxWindow(64<<20))
	if err != nil {
		return err
	}
	defer dec.Close()
	var missing []Sum
	for len(sums) > 0 {
		n := min(batch, len(sums))
		todo := sums[:n]
		for attempt := 0; ; attempt++ {
			var done int
			var miss []Sum
			if h.Single {
				done, miss, err = h.get(ctx, todo[0], dec, fn)
			} else {
				done, miss, err = h.post(ctx, todo, dec, fn)
			}
			missing = append(missing, miss...)
			todo = todo[done:]
			var te *transportError
			if err == nil || !errors.As(err, &te) || attempt >= retries || ctx.Err() != nil {
				if err != nil {
					return err
				}
				break
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(time.Duration(attempt+1) * 200 * time.Millisecond):
			}
		}
		sums = sums[n:]
	}
	if len(missing) > 0 {
		return &MissingError{missing}
	}
	return nil
}

func (h *HTTPSource) client() *http.Client {
	if h.Client != nil {
		return h.Client
	}
	return http.DefaultClient
}

// stallReader cancels its request when no byte came for a while.
type stallReader struct {
	rc     io.ReadCloser
	timer  *time.Timer
	stall  time.Duration
	cancel context.CancelFunc
}

func (s *stallReader) Read(p []byte) (int, error) {
	n, err := s.rc.Read(p)
	s.timer.Reset(s.stall)
	return n, err
}

func (s *stallReader) Close() error {
	s.timer.Stop()
	err := s.rc.Close()
	s.cancel()
	return err
}

func (h *HTTPSource) do(ctx context.Context, method, u string, body io.Reader) (*http.Response, error) {
	stall := h.Stall
	if stall <= 0 {
		stall = 60 * time.Second
	}
	ctx, cancel := context.WithCancel(ctx)
	timer := time.AfterFunc(stall, cancel)
	resp, err := h.send(ctx, method, u, body)
	if err != nil || resp.StatusCode != http.StatusOK {
		timer.Stop()
		cancel()
		return resp, err
	}
	resp.Body = &stallReader{rc: resp.Body, timer: timer, stall: stall, cancel: cancel}
	return resp, nil
}

func (h *HTTPSource) send(ctx context.Context, method, u string, body io.Reader) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return nil, err
	}
	for k, v := range h.Header {
		req.Header[k] = v
	}
	req.Header.Set("Accept-Encoding", EncZstd)
	resp, err := h.client().Do(req)
	if err != nil {
		return nil, &transportError{err}
	}
	if resp.StatusCode == http.StatusOK {
		return resp, nil
	}
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 200))
	resp.Body.Close()
	err = fmt.Errorf("%s %s: %s: %s", method, u, resp.Status, strings.TrimSpace(string(msg)))
	if resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests {
		return resp, &transportError{err}
	}
	return resp, err
}

// get fetches one blob with GET.
func (h *HTTPSource) get(ctx context.Context, sum Sum, dec *zstd.Decoder, fn func(Sum, io.Reader) error) (int, []Sum, error) {
	u, err := url.JoinPath(h.URL, sum.String())
	if err != nil {
		return 0, nil, err
	}
	resp, err := h.do(ctx, http.MethodGet, u, nil)
	if resp != nil && resp.StatusCode == http.StatusNotFound {
		return 1, []Sum{sum}, nil
	}
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	enc := EncRaw
	if resp.Header.Get("Content-Encoding") == EncZstd {
		enc = EncZstd
	}
	if err := h.deliver(sum, enc, resp.Body, dec, fn); err != nil {
		return 0, nil, err
	}
	return 1, nil, nil
}

// post fetches a batch; it returns how many sums were dealt with (fn
// called or found missing) before an error.
func (h *HTTPSource) post(ctx context.Context, sums []Sum, dec *zstd.Decoder, fn func(Sum, io.Reader) error) (int, []Sum, error) {
	var body bytes.Buffer
	for _, s := range sums {
		body.WriteString(s.String())
		body.WriteByte('\n')
	}
	resp, err := h.do(ctx, http.MethodPost, h.URL, &body)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != BatchType {
		return 0, nil, fmt.Errorf("POST %s: answer of type %q, want %s", h.URL, ct, BatchType)
	}
	br := bufio.NewReaderSize(resp.Body, 64<<10)
	var missing []Sum
	for i, want := range sums {
		line, err := readLine(br)
		if err != nil {
			return i, missing, &transportError{fmt.Errorf("POST %s: %w", h.URL, err)}
		}
		sum, enc, n, err := parseFrameHeader(line)
		if err == nil && sum != want {
			err = fmt.Errorf("frame for %s, want %s", sum, want)
		}
		if err != nil {
			return i, missing, fmt.Errorf("POST %s: %w", h.URL, err)
		}
		if enc == "missing" {
			missing = append(missing, sum)
			continue
		}
		lr := &io.LimitedReader{R: br, N: n}
		if err := h.deliver(sum, enc, lr, dec, fn); err != nil {
			return i, missing, err
		}
	}
	if line, err := readLine(br); err != nil || line != "end" {
		return len(sums), missing, &transportError{fmt.Errorf("POST %s: no end of batch", h.URL)}
	}
	return len(sums), missing, nil
}

// deliver hands one blob's content to fn, then reads the rest of the
// frame; a read failure inside is a transport error.
func (h *HTTPSource) deliver(sum Sum, enc string, r io.Reader, dec *zstd.Decoder, fn func(Sum, io.Reader) error) error {
	src := &errReader{r: r}
	var content io.Reader = src
	if enc == EncZstd {
		if err := dec.Reset(src); err != nil {
			if src.err != nil {
				return &transportError{fmt.Errorf("blob %s: %w", sum, src.err)}
			}
			content = failReader{fmt.Errorf("blob %s: %w", sum, err)}
		} else {
			content = dec
		}
	}
	err := fn(sum, content)
	if src.err == nil {
		_, src.err = io.Copy(io.Discard, src)
	}
	if src.err != nil {
		return &transportError{fmt.Errorf("blob %s: %w", sum, src.err)}
	}
	return err
}

// errReader remembers the first error other than io.EOF.
type errReader struct {
	r   io.Reader
	err error
}

func (e *errReader) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if err != nil && err != io.EOF && e.err == nil {
		e.err = err
	}
	if lr, ok := e.r.(*io.LimitedReader); ok && err == io.EOF && lr.N > 0 && e.err == nil {
		e.err = io.ErrUnexpectedEOF
	}
	return n, err
}

func readLine(br *bufio.Reader) (string, error) {
	line, err := br.ReadSlice('\n')
	if err == io.EOF && len(line) == 0 {
		return "", io.ErrUnexpectedEOF
	}
	if err != nil {
		return "", err
	}
	return string(line[:len(line)-1]), nil
}

// failReader hands fn a content the source could not decode.
type failReader struct{ err error }

func (f failReader) Read([]byte) (int, error) { return 0, f.err }
