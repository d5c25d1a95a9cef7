package packaging

import (
	"bytes"
	"compress/gzip"
	"context"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"testing"

	"github.com/clonecd/clonecd/internal/testenv"
)

// fixedFiles are the package's files besides the man pages, with their
// modes as dpkg-deb -c shows them.
var fixedFiles = map[string]string{
	"./usr/bin/clonecd":                                  "-rwxr-xr-x",
	"./lib/systemd/system/clonecd-serve.service":         "-rw-r--r--",
	"./etc/default/clonecd":                              "-rw-r--r--",
	"./usr/share/bash-completion/completions/clonecd":    "-rw-r--r--",
	"./usr/share/zsh/vendor-completions/_clonecd":        "-rw-r--r--",
	"./usr/share/fish/vendor_completions.d/clonecd.fish": "-rw-r--r--",
	"./usr/share/doc/clonecd/copyright":                  "-rw-r--r--",
	"./usr/share/doc/clonecd/changelog.Debian.gz":        "-rw-r--r--",
	"./usr/share/doc/clonecd/README.Debian":              "-rw-r--r--",
	"./usr/share/doc/clonecd/examples/low-port.conf":     "-rw-r--r--",
	"./usr/share/doc/clonecd/examples/pxe.conf":          "-rw-r--r--",
	"./usr/share/doc/clonecd/examples/medusa-store.conf": "-rw-r--r--",
	"./usr/share/lintian/overrides/clonecd":              "-rw-r--r--",
}

type debEntry struct{ mode, owner, path string }

// listDeb parses dpkg-deb -c.
func listDeb(t *testing.T, deb string) []debEntry {
	t.Helper()
	var es []debEntry
	for _, line := range strings.Split(strings.TrimSpace(run(t, "dpkg-deb", "-c", deb)), "\n") {
		f := strings.Fields(line)
		if len(f) < 6 {
			t.Fatalf("dpkg-deb -c: line %q", line)
		}
		es = append(es, debEntry{f[0], f[1], f[5]})
	}
	return es
}

// TestPackageContents checks the package against dpkg-deb: its file
// name, control fields, conffiles and the exact list of files (the man
// pages are those the binary writes).
func TestPackageContents(t *testing.T) {
	testenv.NeedTools(t, "dpkg-deb")
	res := sharedDeb(t)
	bin := releaseBinary(t)
	tool, err := ToolVersion(context.Background(), bin)
	if err != nil {
		t.Fatal(err)
	}
	wantVersion, _ := DebVersion(tool, "1")
	if res.Version != wantVersion || res.Tool != tool {
		t.Errorf("Result version %q (tool %q), want %q (%q)", res.Version, res.Tool, wantVersion, tool)
	}
	if filepath.Base(res.Path) != "clonecd_"+wantVersion+"_amd64.deb" && runtime.GOARCH == "amd64" {
		t.Errorf("package file %s, want clonecd_%s_amd64.deb", filepath.Base(res.Path), wantVersion)
	}

	fields := map[string]string{}
	for _, f := range []string{"Package", "Version", "Architecture", "Section", "Priority", "Maintainer", "Depends", "Recommends", "Suggests", "Description"} {
		fields[f] = strings.TrimSpace(run(t, "dpkg-deb", "-f", res.Path, f))
	}
	arch := strings.TrimSpace(run(t, "dpkg", "--print-architecture"))
	for f, want := range map[string]string{"Package": "clonecd", "Version": wantVersion, "Architecture": arch, "Section": "admin", "Priority": "optional"} {
		if fields[f] != want {
			t.Errorf("control %s: %q, want %q", f, fields[f], want)
		}
	}
	// What the code runs: adduser (postinst); the tools of build, clone
	// and layout check; none of them is essential.
	for f, want := range map[string][]string{
		"Depends":    {"adduser"},
		"Recommends": {"e2fsprogs", "fdisk", "dosfstools", "grub-common", "grub-efi-amd64-bin", "isolinux", "syslinux-common", "busybox-static"},
		"Suggests":   {"xfsprogs", "openssh-client"},
	} {
		have := map[string]bool{}
		for _, p := range strings.Split(fields[f], ",") {
			have[strings.Fields(p)[0]] = true
		}
		for _, w := range want {
			if !have[w] {
				t.Errorf("control %s %q lacks %s", f, fields[f], w)
			}
		}
	}
	if strings.Contains(fields["Recommends"]+fields["Depends"], "xorriso") {
		t.Error("xorriso is only used by tests: the package must not pull it in")
	}

	ctl := t.TempDir()
	run(t, "dpkg-deb", "-e", res.Path, ctl)
	conffiles, err := os.ReadFile(filepath.Join(ctl, "conffiles"))
	if err != nil || strings.TrimSpace(string(conffiles)) != "/etc/default/clonecd" {
		t.Errorf("conffiles: %q, %v; want /etc/default/clonecd", conffiles, err)
	}
	for _, s := range []string{"postinst", "prerm", "postrm"} {
		st, err := os.Stat(filepath.Join(ctl, s))
		if err != nil || st.Mode().Perm() != 0o755 {
			t.Errorf("control %s: %v, %v", s, st, err)
			continue
		}
		run(t, "sh", "-n", filepath.Join(ctl, s))
	}

	want := map[string]string{}
	for p, m := range fixedFiles {
		want[p] = m
	}
	manDir := t.TempDir()
	run(t, bin, "man", "-o", manDir)
	pages, _ := filepath.Glob(filepath.Join(manDir, "*.1"))
	if len(pages) < 2 {
		t.Fatalf("clonecd man wrote %d pages", len(pages))
	}
	for _, p := range pages {
		want["./usr/share/man/man1/"+filepath.Base(p)+".gz"] = "-rw-r--r--"
	}
	dirs := map[string]bool{}
	got := map[string]string{}
	for _, e := range listDeb(t, res.Path) {
		if e.owner != "root/root" {
			t.Errorf("%s is owned by %s", e.path, e.owner)
		}
		if strings.HasPrefix(e.mode, "d") {
			if e.mode != "drwxr-xr-x" {
				t.Errorf("directory %s has mode %s", e.path, e.mode)
			}
			dirs[e.path] = true
			continue
		}
		got[e.path] = e.mode
	}
	for p, m := range want {
		if got[p] == "" {
			t.Errorf("package lacks %s", p)
		} else if got[p] != m {
			t.Errorf("%s has mode %s, want %s", p, got[p], m)
		}
	}
	var extra []string
	for p := range got {
		if want[p] == "" {
			extra = append(extra, p)
		}
	}
	for d := range dirs {
		used := false
		for p := range want {
			used = used || strings.HasPrefix(p, d)
		}
		if !used {
			extra = append(extra, d)
		}
	}
	sort.Strings(extra)
	if len(extra) > 0 {
		t.Errorf("package has what it should not: %v", extra)
	}
}

// TestPackageFiles checks what the generated files hold: man pages and the
// changelog gzipped at the best level without name or time, roff pages,
// completion scripts that their shells would load, the changelog that
// dpkg-parsechangelog reads, and the binary itself.
func TestPackageFiles(t *testing.T) {
	testenv.NeedTools(t, "dpkg-deb", "bash")
	res := sharedDeb(t)
	root := t.TempDir()
	run(t, "dpkg-deb", "-x", res.Path, root)

	same, err := os.ReadFile(filepath.Join(root, "usr/bin/clonecd"))
	orig, err2 := os.ReadFile(releaseBinary(t))
	if err != nil || err2 != nil || !bytes.Equal(same, orig) {
		t.Errorf("usr/bin/clonecd is not the binary given (%v, %v)", err, err2)
	}

	gzFiles, _ := filepath.Glob(filepath.Join(root, "usr/share/man/man1/*.gz"))
	gzFiles = append(gzFiles, filepath.Join(root, "usr/share/doc/clonecd/changelog.Debian.gz"))
	for _, p := range gzFiles {
		f, err := os.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		zr, err := gzip.NewReader(f)
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		body, err := io.ReadAll(zr)
		f.Close()
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		if zr.Name != "" || !zr.ModTime.IsZero() {
			t.Errorf("%s: gzip header has name %q, time %v", p, zr.Name, zr.ModTime)
		}
		if strings.HasSuffix(p, ".1.gz") && !bytes.Contains(body, []byte("\n.TH ")) && !bytes.HasPrefix(body, []byte(".TH ")) {
			t.Errorf("%s is not a roff man page", p)
		}
		raw, _ := os.ReadFile(p)
		if !bytes.Equal(raw, gz(body)) {
			t.Errorf("%s is not compressed at gzip's best level", p)
		}
	}

	if testenv.Tool("dpkg-parsechangelog") != "" {
		cl := filepath.Join(t.TempDir(), "changelog")
		b, _ := os.ReadFile(filepath.Join(root, "usr/share/doc/clonecd/changelog.Debian.gz"))
		zr, _ := gzip.NewReader(bytes.NewReader(b))
		body, _ := io.ReadAll(zr)
		os.WriteFile(cl, body, 0o644)
		out := run(t, "dpkg-parsechangelog", "-l", cl, "-S", "Version")
		if strings.TrimSpace(out) != res.Version {
			t.Errorf("changelog version %q, want %q", out, res.Version)
		}
	}

	bash := filepath.Join(root, "usr/share/bash-completion/completions/clonecd")
	run(t, "bash", "-n", bash)
	out := run(t, "bash", "-c", `source "$1" && complete -p clonecd`, "x", bash)
	if !strings.Contains(out, "clonecd") {
		t.Errorf("bash completion registers nothing for clonecd: %q", out)
	}
	for p, want := range map[string]string{
		"usr/share/zsh/vendor-completions/_clonecd":        "#compdef clonecd",
		"usr/share/fish/vendor_completions.d/clonecd.fish": "complete -c clonecd",
	} {
		b, err := os.ReadFile(filepath.Join(root, p))
		if err != nil || !bytes.Contains(b, []byte(want)) {
			t.Errorf("%s lacks %q (%v)", p, want, err)
		}
	}
	for _, sh := range []string{"zsh", "fish"} {
		if testenv.Tool(sh) != "" {
			p := map[string]string{"zsh": "usr/share/zsh/vendor-completions/_clonecd", "fish": "usr/share/fish/vendor_completions.d/clonecd.fish"}[sh]
			run(t, sh, "-n", filepath.Join(root, p))
		}
	}
}

// TestBuildErrors: what Build refuses, before writing anything, and how
// it says so.
func TestBuildErrors(t *testing.T) {
	dir := t.TempDir()
	script := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
			t.Fatal(err)
		}
		return p
	}
	for _, c := range []struct {
		name, bin string
		want      []string
	}{
		{"missing binary", filepath.Join(dir, "nonexistent"), []string{"nonexistent", "--version"}},
		{"dev build", script("dev", "echo clonecd dev"), []string{"dev", "not a release version", "make build/clonecd"}},
		{"not clonecd", script("other", "echo something 1.0"), []string{"other --version", `not "clonecd VERSION"`}},
		{"failing", script("failing", "echo broken >&2; exit 2"), []string{"failing --version", "broken"}},
		{"not a Go binary", script("script", `echo "clonecd 1.0"`), []string{"script", "Go build information"}},
	} {
		out := filepath.Join(dir, "out-"+strings.ReplaceAll(c.name, " ", "-"))
		_, err := Build(context.Background(), Options{Binary: c.bin, OutDir: out})
		if err == nil {
			t.Errorf("%s: no error", c.name)
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: error %q lacks %q", c.name, err, w)
			}
		}
		if _, err := os.Stat(out); err == nil {
			t.Errorf("%s: %s was made although the build was refused", c.name, out)
		}
	}
}

// TestMainBinaryDoesNotLinkNfpm: the packager stays out of clonecd.
func TestMainBinaryDoesNotLinkNfpm(t *testing.T) {
	testenv.NeedTools(t, "go")
	cmd := testenv.RepoRoot()
	out, err := runIn(cmd, "go", "list", "-deps", "./cmd/clonecd")
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	if !strings.Contains(out, "github.com/clonecd/clonecd/cli") {
		t.Fatalf("go list -deps ./cmd/clonecd does not list cli: the check would prove nothing:\n%s", out)
	}
	for _, bad := range []string{"goreleaser", "nfpm", "github.com/clonecd/clonecd/packaging"} {
		if strings.Contains(out, bad) {
			t.Errorf("cmd/clonecd links %s", bad)
		}
	}
}

// TestReproducible: the same binary and date give the same package, byte
// for byte (file times, gzip headers, the copyright's order).
func TestReproducible(t *testing.T) {
	res := sharedDeb(t)
	again, err := Build(context.Background(), Options{Binary: releaseBinary(t), OutDir: t.TempDir(), Date: testDate})
	if err != nil {
		t.Fatal(err)
	}
	a, err := os.ReadFile(res.Path)
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(again.Path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a, b) {
		t.Errorf("two builds of the same binary on the same date differ: %s and %s", res.Path, again.Path)
	}
	out := run(t, "dpkg-deb", "-c", res.Path)
	if !strings.Contains(out, testDate.Local().Format("2006-01-02 15:04")) {
		t.Errorf("file times are not the build date %v:\n%s", testDate, out)
	}
}
