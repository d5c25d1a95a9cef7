package cli

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"testing"
)

// TestVersionRunFunctions calls the run functions directly with buffers,
// as every command's run function can be.
func TestVersionRunFunctions(t *testing.T) {
	t.Parallel()
	f := &versionFlags{file: filepath.Join(t.TempDir(), "CLONE_CD_VERSION")}
	var out, errb bytes.Buffer
	o := Output{Stdout: &out, Stderr: &errb}
	if err := runVersionSet(context.Background(), o, f, []string{"CLONE_1_19"}); err != nil {
		t.Fatal(err)
	}
	if err := runVersionBump(context.Background(), o, f, nil); err != nil {
		t.Fatal(err)
	}
	f.tag = true
	if err := runVersionShow(context.Background(), o, f, nil); err != nil {
		t.Fatal(err)
	}
	if want := f.file + ": 1.19\n" + f.file + ": 1.19 -> 1.20\nCLONE_1_20\n"; out.String() != want || errb.Len() != 0 {
		t.Errorf("stdout %q, stderr %q; want %q", out.String(), errb.String(), want)
	}
	var ee *ExitError
	if err := runVersionSet(context.Background(), o, f, []string{"1.x"}); !errors.As(err, &ee) || ee.Code != 2 {
		t.Errorf("set 1.x: %v; want a usage error", err)
	}
}

func TestVersionCommand(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	f := filepath.Join(dir, "CLONE_CD_VERSION")
	alias := filepath.Join(dir, "alias")
	os.Symlink(f, alias)
	tests := []struct {
		args []string
		code int
		out  string // regexp
		file string // file content afterwards
	}{
		{[]string{"version", "--file", f}, 2, `^$`, ""},
		{[]string{"version", "set", "1.9", "--file", f}, 0, `^.*/CLONE_CD_VERSION: 1\.9\n$`, "1.9\n"},
		{[]string{"version", "bump", "--file", f}, 0, `^.*/CLONE_CD_VERSION: 1\.9 -> 1\.10\n$`, "1.10\n"},
		{[]string{"version", "show", "--file", f}, 0, `^1\.10\n$`, "1.10\n"},
		{[]string{"version", "show", "--tag", "--file", f}, 0, `^CLONE_1_10\n$`, "1.10\n"},
		{[]string{"version", "set", "1.05", "--file", f}, 2, `^$`, "1.10\n"},
		{[]string{"version", "set", "2.0", "-f", f}, 0, `^.*/CLONE_CD_VERSION: 1\.10 -> 2\.0\n$`, "2.0\n"},
		{[]string{"version", "bump", "--file", alias}, 2, `^$`, "2.0\n"},
		{[]string{"version", "set", "1.2.3", "--file", f}, 2, `^$`, "2.0\n"},
		{[]string{"version", "bump", "--file"}, 2, `^$`, "2.0\n"},
		{[]string{"version", "frob", "--file", f}, 2, `^$`, "2.0\n"},
	}
	for _, tt := range tests {
		code, out, errs := runMain(t, tt.args...)
		if code != tt.code || !regexp.MustCompile(tt.out).MatchString(out) {
			t.Errorf("%v: exit %d out %q err %q; want %d %q", tt.args, code, out, errs, tt.code, tt.out)
		}
		if b, _ := os.ReadFile(f); string(b) != tt.file {
			t.Errorf("%v: file %q, want %q", tt.args, b, tt.file)
		}
	}
}
