package testenv

import (
	"github.com/clonecd/clonecd/internal/tools"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
)

// Strict reports whether missing prerequisites fail tests (CLONECD_STRICT=1).
func Strict() bool { return os.Getenv("CLONECD_STRICT") == "1" }

// Matrix reports whether the slow sweeps run (CLONECD_MATRIX=1: make
// matrix): the boot matrix, the UEFI PXE chains, every power cut.
func Matrix() bool { return os.Getenv("CLONECD_MATRIX") == "1" }

// Missing skips the test (or fails it under Strict) for a prerequisite
// that is not there.
func Missing(t testing.TB, format string, a ...any) {
	t.Helper()
	if Strict() {
		t.Fatalf("prerequisite missing (CLONECD_STRICT=1): "+format, a...)
	}
	t.Skipf("skipped, prerequisite missing: "+format, a...)
}

// NeedTools skips (or fails under Strict) unless every tool is on PATH or in
// /sbin, /usr/sbin.
func NeedTools(t testing.TB, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if Tool(tool) == "" {
			Missing(t, "tool %s not found (run `make deps`)", tool)
		}
	}
}

// Tool returns the path of a tool or "".
func Tool(name string) string { return tools.Find(name) }

// NeedRoot skips (or fails under Strict) unless running as root.
func NeedRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		Missing(t, "root")
	}
}

// Run runs a command and fails the test with its output on error. It
// returns standard output.
func Run(t testing.TB, name string, args ...string) string {
	t.Helper()
	out, err := Output(name, args...)
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return out
}

// Output runs a command and returns its combined output.
func Output(name string, args ...string) (string, error) {
	if p := Tool(name); p != "" {
		name = p
	}
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// Sparse creates a sparse file of size bytes under t.TempDir().
func Sparse(t testing.TB, name string, size int64) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	f.Close()
	return p
}

// Loop attaches image to a loop device with the given logical sector size
// (512 or 4096) and detaches it when the test ends. It returns /dev/loopN.
func Loop(t testing.TB, image string, sectorSize int) string {
	t.Helper()
	NeedRoot(t)
	NeedTools(t, "losetup")
	args := []string{"--find", "--show"}
	if sectorSize != 0 && sectorSize != 512 {
		args = append(args, "--sector-size", strconv.Itoa(sectorSize))
	}
	out := Run(t, "losetup", append(args, image)...)
	dev := strings.TrimSpace(out)
	t.Cleanup(func() {
		Output("partx", "-d", dev)
		Output("losetup", "-d", dev)
	})
	return dev
}

// GoldenDir is where `make golden` caches the Debian root.
func GoldenDir() string {
	if d := os.Getenv("CLONECD_GOLDEN"); d != "" {
		return d
	}
	return "/var/cache/clonecd/golden-bookworm"
}

// GoldenRoot returns the cached Debian bookworm golden root, skipping (or
// failing under Strict) when `make golden` has not built it.
func GoldenRoot(t testing.TB) string {
	t.Helper()
	d := GoldenDir()
	if _, err := os.Stat(d + ".ok-v1"); err != nil {
		Missing(t, "golden root %s (run `make golden`)", d)
	}
	return d
}

// NodeRoot returns the test nodes' root that `make golden` makes from the
// golden root (scripts/node-root.sh: only the kernel modules a QEMU node
// loads, no translations or manuals), what the VM tests pack into their
// images; skipping (or failing under Strict) when it is missing.
func NodeRoot(t testing.TB) string {
	t.Helper()
	d := GoldenDir() + "-node"
	if _, err := os.Stat(d + ".ok-v2"); err != nil { // scripts/node-root.sh's stamp
		Missing(t, "test nodes' root %s (run `make golden`)", d)
	}
	return d
}

// RepoRoot returns the repository's top directory.
func RepoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

// Clonecd builds the clonecd binary once per test binary (static, as the
// initramfs needs it) and returns its path.
func Clonecd(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("CLONECD_BIN"); p != "" {
		return p
	}
	binOnce.Do(func() {
		dir, err := os.MkdirTemp("", "clonecd-bin-")
		if err != nil {
			binErr = err
			return
		}
		binPath = filepath.Join(dir, "clonecd")
		cmd := exec.Command("go", "build", "-trimpath", "-o", binPath, "./cmd/clonecd")
		cmd.Dir = RepoRoot()
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOAMD64=v1")
		if out, err := cmd.CombinedOutput(); err != nil {
			binErr = &buildError{string(out), err}
		}
	})
	if binErr != nil {
		t.Fatalf("building clonecd: %v", binErr)
	}
	return binPath
}
