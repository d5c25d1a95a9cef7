package nodesync

import (
	"os"
	"testing"

	"github.com/clonecd/clonecd/internal/testenv"
)

// TestMain fails the package if its tests changed the host's /etc, and
// removes the images the tests share.
func TestMain(m *testing.M) {
	code := testenv.GuardEtc(m)
	cleanupShared()
	os.Exit(code)
}
