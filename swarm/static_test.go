package swarm

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/clonecd/clonecd/internal/testenv"
)

// TestStaticBuild: a program using the package builds with CGO off into
// a statically linked binary (the cloner runs from an initramfs), and
// runs there.
func TestStaticBuild(t *testing.T) {
	testenv.NeedTools(t, "go", "file")
	bin := filepath.Join(t.TempDir(), "static")
	cmd := exec.Command("go", "build", "-trimpath", "-o", bin, "./testdata/static")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOAMD64=v1")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	out := testenv.Run(t, "file", bin)
	if !strings.Contains(out, "statically linked") {
		t.Errorf("file %s = %q; want statically linked", bin, out)
	}
	if out, err := exec.Command(bin).CombinedOutput(); err != nil || len(strings.TrimSpace(string(out))) != 40 {
		t.Errorf("%s = %q, %v; want an infohash", bin, out, err)
	}
}
