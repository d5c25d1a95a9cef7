package cli

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/clonecd/clonecd/internal/testenv"
	"github.com/clonecd/clonecd/medium"
)

// TestMain fails the package if its tests changed the host's /etc.
func TestMain(m *testing.M) { os.Exit(testenv.GuardEtc(m)) }

// runMain runs clonecd in-process with args and returns its exit status,
// standard output and standard error.
func runMain(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	return runIn(t, "", args...)
}

// runIn is runMain with stdin as standard input.
func runIn(t *testing.T, stdin string, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := Run(append([]string{"clonecd"}, args...), Output{Stdin: strings.NewReader(stdin), Stdout: &out, Stderr: &errb})
	return code, out.String(), errb.String()
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}

// publishStore publishes img, unsigned and with cliLayout, as a new
// version of the store (made if missing), with more publish flags args.
func publishStore(t *testing.T, store, img string, args ...string) {
	t.Helper()
	lay := filepath.Join(t.TempDir(), medium.Layout)
	writeFile(t, lay, cliLayout)
	args = append(append([]string{"publish", "--unsigned", "--dir", store, "--layout", lay}, args...), img)
	if code, _, errs := runMain(t, args...); code != 0 {
		t.Fatalf("publish: exit %d: %s", code, errs)
	}
}
