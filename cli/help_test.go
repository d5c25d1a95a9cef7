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
			var out, errb bytes.Buffer
			defer swapOutput(&out, &errb)()
			argv := append([]string{"clonecd"}, strings.Fields(name)...)
			if code := Main(append(argv, "--help")); code != 0 {
				t.Fatalf("exit %d, stderr %q", code, errb.String())
			}
			if !strings.HasPrefix(out.String(), "usage: clonecd "+name) {
				t.Errorf("help does not start with the usage line: %q", firstLine(out.String()))
			}
			if !strings.Contains(strings.ToLower(out.String()), "example") {
				t.Errorf("help of %q has no examples", name)
			}
			if errb.Len() != 0 {
				t.Errorf("help also wrote to stderr: %q", errb.String())
			}
		})
	}
}

func TestUnknownCommand(t *testing.T) {
	var out, errb bytes.Buffer
	defer swapOutput(&out, &errb)()
	if code := Main([]string{"clonecd", "frobnicate"}); code != 2 {
		t.Fatalf("exit %d, want 2", code)
	}
	if !strings.Contains(errb.String(), `unknown command "frobnicate"`) {
		t.Fatalf("stderr %q does not name the command", errb.String())
	}
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}

// swapOutput points Stdout and Stderr at the buffers and returns the
// function that restores them.
func swapOutput(out, errb *bytes.Buffer) func() {
	o, e := Stdout, Stderr
	Stdout, Stderr = out, errb
	return func() { Stdout, Stderr = o, e }
}
