package netclone

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"
)

// FetchOptions tunes Fetch.
type FetchOptions struct {
	MediaOptions
	Report   bool                      // send state and the log to the server as a node would
	LogFile  string                    // the log Fetch writes and uploads (with Report)
	Attempts int                       // whole downloads tried when the sha256 mismatches (0: 3)
	Progress func(done, total int64)   // called as bytes arrive
	Logf     func(string, ...any)      // messages ("" = none)
	Open     func() (io.Writer, error) // where each attempt writes (required)
}

// FetchResult describes a finished download.
type FetchResult struct {
	Version  string
	Bytes    int64
	SHA256   string
	Attempts int
	Resumes  int
	Elapsed  time.Duration
}

// Fetch downloads the image from the server as the network cloner streams
// it (resuming after drops, checking its sha256, trying again after a
// mismatch) into the writer o.Open returns for each attempt. With
// o.Report it reports like a node: waiting, cloning n%, done or failed,
// and uploads o.LogFile.
func Fetch(ctx context.Context, serverURL string, o FetchOptions) (*FetchResult, error) {
	if o.Attempts <= 0 {
		o.Attempts = 3
	}
	var logw io.Writer = io.Discard
	if o.LogFile != "" {
		f, err := os.OpenFile(o.LogFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
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
		rep.LogFile = o.LogFile
		rep.Logf = logf
	}
	m, err := NewMedia(ctx, serverURL, o.MediaOptions)
	if err != nil {
		logf("netclone: %v", err)
		if rep != nil {
			rep.Done(stepError{"setup", err})
		}
		return nil, err
	}
	logf("netclone: fetching %s version %s from %s", ImageFile, m.Version, serverURL)
	if rep != nil {
		rep.Version = m.Version
		rep.Begin()
		rep.Step("unpack")
	}
	res := &FetchResult{Version: m.Version}
	for attempt := 1; ; attempt++ {
		res.Attempts = attempt
		if rep != nil {
			rep.Attempt = attempt
		}
		n, sum, resumes, err := fetchOnce(m, o, rep)
		res.Bytes, res.SHA256, res.Resumes = n, sum, res.Resumes+resumes
		if err == nil {
			res.Elapsed = time.Since(start)
			logf("netclone: %d bytes, sha256 %s OK, %d resumes, %d attempts, %s", n, sum, res.Resumes, attempt, res.Elapsed.Round(time.Millisecond))
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

func fetchOnce(m *Media, o FetchOptions, rep *Reporter) (int64, string, int, error) {
	s, err := m.OpenImage()
	if err != nil {
		return 0, "", 0, err
	}
	defer s.Close()
	w, err := o.Open()
	if err != nil {
		return 0, "", 0, err
	}
	buf := make([]byte, 1<<20)
	var n int64
	for {
		k, rerr := s.Read(buf)
		if k > 0 {
			if _, err := w.Write(buf[:k]); err != nil {
				return n, "", s.Resumes, err
			}
			n += int64(k)
			if o.Progress != nil {
				o.Progress(n, s.Size())
			}
			if rep != nil {
				rep.Progress(n, s.Size())
			}
		}
		if rerr == io.EOF {
			return n, s.SHA256(), s.Resumes, nil
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
