package cli

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/clonecd/clonecd/internal/testenv"
)

// TestCompletion: clonecd completion bash|zsh|fish prints a script for
// each shell; bash (and zsh, fish where installed) parse it; bash's
// completes the commands and the values of --format.
func TestCompletion(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct{ shell, marker, check string }{
		{"bash", "complete -o default -F __start_clonecd clonecd", "bash"},
		{"zsh", "#compdef clonecd", "zsh"},
		{"fish", "complete -c clonecd", "fish"},
	} {
		t.Run(tt.shell, func(t *testing.T) {
			t.Parallel()
			code, out, errs := runMain(t, "completion", tt.shell)
			if code != 0 || errs != "" || !strings.Contains(out, tt.marker) {
				t.Fatalf("completion %s: exit %d, stderr %q, no %q in the script", tt.shell, code, errs, tt.marker)
			}
			script := filepath.Join(t.TempDir(), "clonecd."+tt.shell)
			writeFile(t, script, out)
			sh, err := exec.LookPath(tt.check)
			if err != nil {
				if tt.shell == "bash" {
					testenv.Missing(t, "bash")
				}
				t.Logf("%s not installed: script not parsed", tt.check)
				return
			}
			if out, err := exec.Command(sh, "-n", script).CombinedOutput(); err != nil {
				t.Errorf("%s -n: %v\n%s", tt.check, err, out)
			}
		})
	}
	// bash asks clonecd itself (__complete) for the candidates
	code, out, _ := runMain(t, "__complete", "pack", "--format", "")
	if code != 0 || !strings.Contains(out, "newc") || !strings.Contains(out, "crc") {
		t.Errorf("__complete pack --format: exit %d %q", code, out)
	}
	code, out, _ = runMain(t, "__complete", "re")
	if code != 0 || !strings.Contains(out, "reclone") || !strings.Contains(out, "reclone-all") {
		t.Errorf("__complete re: exit %d %q", code, out)
	}
}

// TestManPages: clonecd man -o DIR writes a page for every command from
// the same help, and man renders each.
func TestManPages(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if code, out, errs := runMain(t, "man", "-o", dir); code != 0 || out != "" {
		t.Fatalf("man: exit %d %q %q", code, out, errs)
	}
	for _, c := range allCommands(testRoot()) {
		if !c.IsAvailableCommand() && c.HasParent() {
			continue
		}
		page := filepath.Join(dir, strings.ReplaceAll(c.CommandPath(), " ", "-")+".1")
		b, err := os.ReadFile(page)
		if err != nil {
			t.Errorf("no page for %s: %v", c.CommandPath(), err)
			continue
		}
		if !strings.HasPrefix(string(b), ".nh\n.TH ") {
			t.Errorf("%s: not a man page: %.60q", page, b)
		}
	}
	man, err := exec.LookPath("man")
	if err != nil {
		testenv.Missing(t, "man")
		return
	}
	for _, page := range []string{"clonecd.1", "clonecd-pack.1", "clonecd-layout-check.1"} {
		cmd := exec.Command(man, "-l", filepath.Join(dir, page))
		cmd.Env = append(os.Environ(), "MANWIDTH=80", "MANPAGER=cat", "PAGER=cat")
		var stderr strings.Builder
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		text := string(out)
		if err != nil || stderr.Len() > 0 {
			t.Errorf("man -l %s: %v\n%s", page, err, stderr.String())
		}
		for _, want := range map[string][]string{
			"clonecd.1":              {"Exit status, the same for every command", "3  clone stopped at its --break step"},
			"clonecd-pack.1":         {"/proc/*", "DIR/*** is DIR", "-j, --jobs", "clonecd pack --exclude '/home/***'"},
			"clonecd-layout-check.1": {"Exit status: 0 preserve, 1 repartition, 2 error", "--json"},
		}[page] {
			if !strings.Contains(strings.Join(strings.Fields(text), " "), strings.Join(strings.Fields(want), " ")) {
				t.Errorf("man -l %s lacks %q:\n%s", page, want, text)
			}
		}
	}
}
