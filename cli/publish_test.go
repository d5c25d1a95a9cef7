package cli

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/clonecd/clonecd/fleet"
	"github.com/clonecd/clonecd/internal/testimage"
	"github.com/clonecd/clonecd/versions"
)

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
