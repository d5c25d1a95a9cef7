package cli

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/clonecd/clonecd/fleet"
	"github.com/clonecd/clonecd/internal/testimage"
	"github.com/clonecd/clonecd/versions"
)

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

func TestStoreCommands(t *testing.T) {
	t.Parallel()
	src := t.TempDir()
	store := filepath.Join(t.TempDir(), "clone_image")
	img := func(name string) string { return testimage.Write(t, src, name) }
	lay := filepath.Join(src, "node.sfdisk")
	os.WriteFile(lay, []byte("label: gpt\n\n/dev/sda1 : start=2048, size=2048, type=21686148-6449-6E6F-744E-656564454649\n"), 0o644)
	key := filepath.Join(t.TempDir(), "clonecd.key")
	if code, _, errs := runMain(t, "key", "generate", "-o", key); code != 0 {
		t.Fatalf("key generate: %s", errs)
	}
	tests := []struct {
		args []string
		code int
		out  string // regexp
	}{
		{[]string{"images", "--dir", store}, 2, `^$`},                                                // no store yet: an error, and nothing made
		{[]string{"publish", img("a"), "--dir", store, "--layout", lay, "--note", "first"}, 2, `^$`}, // neither --key nor --unsigned
		{[]string{"publish", img("a"), "--dir", store, "--layout", lay, "--key", key, "--unsigned"}, 2, `^$`},
		{[]string{"publish", img("a"), "--dir", store, "--layout", lay, "--note", "first", "--unsigned"}, 0, `published 1\.0 .*unsigned.*: current`},
		{[]string{"publish", img("b"), "--dir", store, "--note", "second", "--key", key}, 0, `published 1\.1 .*signed by key [0-9A-F]+\) .*: current`},
		{[]string{"publish", img("c"), "--dir", store, "--no-promote", "--version", "1.5", "--unsigned"}, 0, `published 1\.5 .*canary`},
		{[]string{"publish", "--dir", store}, 2, `^$`},
		{[]string{"images", "--dir", store}, 0, `(?s)VERSION.*SIGNED.* 1\.0 .* unsigned .*first.*\*1\.1 .* [0-9A-F]{8,16} .*second.* 1\.5 .* unsigned `},
		{[]string{"promote", "1.5", "--dir", store}, 0, `current version is now 1\.5`},
		{[]string{"rollback", "--dir", store, "--reason", "hangs"}, 0, `marked 1\.5 bad; current version is now 1\.1`},
		{[]string{"images", "--dir", store}, 0, `(?s)\*1\.1 .* s001,s002\(cloning\) .* 1\.5 .*BAD: hangs +s003\(failed\)`},
		{[]string{"promote", "1.5", "--dir", store}, 2, `^$`},
		{[]string{"prune", "--dir", store}, 2, `^$`},
		{[]string{"prune", "--keep", "2", "--dry-run", "--dir", store}, 0, `^would delete 1\.0 `},
		{[]string{"prune", "--keep", "2", "--dir", store}, 0, `^deleted 1\.0 `},
		{[]string{"prune", "--keep", "2", "--dir", store}, 0, `nothing to delete`},
		{[]string{"images", "--json", "--dir", store}, 0, `(?s)"version": "1\.1".*"current": true.*"signed": true,\s+"key_id": "[0-9A-F]+".*"version": "1\.5".*"bad": true.*"signed": false`},
	}
	for _, tt := range tests {
		if tt.args[0] == "rollback" {
			// The server's reports (netclone writes these).
			s, _ := versions.Open(store)
			for _, ns := range []fleet.State{{Node: "s001", Version: "1.1", State: "done"},
				{Node: "s002", Version: "1.1", State: "cloning"}, {Node: "s003", Version: "1.5", State: "failed"}} {
				if _, err := s.Nodes(fleet.Limits{}).Update(ns); err != nil {
					t.Fatal(err)
				}
			}
		}
		code, out, errs := runMain(t, tt.args...)
		if code != tt.code || !regexp.MustCompile(tt.out).MatchString(out) {
			t.Fatalf("%v: exit %d\nout: %s\nerr: %s\nwant exit %d, out matching %q", tt.args, code, out, errs, tt.code, tt.out)
		}
	}
	b, err := os.ReadFile(filepath.Join(store, "CLONE_CD_VERSION"))
	if err != nil || strings.TrimSpace(string(b)) != "1.1" {
		t.Errorf("store CLONE_CD_VERSION = %q, %v", b, err)
	}
}

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
