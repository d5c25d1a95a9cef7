package netclone

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/clonecd/clonecd/internal/atomicfile"
	"github.com/clonecd/clonecd/medium"
	"github.com/clonecd/clonecd/swarm"
	"github.com/clonecd/clonecd/trust"
)

// FetchOptions tunes Fetch and FetchFile. The zero value downloads the
// current version's image once more after a sha256 mismatch (3 attempts),
// at full speed, without reporting.
type FetchOptions struct {
	MediaOptions
	Report    bool                      // send state and the log to the server as a node would
	LogFile   string                    // the log Fetch writes and uploads (with Report)
	Attempts  int                       // whole downloads tried when the sha256 mismatches (0: 3)
	LimitRate int64                     // bytes per second at most (0: no limit)
	Progress  func(done, total int64)   // called as bytes arrive
	Logf      func(string, ...any)      // messages (nil: none)
	Open      func() (io.Writer, error) // Fetch: where each attempt writes (required); FetchFile sets it
	// Trust, when not nil, checks the version as the cloner does before
	// the image is accepted: MANIFEST's signature by one of its keys
	// (with no key: UNSIGNED, the manifest still checked for damage),
	// every other file the manifest lists (layout, ks.cfg, nodes,
	// clonecd.conf, kernel, initrd, ...) before the stream starts, and the
	// image against the manifest's sha256 at its end: a changed image is
	// refused (*medium.MismatchError naming it) even when the server's
	// .sha256 matches it.
	Trust *trust.Verifier
}

// FetchResult describes a finished download.
type FetchResult struct {
	Version string
	Image   string // the image's medium name: node.cpio.gz or node.cpio.zst
	Path    string // FetchFile: the file written
	Bytes   int64
	SHA256  string // "": the server has no sha256 file, nothing was checked
	// Trust says how the version was trusted with FetchOptions.Trust:
	// "signed by key ID" or "UNSIGNED" ("" without Trust).
	Trust    string
	Attempts int
	Resumes  int
	Elapsed  time.Duration
	// Swarm is the last attempt's swarm counts (MediaOptions.Swarm); nil:
	// it came over HTTP only.
	Swarm *swarm.Stats
}

// sink receives one attempt: commit keeps it, abort drops it.
type sink interface {
	io.Writer
	commit() error
	abort()
}

type plainSink struct{ io.Writer }

func (plainSink) commit() error { return nil }
func (plainSink) abort()        {}

type fileSink struct{ *atomicfile.File }

func (f fileSink) commit() error { return f.Commit() }
func (f fileSink) abort()        { f.Cleanup() }

// Fetch downloads the image from the server as the network cloner streams
// it (resuming after drops, checking its sha256, trying again after a
// mismatch) into the writer o.Open returns for each attempt. With
// o.Report it reports like a node: waiting, cloning n%, done or failed,
// and uploads o.LogFile.
func Fetch(ctx context.Context, serverURL string, o FetchOptions) (*FetchResult, error) {
	if o.Open == nil {
		return nil, errors.New("netclone.Fetch: no FetchOptions.Open")
	}
	return fetch(ctx, serverURL, o, func(string) (string, func() (sink, error), error) {
		return "", func() (sink, error) {
			w, err := o.Open()
			return plainSink{w}, err
		}, nil
	})
}

// FetchFile is Fetch into the file path ("": the image's medium name,
// node.cpio.gz or node.cpio.zst, in the current directory): each attempt
// writes a temporary file beside it (mode 0600: the image holds the
// node's secrets), which replaces path (fsync, rename, fsync of the
// directory) only after the whole image arrived and its sha256 matched.
// A failed fetch leaves path as it was. A path named for the other
// compression (x.gz for a zstd version) is refused before the download.
func FetchFile(ctx context.Context, serverURL, path string, o FetchOptions) (*FetchResult, error) {
	return fetch(ctx, serverURL, o, func(img string) (string, func() (sink, error), error) {
		p := path
		if p == "" {
			p = img
		}
		if err := medium.CheckImageName(p, img); err != nil {
			return "", nil, err
		}
		return p, func() (sink, error) {
			f, err := atomicfile.Create(p, 0o600)
			if err != nil {
				return nil, err
			}
			return fileSink{f}, nil
		}, nil
	})
}

// target returns, for the version's image (its medium name), the path
// written ("" for a writer) and what opens each attempt's sink; an error
// refuses the download before it starts.
type target func(image string) (string, func() (sink, error), error)

func fetch(ctx context.Context, serverURL string, o FetchOptions, to target) (*FetchResult, error) {
	if o.Attempts <= 0 {
		o.Attempts = 3
	}
	var logw io.Writer = io.Discard
	if o.LogFile != "" {
		f, err := os.OpenFile(o.LogFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		logw = f
	}
	logf := func(format string, a ...any) {
		fmt.Fprintf(logw, time.Now().UTC().Format("15:04:05 ")+format+"\n", a...)
		if o.Logf != nil {
			o.Logf(format, a...)
		}
	}
	o.MediaOptions.Logf = logf
	start := time.Now()
	var rep *Reporter
	if o.Report && o.Node != "" {
		rep = NewReporter(serverURL, o.Node)
		rep.LogFile, rep.Logf, rep.Access = o.LogFile, logf, o.Access
	}
	m, err := NewMedia(ctx, serverURL, o.MediaOptions)
	if err != nil {
		logf("netclone: %v", err)
		if rep != nil {
			rep.Done(stepError{"setup", err})
		}
		return nil, err
	}
	res := &FetchResult{Version: m.Version}
	var man *medium.Manifest
	if o.Trust != nil {
		if rep != nil {
			rep.Version = m.Version
			rep.Begin()
			rep.Step("setup")
		}
		var st trust.Status
		if man, st, err = verifyMedia(m, o.Trust); err != nil {
			logf("netclone: %v", err)
			if rep != nil {
				rep.Done(stepError{"setup", err})
			}
			return nil, err
		}
		res.Trust = st.String()
		if rep != nil {
			rep.Trust = res.Trust
		}
		logf("netclone: version %s: %s", m.Version, st)
	}
	// The version's image: the one its manifest lists (with Trust), else
	// the one the server has (Media.FindImage).
	if man != nil {
		if f, ok := man.Image(); ok {
			res.Image = f.Name
		}
	}
	if res.Image == "" {
		res.Image, err = m.FindImage()
	}
	var open func() (sink, error)
	if err == nil {
		res.Path, open, err = to(res.Image)
	}
	if err != nil {
		logf("netclone: %v", err)
		if rep != nil {
			rep.Done(stepError{"setup", err})
		}
		return nil, err
	}
	logf("netclone: fetching %s version %s from %s", res.Image, m.Version, serverURL)
	if rep != nil {
		if o.Trust == nil {
			rep.Version = m.Version
			rep.Begin()
		}
		rep.Step("unpack")
	}
	for attempt := 1; ; attempt++ {
		res.Attempts = attempt
		if rep != nil {
			rep.Attempt = attempt
		}
		n, sum, resumes, err := fetchOnce(m, man, res.Image, o, open, rep, res)
		res.Bytes, res.SHA256, res.Resumes = n, sum, res.Resumes+resumes
		if err == nil {
			res.Elapsed = time.Since(start)
			check := "sha256 " + sum + " OK"
			if sum == "" {
				check = "no sha256 on the server: not checked"
			}
			logf("netclone: %d bytes, %s, %d resumes, %d attempts, %s", n, check, res.Resumes, attempt, res.Elapsed.Round(time.Millisecond))
			if rep != nil {
				rep.Done(nil)
			}
			return res, nil
		}
		logf("netclone: attempt %d: %v", attempt, err)
		if !errors.Is(err, ErrChecksum) || attempt >= o.Attempts || ctx.Err() != nil {
			if rep != nil {
				rep.Done(stepError{"unpack", err})
			}
			return res, err
		}
	}
}

// verifyMedia reads and checks the version's MANIFEST with v, then every
// file it lists, as the cloner does before it partitions, but the image
// and its .sha256 (the image is checked against the manifest itself, as
// it arrives).
func verifyMedia(m *Media, v *trust.Verifier) (*medium.Manifest, trust.Status, error) {
	man, st, err := v.ReadManifest(m)
	if err != nil || man == nil {
		return man, st, err
	}
	for _, f := range man.Files {
		if medium.IsImage(f.Name) || medium.IsImage(strings.TrimSuffix(f.Name, medium.SumSuffix)) {
			continue
		}
		if _, err := trust.ReadFile(m, man, f.Name); err != nil {
			return nil, st, err
		}
	}
	return man, st, nil
}

// fetchOnce streams the image img once into a new sink, which it commits
// only after the stream ended with its sha256 matched (the server's, and
// man's when not nil).
func fetchOnce(m *Media, man *medium.Manifest, img string, o FetchOptions, open func() (sink, error), rep *Reporter, res *FetchResult) (int64, string, int, error) {
	s, err := m.openImage(img)
	if err != nil {
		return 0, "", 0, err
	}
	defer func() {
		s.Close() // seeds first when asked to (SwarmOptions.Seed)
		if s.fromSwarm {
			st := s.SwarmStats()
			res.Swarm = &st
		}
	}()
	var in io.Reader = s
	if man != nil {
		if in, err = man.NewReader(img, s); err != nil {
			return 0, "", 0, err
		}
	}
	out, err := open()
	if err != nil {
		return 0, "", 0, err
	}
	committed := false
	defer func() {
		if !committed {
			out.abort()
		}
	}()
	buf := make([]byte, 1<<20)
	var n int64
	start := time.Now()
	for {
		k, rerr := in.Read(buf)
		if k > 0 {
			if _, err := out.Write(buf[:k]); err != nil {
				return n, "", s.Resumes, err
			}
			n += int64(k)
			if o.Progress != nil {
				o.Progress(n, s.Size())
			}
			if rep != nil {
				rep.Progress(n, s.Size())
			}
			if o.LimitRate > 0 {
				if ahead := time.Duration(n*int64(time.Second)/o.LimitRate) - time.Since(start); ahead > 0 {
					time.Sleep(ahead)
				}
			}
		}
		if rerr == io.EOF {
			committed = true
			if err := out.commit(); err != nil {
				return n, "", s.Resumes, err
			}
			sum := s.SHA256()
			if man != nil {
				f, _ := man.Lookup(img)
				sum = f.SHA256
			}
			return n, sum, s.Resumes, nil
		}
		if rerr != nil {
			return n, "", s.Resumes, rerr
		}
	}
}

// stepError is an error at a named step.
type stepError struct {
	step string
	err  error
}

func (e stepError) Error() string    { return e.err.Error() }
func (e stepError) Unwrap() error    { return e.err }
func (e stepError) StepName() string { return e.step }
