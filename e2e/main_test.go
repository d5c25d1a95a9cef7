package e2e

import (
	"os"
	"testing"

	"github.com/clonecd/clonecd/internal/testenv"
)

// TestMain fails the package if its tests changed the host's /etc, and
// removes the shared work directory (setup).
func TestMain(m *testing.M) {
	code := testenv.GuardEtc(m)
	if shared.dir != "" {
		os.RemoveAll(shared.dir)
	}
	os.Exit(code)
}
