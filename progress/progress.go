package progress

import (
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"golang.org/x/term"
)

// Meter counts bytes and items against an optional total and redraws one
// line on a terminal at most every Interval.
type Meter struct {
	mu       sync.Mutex
	w        io.Writer
	label    string
	total    int64 // bytes expected; 0 if unknown
	bytes    int64
	items    int64
	start    time.Time
	last     time.Time
	enabled  bool
	Interval time.Duration
}

// IsTerminal reports whether w is a terminal.
func IsTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// New returns a meter that draws on w only if w is a terminal and quiet is
// false. total is the number of bytes expected, or 0.
func New(w io.Writer, label string, total int64, quiet bool) *Meter {
	return &Meter{w: w, label: label, total: total, start: time.Now(),
		enabled: !quiet && IsTerminal(w), Interval: 200 * time.Millisecond}
}

// Add counts n more bytes and items more items.
func (m *Meter) Add(n int64, items int64) {
	if m == nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.bytes += n
	m.items += items
	if m.enabled && time.Since(m.last) >= m.Interval {
		m.last = time.Now()
		fmt.Fprintf(m.w, "\r\033[K%s", m.lineLocked())
	}
}

// Set counts bytes up to n in all (a callback that reports totals, not
// increments); a smaller n is ignored.
func (m *Meter) Set(n int64) {
	if m == nil {
		return
	}
	m.mu.Lock()
	d := n - m.bytes
	m.mu.Unlock()
	if d > 0 {
		m.Add(d, 0)
	}
}

// Line is the current state as text.
func (m *Meter) Line() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.lineLocked()
}

func (m *Meter) lineLocked() string {
	el := time.Since(m.start).Seconds()
	rate := 0.0
	if el > 0 {
		rate = float64(m.bytes) / el
	}
	s := fmt.Sprintf("%s: %s, %s/s", m.label, Bytes(m.bytes), Bytes(int64(rate)))
	if m.items > 0 { // a meter of bytes only (fetch, publish) says nothing of files
		s = fmt.Sprintf("%s: %s, %d files, %s/s", m.label, Bytes(m.bytes), m.items, Bytes(int64(rate)))
	}
	if m.total > 0 && rate > 0 {
		left := float64(m.total-m.bytes) / rate
		if left < 0 {
			left = 0
		}
		s += fmt.Sprintf(", %d%%, ETA %s", m.bytes*100/m.total, (time.Duration(left) * time.Second).Round(time.Second))
	}
	return s
}

// Done ends the line on a terminal.
func (m *Meter) Done() {
	if m == nil || !m.enabled {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	fmt.Fprintf(m.w, "\r\033[K%s\n", m.lineLocked())
}

// Writer wraps w so that every write is counted as bytes.
func (m *Meter) Writer(w io.Writer) io.Writer { return countWriter{w, m} }

// Reader wraps r so that every read is counted as bytes.
func (m *Meter) Reader(r io.Reader) io.Reader { return countReader{r, m} }

type countWriter struct {
	w io.Writer
	m *Meter
}

func (c countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.m.Add(int64(n), 0)
	return n, err
}

type countReader struct {
	r io.Reader
	m *Meter
}

func (c countReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.m.Add(int64(n), 0)
	return n, err
}

// Bytes formats n in binary units ("236.4 MiB").
func Bytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for v := n / unit; v >= unit; v /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
