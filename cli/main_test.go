package cli

import (
	"os"
	"testing"

	"github.com/clonecd/clonecd/internal/testenv"
)

// TestMain fails the package if its tests changed the host's /etc.
func TestMain(m *testing.M) { os.Exit(testenv.GuardEtc(m)) }
