package kmod

import (
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Modaliases lists the modalias strings of the devices under sys/devices.
func Modaliases(sys string) []string {
	var out []string
	filepath.WalkDir(filepath.Join(sys, "devices"), func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if d != nil && d.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		if d.Name() == "modalias" && d.Type().IsRegular() {
			if b, err := os.ReadFile(p); err == nil {
				if s := strings.TrimSpace(string(b)); s != "" {
					out = append(out, s)
				}
			}
		}
		return nil
	})
	return out
}

// ColdplugPass matches every device modalias not seen before against
// modules.alias and loads what matches. It returns the modules inserted
// and how many new modaliases it saw.
func (l *Loader) ColdplugPass() (mods []string, fresh int) {
	for _, alias := range Modaliases(l.Sys) {
		l.mu.Lock()
		if l.seen == nil {
			l.seen = map[string]bool{}
		}
		old := l.seen[alias]
		l.seen[alias] = true
		l.mu.Unlock()
		if old {
			continue
		}
		fresh++
		for _, m := range l.Index.Match(alias) {
			added, _ := l.Load(m, "")
			mods = append(mods, added...)
		}
	}
	return mods, fresh
}

// Coldplug repeats ColdplugPass until no new device has appeared for
// quiet (devices show up asynchronously as their buses' drivers load), or
// ctx ends. It returns the modules inserted.
func (l *Loader) Coldplug(ctx context.Context, quiet time.Duration) []string {
	var all []string
	last := time.Now()
	for {
		mods, fresh := l.ColdplugPass()
		all = append(all, mods...)
		if fresh > 0 || len(mods) > 0 {
			last = time.Now()
		}
		if time.Since(last) >= quiet {
			return all
		}
		select {
		case <-ctx.Done():
			return all
		case <-time.After(100 * time.Millisecond):
		}
	}
}
