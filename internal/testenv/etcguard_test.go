package testenv

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestDiffTrees: each kind of change to a tree is reported, and an
// unchanged tree gives nothing.
func TestDiffTrees(t *testing.T) {
	for _, c := range []struct {
		name   string
		change func(dir string)
		want   string
	}{
		{"none", func(string) {}, ""},
		{"emptied", func(d string) { os.WriteFile(filepath.Join(d, "resolv.conf"), nil, 0o644) }, "resolv.conf: changed"},
		{"mode", func(d string) { os.Chmod(filepath.Join(d, "resolv.conf"), 0o600) }, "resolv.conf: changed"},
		{"added", func(d string) { os.WriteFile(filepath.Join(d, "new"), nil, 0o644) }, "new: added"},
		{"removed", func(d string) { os.Remove(filepath.Join(d, "hosts")) }, "hosts: removed"},
		{"relinked", func(d string) { os.Remove(filepath.Join(d, "mtab")); os.Symlink("/x", filepath.Join(d, "mtab")) }, "mtab: changed"},
	} {
		d := t.TempDir()
		os.WriteFile(filepath.Join(d, "resolv.conf"), []byte("nameserver 10.0.0.1\n"), 0o644)
		os.WriteFile(filepath.Join(d, "hosts"), []byte("127.0.0.1 localhost\n"), 0o644)
		os.Symlink("../proc/self/mounts", filepath.Join(d, "mtab"))
		before, err := HashTree(d)
		if err != nil {
			t.Fatal(err)
		}
		c.change(d)
		after, _ := HashTree(d)
		got := strings.Join(DiffTrees(before, after), "\n")
		if c.want == "" && got != "" || !strings.Contains(got, c.want) {
			t.Errorf("%s: DiffTrees = %q; want %q", c.name, got, c.want)
		}
	}
}

type runs struct{ n int }

func (r *runs) Run() int { r.n++; return 0 }

// TestGuardEtcOr: with its variable set the binary is the helper (its
// code, no tests); without, the tests run.
func TestGuardEtcOr(t *testing.T) {
	const env = "TESTENV_GUARD_HELPER"
	for _, c := range []struct {
		value          string
		code, testRuns int
	}{
		{"1", 7, 0},
		{"", 0, 1},
	} {
		t.Setenv(env, c.value)
		m := &runs{}
		if code := GuardEtcOr(m, env, func() int { return 7 }); code != c.code || m.n != c.testRuns {
			t.Errorf("%s=%q: code %d, %d test runs; want %d, %d", env, c.value, code, m.n, c.code, c.testRuns)
		}
	}
}
