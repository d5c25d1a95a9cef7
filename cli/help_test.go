package cli

import (
	"bytes"
	"strings"
	"testing"
)

// TestEveryCommandHasHelp runs `clonecd CMD --help` for every registered
// command: it must exit 0 and show the usage line and at least one example.
func TestEveryCommandHasHelp(t *testing.T) {
	if len(commands) < 10 {
		t.Fatalf("only %d commands registered", len(commands))
	}
	for name := range commands {
		t.Run(strings.ReplaceAll(name, " ", "_"), func(t *testing.T) {
			code, out, errs := runMain(t, append(strings.Fields(name), "--help")...)
			if code != 0 {
				t.Fatalf("exit %d, stderr %q", code, errs)
			}
			if !strings.HasPrefix(out, "usage: clonecd "+name) {
				t.Errorf("help does not start with the usage line: %q", firstLine(out))
			}
			if !strings.Contains(strings.ToLower(out), "example") {
				t.Errorf("help of %q has no examples", name)
			}
			if errs != "" {
				t.Errorf("help also wrote to stderr: %q", errs)
			}
		})
	}
}

func TestUnknownCommand(t *testing.T) {
	code, _, errs := runMain(t, "frobnicate")
	if code != 2 {
		t.Fatalf("exit %d, want 2", code)
	}
	if !strings.Contains(errs, `unknown command "frobnicate"`) {
		t.Fatalf("stderr %q does not name the command", errs)
	}
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}

// runMain runs clonecd with args and returns exit status, stdout, stderr.
func runMain(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	oldOut, oldErr := Stdout, Stderr
	Stdout, Stderr = &out, &errb
	defer func() { Stdout, Stderr = oldOut, oldErr }()
	code := Main(append([]string{"clonecd"}, args...))
	return code, out.String(), errb.String()
}
