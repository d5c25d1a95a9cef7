package swarm

import (
	"errors"
	"os"
	"testing"

	"github.com/clonecd/clonecd/internal/testenv"
)

func TestMain(m *testing.M) {
	if os.Getenv(nodeEnv) != "" {
		os.Exit(runNode())
	}
	os.Exit(testenv.GuardEtc(m)) // fails if the tests changed the host's /etc
}

func errorsAs(err error, target any) bool { return errors.As(err, target) }
