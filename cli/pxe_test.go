package cli

import (
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestPXEUsage: serve's and reclone's --pxe flags are checked when parsed
// and refused, exit 2, before anything starts.
func TestPXEUsage(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "store")
	for _, tt := range []struct {
		args []string
		err  string // regexp on stderr
	}{
		{[]string{"serve", "--dir", dir, "--pxe-range", "10.0.0.100-10.0.0.199"}, `--pxe-range needs --pxe`},
		{[]string{"serve", "--dir", dir, "--pxe-new"}, `--pxe-new needs --pxe`},
		{[]string{"serve", "--dir", dir, "--pxe", "--pxe-range", "10.0.0.100"}, `"--pxe-range" flag: DHCP range "10.0.0.100": want START-END`},
		{[]string{"serve", "--dir", dir, "--pxe", "--pxe-range", "10.0.0.100-10.0.1.5/24"}, `not in one /24 network`},
		{[]string{"serve", "--dir", dir, "--pxe", "--pxe-http-port", "0"}, `"--pxe-http-port" flag: want 1-65535`},
		{[]string{"reclone", "--pxe", "--dir", dir, "--rsh", "ssh", "s001"}, `--rsh: not with --pxe`},
		{[]string{"reclone", "--pxe", "--dir", dir, "-bad"}, `unknown shorthand flag`},
	} {
		t.Run(strings.Join(tt.args, "_"), func(t *testing.T) {
			code, out, errs := runMain(t, tt.args...)
			if code != 2 || out != "" || !regexp.MustCompile(tt.err).MatchString(errs) {
				t.Errorf("clonecd %q: exit %d, stdout %q, stderr %q; want exit 2, stderr matching %q", tt.args, code, out, errs, tt.err)
			}
		})
	}
}
