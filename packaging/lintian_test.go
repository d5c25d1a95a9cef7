package packaging

import (
	"strings"
	"testing"

	"github.com/clonecd/clonecd/internal/testenv"
)

// TestLintian runs lintian on the package: no error and no warning;
// what the package cannot fix is overridden in files/lintian-overrides
// with the reason beside it. Everything lintian says is logged.
func TestLintian(t *testing.T) {
	testenv.NeedTools(t, "lintian")
	t.Parallel()
	res := sharedDeb(t)
	out, err := testenv.Output("lintian", "--display-info", "--show-overrides", "--tag-display-limit", "0", res.Path)
	t.Logf("lintian %s:\n%s", res.Path, out)
	var bad []string
	for _, line := range strings.Split(out, "\n") {
		if strings.HasPrefix(line, "E: ") || strings.HasPrefix(line, "W: ") {
			bad = append(bad, line)
		}
	}
	if len(bad) > 0 {
		t.Errorf("lintian errors and warnings (fix them, or override them with a reason in files/lintian-overrides):\n%s", strings.Join(bad, "\n"))
	}
	// lintian's status counts overridden tags too when they are shown
	// (--show-overrides): the lines above are the verdict, err is only
	// logged.
	if err != nil {
		t.Logf("lintian: %v", err)
	}
	if !strings.Contains(out, "O: clonecd: statically-linked-binary") {
		t.Errorf("lintian did not read the overrides file (no O: line):\n%s", out)
	}
}
