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

	"github.com/clonecd/clonecd/medium"
	"github.com/clonecd/clonecd/partition"
	"github.com/clonecd/clonecd/trust"
)

// steps are the clone steps in the order they run, each with the method
// that does it. clonecd.break=STEP (or Config.Break) stops before the
// named one. This table is the only list of steps: Steps and the console's
// "[N/10] STEP" markers come from it.
var steps = []struct {
	name string
	run  func(*run) error
}{
	{"setup", (*run).setup},
	{"disk", (*run).chooseDisk},
	{"tune", (*run).tune},
	{"check", (*run).check},
	{"partition", (*run).partition},
	{"mkfs", (*run).mkfs},
	{"unpack", (*run).unpack},
	{"identity", (*run).identity},
	{"bootloader", (*run).bootloader},
	{"finish", (*run).finish},
}

// Steps are the names of the clone steps in the order they run.
var Steps = stepNames()

func stepNames() []string {
	out := make([]string, len(steps))
	for i, s := range steps {
		out[i] = s.name
	}
	return out
}

// run is one clone run: its settings, its log, and the state the steps
// share, grouped by the step that sets it.
type run struct {
	cfg   Config
	ctx   context.Context
	log   io.Writer
	tail  *tailBuffer
	media fs.FS

	// setup
	manifest    *medium.Manifest  // the signed manifest (nil: no trusted key)
	trust       trust.Status      // how the media were trusted
	version     string            // for /etc/clonecd-version
	conf        map[string]string // the media's clonecd.conf
	layout      *partition.Layout // node.sfdisk as on the media
	image       string            // node.cpio.gz (medium.FindImage)
	imageSum    string            // its sha256, from its .sha256 file
	hostname    string            // the node's name
	hostnameWhy string            // where the name came from

	// disk
	disk       string // the target: /dev/... block device
	loop       string // loop device attached for an image file target
	sectors    uint64
	sectorSize int

	// tune
	tuned []queueSetting // what tune changed, put back at the end outside the cloner

	// check
	fitted    *partition.Layout // the layout fitted to the disk (partition: the table written)
	keep      map[int]bool      // partition numbers preserved
	keepTable bool              // the table matches: not written again

	// partition
	oldTable *partition.Layout // the disk's table before it (nil: none readable)
	safe     *saved            // network mode: the cloner's boot files in RAM (safety.go)
	previous *oldNode          // the node's identity from its old root (keep.go)

	// mkfs, unpack
	root    string   // where the new root is mounted
	newRoot *os.Root // the new root, for every read and write in it (rootfs.go)
	tmpRoot bool     // root is a directory this run made
	mounts  []string // mounted, in order

	// identity
	uuids  map[int]string            // filesystem UUIDs by partition number
	fsinfo map[int]*partition.FSInfo // probed new filesystems by partition number
}

func (r *run) logf(format string, a ...any) {
	fmt.Fprintf(r.log, "clonecd: "+format+"\n", a...)
}

// Run clones cfg.Media onto cfg.Target, step by step, logging each step and
// its duration to cfg.Log. It returns a *StepError naming the failed step,
// or ErrBreak (wrapped) when it stopped at cfg.Break.
func Run(ctx context.Context, cfg Config) (err error) {
	if cfg.Media == nil {
		return fmt.Errorf("no clone media")
	}
	if cfg.Break != "" && !validStep(cfg.Break) {
		return fmt.Errorf("unknown break step %q (steps: %s)", cfg.Break, strings.Join(Steps, " "))
	}
	if cfg.Target == "" && os.Getpid() != 1 {
		return fmt.Errorf("no target disk: outside the clone CD's cloner a disk is never picked automatically; name it (--target DISK|IMAGE)")
	}
	tail := newTailBuffer(40)
	var w io.Writer = tail
	if cfg.Log != nil {
		w = io.MultiWriter(cfg.Log, tail)
	}
	r := &run{cfg: cfg, ctx: ctx, log: &lockedWriter{w: w}, tail: tail, media: cfg.Media, keep: map[int]bool{},
		uuids: map[int]string{}, fsinfo: map[int]*partition.FSInfo{}}
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
		if err := s.run(r); err != nil {
			r.logf("step %s failed after %.3fs: %v", s.name, time.Since(t0).Seconds(), err)
			return &StepError{Step: s.name, Err: err}
		}
		r.logf("step %s done in %.3fs", s.name, time.Since(t0).Seconds())
	}
	r.logf("clone done in %.1fs (version %s, %s, host %s, disk %s)", time.Since(start).Seconds(), r.version, r.trust, r.hostname, r.disk)
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
