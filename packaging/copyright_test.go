package packaging

import (
	"context"
	"debug/buildinfo"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestIsLicenseFile(t *testing.T) {
	for name, want := range map[string]bool{
		"LICENSE": true, "license": true, "LICENSE.md": true, "LICENSE.txt": true, "LICENCE": true,
		"COPYING": true, "LICENSE-MIT": true, "GO_LICENSE": true, "License.rst": true,
		"README.md": false, "licenses.go": false, "LICENSE_test.go": false, "go.mod": false, "NOTICE": false,
	} {
		if got := isLicenseFile(name); got != want {
			t.Errorf("isLicenseFile(%q) = %v, want %v", name, got, want)
		}
	}
}

func TestEscapeModulePath(t *testing.T) {
	for in, want := range map[string]string{
		"github.com/spf13/cobra":           "github.com/spf13/cobra",
		"github.com/Masterminds/semver/v3": "github.com/!masterminds/semver/v3",
		"github.com/AlekSi/pointer":        "github.com/!alek!si/pointer",
	} {
		if got, err := escapeModulePath(in); err != nil || got != want {
			t.Errorf("escapeModulePath(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"a/b!c", "exämple.com/x"} {
		if _, err := escapeModulePath(bad); err == nil {
			t.Errorf("escapeModulePath(%q): no error", bad)
		}
	}
}

// TestCopyright checks the copyright file of the real binary: every
// module it links is named with a license, the Go license is there,
// Apache-2.0 texts point to common-licenses, and no text is repeated.
func TestCopyright(t *testing.T) {
	bin := releaseBinary(t)
	goroot, modCache, err := goEnv(context.Background(), "", "")
	if err != nil {
		t.Fatal(err)
	}
	cr, err := Copyright(bin, goroot, modCache)
	if err != nil {
		t.Fatal(err)
	}
	text := string(cr)
	bi, err := buildinfo.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	if len(bi.Deps) == 0 {
		t.Fatal("the binary links no module: the test would prove nothing")
	}
	for _, d := range bi.Deps {
		if !strings.Contains(text, d.Path+" "+d.Version+" (") {
			t.Errorf("copyright does not name %s %s with its license file", d.Path, d.Version)
		}
	}
	for _, want := range []string{"the Go standard library and runtime (LICENSE)", "Copyright: the clonecd authors", "Redistribution and use in source and binary forms"} {
		if !strings.Contains(text, want) {
			t.Errorf("copyright lacks %q", want)
		}
	}
	if strings.Contains(text, "TERMS AND CONDITIONS FOR USE, REPRODUCTION, AND DISTRIBUTION") {
		t.Error("copyright repeats the Apache-2.0 text instead of naming /usr/share/common-licenses/Apache-2.0")
	}
	// identical texts are merged: each license body appears once
	seen := map[string]string{}
	for _, block := range strings.Split(text, "\n-------------------------------------------------------------------------------\n")[1:] {
		names, body, ok := strings.Cut(block, ":\n\n")
		if !ok {
			t.Errorf("license block without its modules' names: %.80q", block)
			continue
		}
		if first, dup := seen[body]; dup {
			t.Errorf("the license of %s repeats the text of %s", names, first)
		}
		seen[body] = names
	}
	if len(seen) < 2 {
		t.Errorf("%d license texts: the test would prove nothing", len(seen))
	}
	for i, line := range strings.Split(text, "\n") {
		if strings.HasSuffix(line, " ") || strings.HasSuffix(line, "\t") {
			t.Errorf("copyright line %d has trailing white space: %q", i+1, line)
		}
	}
}

func TestCopyrightMissingLicense(t *testing.T) {
	bin := releaseBinary(t)
	goroot, _, err := goEnv(context.Background(), "", "")
	if err != nil {
		t.Fatal(err)
	}
	empty := t.TempDir() // a module cache without the modules
	_, err = Copyright(bin, goroot, empty)
	if err == nil || !strings.Contains(err.Error(), "license of ") || !strings.Contains(err.Error(), empty) {
		t.Fatalf("Copyright with an empty module cache: %v; want an error naming the module and its directory", err)
	}
	// A module directory holding no license file is named too.
	bi, _ := buildinfo.ReadFile(bin)
	d := bi.Deps[0]
	p, _ := escapeModulePath(d.Path)
	if err := os.MkdirAll(filepath.Join(empty, p+"@"+d.Version), 0o755); err != nil {
		t.Fatal(err)
	}
	_, err = Copyright(bin, goroot, empty)
	if err == nil || !strings.Contains(err.Error(), d.Path) || !strings.Contains(err.Error(), "no license file") {
		t.Fatalf("Copyright with a module without a license: %v", err)
	}
}
