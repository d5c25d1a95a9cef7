package netclone

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/clonecd/clonecd/medium"
	"github.com/clonecd/clonecd/progress"
	"github.com/clonecd/clonecd/swarm"
)

// Stream is a resumable, checksummed image download.
type Stream struct {
	m       *Media
	file    string // the image's medium name (node.cpio.gz, node.cpio.zst)
	name    string // its path on the server
	want    string // expected sha256 ("" = unchecked)
	h       hash.Hash
	etag    string
	size    int64 // -1 until known
	off     int64
	body    io.ReadCloser
	mu      sync.Mutex // guards cancel (the idle timer calls it)
	cancel  context.CancelFunc
	idle    *time.Timer
	fails   int
	busy    time.Duration // waited on busy answers (503 with Retry-After)
	Resumes int           // reconnections after the first
	done    bool
	// swarm, when not nil, is where body comes from (MediaOptions.Swarm);
	// nil after it failed: the stream went on over HTTP.
	swarm      *swarmPart
	swarmStats swarm.Stats // the swarm's counts once it closed
	fromSwarm  bool        // the stream started in the swarm
}

// Name is the image's medium name: medium.ImageGzip or medium.ImageZstd.
func (s *Stream) Name() string { return s.file }

// Size is the image size (-1 if the server did not say).
func (s *Stream) Size() int64 { return s.size }

// Offset is how many bytes have been read.
func (s *Stream) Offset() int64 { return s.off }

// SHA256 is the expected hash ("" if the server has none).
func (s *Stream) SHA256() string { return s.want }

// connect (re)opens the HTTP stream at s.off, retrying with backoff.
func (s *Stream) connect() error {
	o := &s.m.opts
	for {
		err := s.connectOnce()
		if err == nil {
			return nil
		}
		var perm *permanentError
		if errors.As(err, &perm) {
			return perm.err
		}
		if s.m.ctx.Err() != nil {
			return err
		}
		// A busy server (its stream queue full) says when to come back;
		// waiting for it is not a failure, up to BusyTimeout in all.
		var ra *retryAfterError
		if errors.As(err, &ra) && ra.d > 0 && s.busy+ra.d <= o.BusyTimeout {
			s.busy += ra.d
			o.Logf("netclone: %v; again in %s", err, ra.d)
			if err := o.wait(s.m.ctx, 1, ra.d); err != nil {
				return err
			}
			continue
		}
		s.fails++
		if s.fails >= o.Retries {
			return fmt.Errorf("%w (gave up after %d failed attempts in a row)", err, s.fails)
		}
		o.Logf("netclone: %v; retry %d/%d at byte %d", err, s.fails, o.Retries, s.off)
		if err := o.wait(s.m.ctx, s.fails, 0); err != nil {
			return err
		}
	}
}

type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

type retryAfterError struct {
	err error
	d   time.Duration
}

func (e *retryAfterError) Error() string { return e.err.Error() }
func (e *retryAfterError) Unwrap() error { return e.err }

func (s *Stream) connectOnce() error {
	ctx, cancel := context.WithCancel(s.m.ctx)
	req, err := s.m.request(ctx, http.MethodGet, s.name)
	if err != nil {
		cancel()
		return &permanentError{err}
	}
	if s.off > 0 {
		req.Header.Set("Range", fmt.Sprintf("bytes=%d-", s.off))
		if s.etag != "" {
			req.Header.Set("If-Range", s.etag)
		}
	}
	u := s.m.url(s.name)
	resp, err := s.m.opts.Client.Do(req)
	if err != nil {
		cancel()
		return fmt.Errorf("GET %s: %w", u, err)
	}
	fail := func(e error) error {
		resp.Body.Close()
		cancel()
		return e
	}
	switch {
	case resp.StatusCode == http.StatusPartialContent && s.off > 0:
		start, total, ok := parseContentRange(resp.Header.Get("Content-Range"))
		if !ok || start != s.off {
			return fail(&permanentError{fmt.Errorf("GET %s: server resumed at %q, wanted byte %d", u, resp.Header.Get("Content-Range"), s.off)})
		}
		if s.size >= 0 && total >= 0 && total != s.size {
			return fail(&permanentError{fmt.Errorf("GET %s: %w (size %d, was %d)", u, ErrChanged, total, s.size)})
		}
		if et := resp.Header.Get("ETag"); s.etag != "" && et != "" && et != s.etag {
			return fail(&permanentError{fmt.Errorf("GET %s: %w (ETag %s, was %s)", u, ErrChanged, et, s.etag)})
		}
		s.Resumes++
	case resp.StatusCode == http.StatusOK && s.off == 0:
		s.etag = resp.Header.Get("ETag")
		s.size = resp.ContentLength
	case resp.StatusCode == http.StatusOK: // If-Range did not match
		return fail(&permanentError{fmt.Errorf("GET %s: %w (ETag now %s, was %s)", u, ErrChanged, resp.Header.Get("ETag"), s.etag)})
	case resp.StatusCode == http.StatusRequestedRangeNotSatisfiable && s.size >= 0 && s.off == s.size:
		resp.Body.Close()
		s.body = io.NopCloser(strings.NewReader(""))
		s.setCancel(cancel)
		return nil
	case resp.StatusCode == http.StatusNotFound && resp.Header.Get(ServerHeader) != "":
		return fail(&permanentError{&fs.PathError{Op: "open", Path: u, Err: fs.ErrNotExist}})
	case resp.StatusCode == http.StatusServiceUnavailable || resp.StatusCode == http.StatusTooManyRequests:
		return fail(&retryAfterError{statusError(http.MethodGet, u, resp, errorBody(resp)), parseRetryAfter(resp.Header.Get("Retry-After"))})
	case resp.StatusCode >= 400 && resp.StatusCode < 500:
		return fail(&permanentError{statusError(http.MethodGet, u, resp, errorBody(resp))})
	default:
		return fail(statusError(http.MethodGet, u, resp, errorBody(resp)))
	}
	s.body = resp.Body
	s.setCancel(cancel)
	if s.idle == nil {
		s.idle = time.AfterFunc(s.m.opts.IdleTimeout, func() { s.cancelBody() })
	}
	s.idle.Reset(s.m.opts.IdleTimeout)
	return nil
}

func (s *Stream) setCancel(c context.CancelFunc) {
	s.mu.Lock()
	s.cancel = c
	s.mu.Unlock()
}

func (s *Stream) cancelBody() {
	s.mu.Lock()
	c := s.cancel
	s.mu.Unlock()
	if c != nil {
		c()
	}
}

// parseContentRange reads "bytes START-END/TOTAL" (TOTAL may be *: -1).
func parseContentRange(v string) (start, total int64, ok bool) {
	v, found := strings.CutPrefix(v, "bytes ")
	if !found {
		return 0, 0, false
	}
	rng, tot, found := strings.Cut(v, "/")
	if !found {
		return 0, 0, false
	}
	a, _, found := strings.Cut(rng, "-")
	if !found {
		return 0, 0, false
	}
	start, err := strconv.ParseInt(a, 10, 64)
	if err != nil || start < 0 {
		return 0, 0, false
	}
	total = -1
	if tot != "*" {
		if total, err = strconv.ParseInt(tot, 10, 64); err != nil || total < 0 {
			return 0, 0, false
		}
	}
	return start, total, true
}

// Read reads the image, reconnecting after drops.
func (s *Stream) Read(p []byte) (int, error) {
	if s.done {
		return 0, io.EOF
	}
	for {
		if s.body == nil {
			if err := s.connect(); err != nil {
				return 0, err
			}
		}
		n, err := s.body.Read(p)
		if n > 0 {
			s.h.Write(p[:n])
			s.off += int64(n)
			s.fails = 0
			s.idle.Reset(s.m.opts.IdleTimeout)
		}
		if err == io.EOF && (s.size < 0 || s.off == s.size) {
			s.closeBody()
			if s.size >= 0 && s.off != s.size {
				return n, fmt.Errorf("%s: short stream: %d of %d bytes", s.name, s.off, s.size)
			}
			s.done = true
			if s.want != "" {
				if got := hex.EncodeToString(s.h.Sum(nil)); got != s.want {
					return n, fmt.Errorf("%s: %w: got %s, %s says %s", s.m.url(s.name), ErrChecksum, got, medium.SumName(s.file), s.want)
				}
			}
			if n > 0 {
				return n, nil
			}
			return 0, io.EOF
		}
		if err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			s.closeBody()
			if s.m.ctx.Err() != nil {
				return n, s.m.ctx.Err()
			}
			if s.swarm != nil {
				s.leaveSwarm(err)
				if n > 0 {
					return n, nil
				}
				continue
			}
			if s.size >= 0 && s.off > s.size {
				return n, &permanentError{fmt.Errorf("%s: server sent more than %d bytes", s.name, s.size)}
			}
			s.fails++
			if s.fails >= s.m.opts.Retries {
				return n, fmt.Errorf("%s at byte %d: %w (gave up after %d failed attempts in a row)", s.m.url(s.name), s.off, err, s.fails)
			}
			s.m.opts.Logf("netclone: %s dropped at byte %d: %v; resuming (%d/%d)", s.name, s.off, err, s.fails, s.m.opts.Retries)
			if werr := s.m.opts.wait(s.m.ctx, s.fails, 0); werr != nil {
				return n, werr
			}
			if n > 0 {
				return n, nil
			}
			continue
		}
		return n, nil
	}
}

func (s *Stream) closeBody() {
	if s.body != nil {
		s.body.Close()
		s.body = nil
	}
	s.cancelBody()
	s.setCancel(nil)
}

// Close ends the stream.
func (s *Stream) Close() error {
	s.closeBody()
	if s.idle != nil {
		s.idle.Stop()
	}
	if s.swarm != nil {
		seed := s.swarm.seed
		if !s.done {
			seed = 0
		}
		s.swarmStats = s.swarm.close(seed)
		s.swarm = nil
		st := s.swarmStats
		s.m.opts.Logf("netclone: %s through the swarm: %s from peers, %s from the server (webseed), %s sent to peers",
			s.file, progress.Bytes(st.FromPeers), progress.Bytes(st.FromWebSeeds), progress.Bytes(st.Uploaded))
	}
	return nil
}

// Stat describes the image.
func (s *Stream) Stat() (fs.FileInfo, error) {
	return fileInfo{name: s.file, size: s.size}, nil
}

// errorBody reads the start of an error answer's body (its message).
func errorBody(resp *http.Response) []byte {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	return b
}
