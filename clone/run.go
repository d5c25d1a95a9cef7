package clone

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/clonecd/clonecd/partition"
)

// run is the state the steps share.
type run struct {
	cfg   Config
	ctx   context.Context
	log   io.Writer
	tail  *tailBuffer
	media fs.FS

	version string
	conf    map[string]string // media's clonecd.conf
	layout  *partition.Layout // as on the media
	fitted  *partition.Layout // fitted to the disk
	disk    string            // /dev/... block device
	loop    string            // loop device we attached (image file target)
	sectors uint64
	secSize int
	keep    map[int]bool // partition numbers preserved
	preserv bool
	root    string   // where the new root is mounted
	tmpRoot bool     // root was created by us
	mounts  []string // mounted, in order
	hostnm  string
	uuids   map[int]string
	fsinfo  map[int]*partition.FSInfo
	safe    *saved // network mode: the cloner's boot files in RAM (safety.go)
}

func (r *run) logf(format string, a ...any) {
	fmt.Fprintf(r.log, "clonecd: "+format+"\n", a...)
}

// Run clones cfg.Media onto cfg.Target, step by step, logging each step and
// its duration to cfg.Log. It returns a *StepError naming the failed step,
// or ErrBreak (wrapped) when it stopped at cfg.Break.
func Run(ctx context.Context, cfg Config) (err error) {
	if cfg.Media == nil {
		return fmt.Errorf("clone: no media")
	}
	if cfg.Break != "" && !validStep(cfg.Break) {
		return fmt.Errorf("clone: unknown break step %q (steps: %s)", cfg.Break, strings.Join(Steps, " "))
	}
	tail := newTailBuffer(40)
	var w io.Writer = tail
	if cfg.Log != nil {
		w = io.MultiWriter(cfg.Log, tail)
	}
	r := &run{cfg: cfg, ctx: ctx, log: &lockedWriter{w: w}, tail: tail, media: cfg.Media, keep: map[int]bool{},
		uuids: map[int]string{}, fsinfo: map[int]*partition.FSInfo{}}
	steps := []struct {
		name string
		fn   func() error
	}{
		{"setup", r.setup}, {"disk", r.chooseDisk}, {"tune", r.tune}, {"check", r.check},
		{"partition", r.partition}, {"mkfs", r.mkfs}, {"unpack", r.unpack}, {"identity", r.identity},
		{"bootloader", r.bootloader}, {"finish", r.finish},
	}
	start := time.Now()
	defer func() {
		if err != nil {
			r.cleanup()
		}
		r.dropSaved()
		if cfg.Reporter != nil {
			cfg.Reporter.Done(err)
		}
	}()
	for i, s := range steps {
		if err := ctx.Err(); err != nil {
			return &StepError{Step: s.name, Err: err}
		}
		if cfg.Break == s.name {
			r.logf("break before step %s", s.name)
			if cfg.OnBreak == nil {
				return &StepError{Step: s.name, Err: fmt.Errorf("%w before step %s (break=%s)", ErrBreak, s.name, s.name)}
			}
			if err := cfg.OnBreak(s.name); err != nil {
				return &StepError{Step: s.name, Err: fmt.Errorf("break before %s: %w", s.name, err)}
			}
		}
		if cfg.Reporter != nil {
			cfg.Reporter.Step(s.name)
		}
		r.logf("[%d/%d] %s", i+1, len(steps), s.name)
		t0 := time.Now()
		if err := s.fn(); err != nil {
			r.logf("step %s failed after %.3fs: %v", s.name, time.Since(t0).Seconds(), err)
			return &StepError{Step: s.name, Err: err}
		}
		r.logf("step %s done in %.3fs", s.name, time.Since(t0).Seconds())
	}
	r.logf("clone done in %.1fs (version %s, host %s, disk %s)", time.Since(start).Seconds(), r.version, r.hostnm, r.disk)
	return nil
}

// LogTail returns the last n lines a failed run logged, for the console.
func LogTail(path string, n int) []string {
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		lines = append(lines, sc.Text())
		if len(lines) > n {
			lines = lines[1:]
		}
	}
	return lines
}

// tailBuffer keeps the last lines written to it.
type tailBuffer struct {
	mu    sync.Mutex
	max   int
	lines []string
	part  string
}

func newTailBuffer(n int) *tailBuffer { return &tailBuffer{max: n} }

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := t.part + string(p)
	parts := strings.Split(s, "\n")
	t.part = parts[len(parts)-1]
	for _, l := range parts[:len(parts)-1] {
		t.lines = append(t.lines, l)
		if len(t.lines) > t.max {
			t.lines = t.lines[1:]
		}
	}
	return len(p), nil
}

// Lines returns up to n of the last lines.
func (t *tailBuffer) Lines(n int) []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	l := t.lines
	if t.part != "" {
		l = append(append([]string{}, l...), t.part)
	}
	if len(l) > n {
		l = l[len(l)-n:]
	}
	return append([]string(nil), l...)
}

// lockedWriter serialises writes to w (the log is written from the steps
// and from progress goroutines).
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
