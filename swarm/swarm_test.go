package swarm

import (
	"errors"
	"os"
	"testing"

	"github.com/clonecd/clonecd/internal/testenv"
)

func TestMain(m *testing.M) { os.Exit(testenv.GuardEtcOr(m, nodeEnv, runNode)) }

func errorsAs(err error, target any) bool { return errors.As(err, target) }
