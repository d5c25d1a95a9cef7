package clone

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// tune sets hdparm-style queue settings through sysfs: read-ahead, I/O
// scheduler; it reports the write cache mode. Failures are warnings.
func (r *run) tune() error {
	name := filepath.Base(r.disk)
	for _, t := range Tune(r.cfg.SysRoot, name, r.cfg.NoTune) {
		r.logf("tune %s: %s", name, t)
	}
	return nil
}

// Tune adjusts the queue of block device name under sysRoot and returns one
// line per setting: what it was, what it is now, or a warning.
func Tune(sysRoot, name string, dryRun bool) []string {
	q := func(f string) string { return sysPath(sysRoot, "block", name, "queue", f) }
	var out []string
	set := func(what, file, val string) {
		if dryRun {
			out = append(out, what+": would set "+val)
			return
		}
		if err := os.WriteFile(q(file), []byte(val), 0o644); err != nil {
			out = append(out, "warning: "+what+": "+err.Error())
			return
		}
		out = append(out, what+": set to "+val)
	}
	// read-ahead: 4 MiB for streaming writes and the later reads of a node.
	if b, err := os.ReadFile(q("read_ahead_kb")); err == nil {
		cur, _ := strconv.Atoi(strings.TrimSpace(string(b)))
		if cur < 4096 {
			out = append(out, "read-ahead was "+strconv.Itoa(cur)+" KiB")
			set("read-ahead", "read_ahead_kb", "4096")
		} else {
			out = append(out, "read-ahead "+strconv.Itoa(cur)+" KiB, kept")
		}
	} else {
		out = append(out, "warning: read-ahead: "+err.Error())
	}
	// write cache: reported; turning a write-through device's cache on
	// risks data on power loss, so it is left alone.
	if b, err := os.ReadFile(q("write_cache")); err == nil {
		out = append(out, "write cache "+strings.TrimSpace(string(b)))
	}
	// scheduler: none for SSDs and virtual disks, mq-deadline for spinning
	// disks.
	if b, err := os.ReadFile(q("scheduler")); err == nil {
		cur, avail := parseScheduler(string(b))
		want := "none"
		if strings.TrimSpace(readFileStr(q("rotational"))) == "1" {
			want = "mq-deadline"
		}
		switch {
		case cur == want:
			out = append(out, "scheduler "+cur+", kept")
		case !contains(avail, want):
			out = append(out, "scheduler "+cur+" ("+want+" not available), kept")
		default:
			out = append(out, "scheduler was "+cur)
			set("scheduler", "scheduler", want)
		}
	}
	return out
}

func readFileStr(p string) string {
	b, _ := os.ReadFile(p)
	return string(b)
}

// parseScheduler reads "mq-deadline kyber [bfq] none".
func parseScheduler(s string) (cur string, avail []string) {
	for _, f := range strings.Fields(s) {
		if strings.HasPrefix(f, "[") && strings.HasSuffix(f, "]") {
			f = strings.Trim(f, "[]")
			cur = f
		}
		avail = append(avail, f)
	}
	return cur, avail
}

func contains(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}
