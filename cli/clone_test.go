package cli

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"testing"
)

// TestCloneNetFlags: --net's usage rules, and a server that serves no
// image fails before the target is touched, naming the server. (A clone
// from a real clonecd serve is versions.TestCloneEachVersion.)
func TestCloneNetFlags(t *testing.T) {
	t.Parallel()
	empty := httptest.NewServer(http.NotFoundHandler())
	defer empty.Close()
	img := filepath.Join(t.TempDir(), "node.img") // never created
	tests := []struct {
		args []string
		code int
		err  string // regexp on stderr
	}{
		{[]string{"clone", "--net", empty.URL, "--media", t.TempDir(), "--target", img, "--hostname", "n1"}, 2, `--media and --net exclude each other`},
		{[]string{"clone", "--net", empty.URL, "--target", img}, 2, `--net needs --target and --hostname`},
		{[]string{"clone", "--net", empty.URL, "--hostname", "n1"}, 2, `--net needs --target and --hostname`},
		{[]string{"clone", "--net", empty.URL, "--target", img, "--hostname", "n1", "-q"}, 2, `--net ` + regexp.QuoteMeta(empty.URL) + `: .*CLONE_CD_VERSION: 404 Not Found, not from a clonecd server`},
		{[]string{"clone", "--help"}, 0, `--net https://10.0.0.1:8443 --credential node07.cred --tls-pin sha256//`},
	}
	for _, tt := range tests {
		code, out, errs := runMain(t, tt.args...)
		if code != tt.code || !regexp.MustCompile(tt.err).MatchString(out+errs) {
			t.Errorf("%v: exit %d, out %q, err %q; want exit %d and %q", tt.args, code, out, errs, tt.code, tt.err)
		}
	}
	if _, err := os.Stat(img); err == nil {
		t.Errorf("%s was created by a clone that could not start", img)
	}
}
