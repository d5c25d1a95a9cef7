package clone

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// queueSetting is a queue file tune changed and its value before.
type queueSetting struct {
	file string // the sysfs file
	old  string
}

// tune sets hdparm-style queue settings through sysfs: read-ahead, I/O
// scheduler; it reports the write cache mode. Failures are warnings.
// Outside the cloner (not PID 1: `clonecd clone --target` on an admin's
// machine) what it changed is put back when the run ends (restoreTune).
func (r *run) tune() error {
	name := filepath.Base(r.disk)
	lines, changed := tuneQueue(r.cfg.SysRoot, name, r.cfg.NoTune)
	for _, t := range lines {
		r.logf("tune %s: %s", name, t)
	}
	r.tuned = changed
	return nil
}

// restoreTune puts back the queue settings tune changed, unless this is
// the cloner, whose disk is the node's own and which reboots anyway.
func (r *run) restoreTune() {
	if os.Getpid() == 1 {
		return
	}
	for i := len(r.tuned) - 1; i >= 0; i-- {
		s := r.tuned[i]
		if err := os.WriteFile(s.file, []byte(s.old), 0o644); err != nil {
			r.logf("tune: warning: putting back %s: %v", s.file, err)
			continue
		}
		r.logf("tune: %s put back to %s", s.file, s.old)
	}
	r.tuned = nil
}

// tuneQueue adjusts the queue of block device name under sysRoot and returns one
// line per setting (what it was, what it is now, or a warning) and the
// settings it changed with their old values.
func tuneQueue(sysRoot, name string, dryRun bool) ([]string, []queueSetting) {
	q := func(f string) string { return sysPath(sysRoot, "block", name, "queue", f) }
	var out []string
	var changed []queueSetting
	set := func(what, file, old, val string) {
		if dryRun {
			out = append(out, what+": would set "+val)
			return
		}
		if err := os.WriteFile(q(file), []byte(val), 0o644); err != nil {
			out = append(out, "warning: "+what+": "+err.Error())
			return
		}
		changed = append(changed, queueSetting{file: q(file), old: old})
		out = append(out, what+": set to "+val)
	}
	// read-ahead: 4 MiB for streaming writes and the later reads of a node.
	if b, err := os.ReadFile(q("read_ahead_kb")); err == nil {
		cur, _ := strconv.Atoi(strings.TrimSpace(string(b)))
		if cur < 4096 {
			out = append(out, "read-ahead was "+strconv.Itoa(cur)+" KiB")
			set("read-ahead", "read_ahead_kb", strconv.Itoa(cur), "4096")
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
			set("scheduler", "scheduler", cur, want)
		}
	}
	return out, changed
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
