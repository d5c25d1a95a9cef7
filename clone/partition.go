package clone

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/clonecd/clonecd/partition"
)

// check decides whether the disk's table matches the layout and its
// preserved partitions (/data) are intact.
func (r *run) check() error {
	fitted, err := r.layout.FitDisk(r.disk) // as Apply will: the disk's grain
	if err != nil {
		return err // names node.sfdisk's line and the disk
	}
	r.fitted = fitted
	dec, err := partition.Check(r.layout, r.disk)
	if err != nil {
		return fmt.Errorf("checking %s: %w", r.disk, err)
	}
	r.keepTable = dec.Preserve
	for _, n := range dec.Keep {
		r.keep[n] = true
	}
	if dec.Preserve {
		r.logf("check: table of %s matches the layout: preserving partitions %v (%s)", r.disk, dec.Keep, dec.Reason)
		return nil
	}
	r.logf("check: %s will be repartitioned: %s", r.disk, dec.Reason)
	if r.cfg.DataKeep {
		var pres []string
		for _, p := range r.layout.Parts {
			if p.Preserve {
				pres = append(pres, fmt.Sprintf("%d (%s)", p.Number, p.Mount))
			}
		}
		if len(pres) > 0 {
			return fmt.Errorf("clonecd.data=keep: the table of %s differs from the layout (%s), and writing it would destroy preserved partition %s; nothing was written. Remove clonecd.data=keep to repartition", r.disk, dec.Reason, strings.Join(pres, ", "))
		}
	}
	return nil
}

// partition writes the table unless the check preserved it. Before that
// it reads what the old system leaves behind: its identity (keep.go) and,
// in network mode, the cloner's boot files (safety.go).
func (r *run) partition() error {
	if old, err := partition.Dump(r.disk); err == nil {
		r.oldTable = old
	}
	r.readPrevious()
	if r.cfg.Net {
		if err := r.saveBoot(); err != nil {
			return err
		}
		r.stickyCloner()
	}
	if r.keepTable {
		r.logf("partition: table kept (preserving %v)", keys(r.keep))
		return r.waitParts()
	}
	fitted, err := partition.Apply(r.layout, r.disk, partition.ApplyOptions{Force: r.cfg.Force})
	if err != nil {
		return fmt.Errorf("writing the table of %s: %w", r.disk, err)
	}
	r.fitted = fitted
	r.logf("partition: wrote %s table with %d partitions to %s", fitted.Label, len(fitted.Parts), r.disk)
	return r.waitParts()
}

// waitParts waits for the kernel to show every partition's device node.
func (r *run) waitParts() error {
	deadline := time.Now().Add(15 * time.Second)
	triedPartx := false
	for {
		var missing []string
		for _, p := range r.fitted.Parts {
			if p.FS == "" {
				continue
			}
			d := partition.PartDevice(r.disk, p.Number)
			if _, err := os.Stat(d); err != nil {
				missing = append(missing, d)
			}
		}
		if len(missing) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("partition devices %s did not appear", strings.Join(missing, " "))
		}
		if !triedPartx && time.Now().After(deadline.Add(-14*time.Second)) {
			triedPartx = true
			exec.Command("partx", "-a", r.disk).Run()
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func keys(m map[int]bool) []int {
	var out []int
	for i := 1; i <= 256; i++ {
		if m[i] {
			out = append(out, i)
		}
	}
	return out
}
