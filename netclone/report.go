package netclone

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/clonecd/clonecd/fleet"
)

// Reporter sends a node's clone to the server: the step running, image
// progress, and the result with /tmp/clone.log. It has the methods of
// package clone's Reporter (Step, Progress, Done). Reports are best
// effort: a server hiccup is logged, never fails the clone.
type Reporter struct {
	Server  string // server URL
	Node    string
	Version string // the version being cloned
	Trust   string // how the cloner trusted it (trust.Status: "signed by key ID", "UNSIGNED"); sent with every report
	LogFile string // uploaded by Done ("" = /tmp/clone.log)
	Attempt int
	Access  Access       // the node's credential and the server's pin
	Client  *http.Client // nil: one with Access's TLS settings
	Logf    func(format string, a ...any)

	mu       sync.Mutex
	step     string
	lastSent time.Time
}

// NewReporter reports for node to the server at serverURL.
func NewReporter(serverURL, node string) *Reporter {
	return &Reporter{Server: strings.TrimRight(serverURL, "/"), Node: node}
}

func (r *Reporter) client() *http.Client {
	if r.Client != nil {
		return r.Client
	}
	return r.Access.client(10 * time.Second)
}

func (r *Reporter) logf(format string, a ...any) {
	if r.Logf != nil {
		r.Logf(format, a...)
	}
}

func (r *Reporter) send(st fleet.State) error {
	if r == nil || r.Server == "" || r.Node == "" {
		return nil
	}
	r.mu.Lock()
	st.Trust = r.Trust
	r.mu.Unlock()
	st.Node, st.Version, st.Attempt = r.Node, r.Version, r.Attempt
	b, _ := json.Marshal(st)
	u := r.Server + "/api/nodes/" + url.PathEscape(r.Node)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(b))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	r.Access.authorize(req)
	resp, err := r.client().Do(req)
	if err != nil {
		return fmt.Errorf("report to %s: %w", u, err)
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, resp.Body)
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("report to %s: %s", u, resp.Status)
	}
	return nil
}

// Trusted sets how the cloner trusted the version ("signed by key ID",
// "UNSIGNED": clone.TrustReporter); the reports from the next on carry it.
func (r *Reporter) Trusted(status string) {
	r.mu.Lock()
	r.Trust = status
	r.mu.Unlock()
}

// Begin reports a new clone (state waiting → cloning).
func (r *Reporter) Begin() error {
	return r.send(fleet.State{State: fleet.Cloning, Step: "setup", Started: time.Now().UTC()})
}

// Step reports the step starting and uploads the log so far, so that
// the fleet page shows it as it grows.
func (r *Reporter) Step(name string) {
	r.mu.Lock()
	r.step = name
	r.mu.Unlock()
	if err := r.send(fleet.State{State: fleet.Cloning, Step: name}); err != nil {
		r.logf("netclone: %v", err)
	}
	r.uploadLog(true)
}

// progressEvery is the least time between two progress reports: each is a
// durable write on the master (fsync), and 64 nodes report at once.
const progressEvery = time.Second

// Progress reports image bytes done of total, at most once per
// progressEvery, and at the end.
func (r *Reporter) Progress(done, total int64) {
	r.mu.Lock()
	now := time.Now()
	if now.Sub(r.lastSent) < progressEvery && done != total {
		r.mu.Unlock()
		return
	}
	r.lastSent = now
	step := r.step
	r.mu.Unlock()
	if err := r.send(fleet.State{State: fleet.Cloning, Step: step, Done: done, Total: total}); err != nil {
		r.logf("netclone: %v", err)
	}
}

// Done reports the result (err == nil: done; else failed at the current
// step) and uploads the log. It retries a few times: the result matters.
func (r *Reporter) Done(err error) {
	r.mu.Lock()
	step := r.step
	r.mu.Unlock()
	st := fleet.State{State: fleet.Done, Step: step}
	if err != nil {
		st.State, st.Error = fleet.Failed, err.Error()
		if s := failedStep(err); s != "" {
			st.Step = s
		}
	}
	r.UploadLog()
	for i := 0; i < 5; i++ {
		e := r.send(st)
		if e == nil {
			return
		}
		r.logf("netclone: %v", e)
		time.Sleep(time.Duration(i+1) * time.Second)
	}
}

// failedStep finds the step an error names through a StepName() string
// method (package clone's step errors may carry one).
func failedStep(err error) string {
	var s interface{ StepName() string }
	if errors.As(err, &s) {
		return s.StepName()
	}
	return ""
}

// UploadLog sends the log file to the server.
func (r *Reporter) UploadLog() error { return r.uploadLog(false) }

// uploadLog sends the log file; during a clone (quiet) a log that does
// not exist yet is no news.
func (r *Reporter) uploadLog(quiet bool) error {
	if r == nil || r.Server == "" || r.Node == "" {
		return nil
	}
	p := r.LogFile
	if p == "" {
		p = "/tmp/clone.log"
	}
	b, err := os.ReadFile(p)
	if err != nil {
		if !quiet || !errors.Is(err, fs.ErrNotExist) {
			r.logf("netclone: log not uploaded: %v", err)
		}
		return err
	}
	b = logTail(b, fleet.DefaultMaxLog)
	u := r.Server + "/api/nodes/" + url.PathEscape(r.Node) + "/log"
	req, err := http.NewRequest(http.MethodPut, u, bytes.NewReader(b))
	if err != nil {
		return err
	}
	r.Access.authorize(req)
	resp, err := r.client().Do(req)
	if err != nil {
		r.logf("netclone: log upload to %s: %v", u, err)
		return err
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		err = fmt.Errorf("log upload to %s: %s", u, resp.Status)
		r.logf("netclone: %v", err)
	}
	return err
}

// logTail keeps a log within max bytes (what the server stores at most):
// its end, which says how the clone ended, after a line saying so.
func logTail(b []byte, max int) []byte {
	if len(b) <= max {
		return b
	}
	note := fmt.Sprintf("[clonecd: the first %d bytes of this log were dropped]\n", len(b)-max+100)
	return append([]byte(note), b[len(b)-max+100:]...)
}
