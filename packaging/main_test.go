package packaging

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/clonecd/clonecd/internal/testenv"
)

// shared is what several tests use: a released clonecd binary and its
// package, built once.
var shared struct {
	dir      string // removed when the tests end
	binOnce  sync.Once
	bin      string
	binErr   error
	debOnce  sync.Once
	deb      Result
	debErr   error
	buildMu  sync.Mutex
	building int
}

// TestMain fails the package if its tests changed the host's /etc (they
// install the package into chroots).
func TestMain(m *testing.M) {
	code := testenv.GuardEtc(m)
	if shared.dir != "" {
		os.RemoveAll(shared.dir)
	}
	os.Exit(code)
}

func sharedDir(t testing.TB) string {
	t.Helper()
	shared.buildMu.Lock()
	defer shared.buildMu.Unlock()
	if shared.dir == "" {
		d, err := os.MkdirTemp("", "clonecd-packaging-test-")
		if err != nil {
			t.Fatal(err)
		}
		shared.dir = d
	}
	return shared.dir
}

// releaseBinary returns a clonecd binary with a release version:
// $CLONECD_BIN (make test builds it with CLONE_CD_VERSION) when it has
// one, else one built here with version 1.0.
func releaseBinary(t testing.TB) string {
	t.Helper()
	shared.binOnce.Do(func() {
		if p := os.Getenv("CLONECD_BIN"); p != "" {
			if v, err := ToolVersion(context.Background(), p); err == nil {
				if _, err := UpstreamVersion(v); err == nil {
					shared.bin = p
					return
				}
			}
		}
		out := filepath.Join(sharedDir(t), "clonecd")
		cmd := exec.Command("go", "build", "-trimpath", "-ldflags", "-s -w -X github.com/clonecd/clonecd/cli.Version=1.0", "-o", out, "./cmd/clonecd")
		cmd.Dir = testenv.RepoRoot()
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOAMD64=v1")
		if b, err := cmd.CombinedOutput(); err != nil {
			shared.binErr = &buildErr{string(b), err}
			return
		}
		shared.bin = out
	})
	if shared.binErr != nil {
		t.Fatalf("building clonecd: %v", shared.binErr)
	}
	return shared.bin
}

type buildErr struct {
	out string
	err error
}

func (e *buildErr) Error() string { return e.err.Error() + "\n" + e.out }

// testDate is the date of the packages built here.
var testDate = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

// sharedDeb returns the package of releaseBinary, built once.
func sharedDeb(t testing.TB) Result {
	t.Helper()
	bin := releaseBinary(t)
	shared.debOnce.Do(func() {
		shared.deb, shared.debErr = Build(context.Background(), Options{Binary: bin, OutDir: filepath.Join(sharedDir(t), "deb"), Date: testDate})
	})
	if shared.debErr != nil {
		t.Fatalf("building the package: %v", shared.debErr)
	}
	return shared.deb
}

// run runs a command and fails the test with its output on error.
func run(t testing.TB, name string, args ...string) string {
	t.Helper()
	out, err := testenv.Output(name, args...)
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return out
}

// runIn runs a command in dir and returns its combined output.
func runIn(dir, name string, args ...string) (string, error) {
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	return string(out), err
}
