package packaging

import (
	"regexp"
	"strings"
	"testing"

	"github.com/clonecd/clonecd/internal/testenv"
)

func TestUpstreamVersion(t *testing.T) {
	for _, c := range []struct{ in, want, err string }{
		{"1.0", "1.0", ""},
		{"1.19", "1.19", ""},
		{"v1.2.3", "1.2.3", ""},
		{" 2.0\n", "2.0", ""},
		{"1.0-rc1", "1.0~rc1", ""},
		{"1.0-beta2", "1.0~beta2", ""},
		{"1.2-3-gabc1234", "1.2+3+gabc1234", ""},
		{"1.2-3-gabc1234-dirty", "1.2+3+gabc1234+dirty", ""},
		{"1_2", "1.2", ""},
		{"dev", "", "not a release version"},
		{"", "", "not a release version"},
		{"v", "", "not a release version"},
		{"1.0 beta", "", "not a release version"},
		{"1.0:2", "", "not a release version"},
		{"1.0/x", "", "not a release version"},
	} {
		got, err := UpstreamVersion(c.in)
		switch {
		case c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)):
			t.Errorf("UpstreamVersion(%q) = %q, %v; want an error with %q", c.in, got, err, c.err)
		case c.err == "" && (err != nil || got != c.want):
			t.Errorf("UpstreamVersion(%q) = %q, %v; want %q", c.in, got, err, c.want)
		}
	}
}

// TestDebVersionDpkg checks the versions with dpkg itself: each is valid,
// and they sort as the tool's versions do (a pre-release before its
// release, a git describe after it).
func TestDebVersionDpkg(t *testing.T) {
	testenv.NeedTools(t, "dpkg")
	order := []string{"0.9", "1.0-rc1", "1.0", "1.0-2-gabc", "1.1", "v1.10"}
	var debs []string
	for _, v := range order {
		d, err := DebVersion(v, "")
		if err != nil {
			t.Fatalf("DebVersion(%q): %v", v, err)
		}
		run(t, "dpkg", "--validate-version", d)
		debs = append(debs, d)
	}
	for i := 1; i < len(debs); i++ {
		if out, err := testenv.Output("dpkg", "--compare-versions", debs[i-1], "lt", debs[i]); err != nil {
			t.Errorf("dpkg: %s is not before %s (from %s, %s): %v %s", debs[i-1], debs[i], order[i-1], order[i], err, out)
		}
	}
	for _, c := range []struct{ rev, want, err string }{
		{"", "1.0-1", ""}, {"2", "1.0-2", ""}, {"1+b1", "1.0-1+b1", ""}, {"1-2", "", "revision"}, {"x y", "", "revision"},
	} {
		got, err := DebVersion("1.0", c.rev)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("DebVersion(1.0, %q) = %q, %v; want an error", c.rev, got, err)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("DebVersion(1.0, %q) = %q, %v; want %q", c.rev, got, err, c.want)
		}
	}
}

// debianUpstreamRule is Debian policy's rule, written apart from the code.
var debianUpstreamRule = regexp.MustCompile(`^[0-9][A-Za-z0-9.+~]*$`)

func FuzzUpstreamVersion(f *testing.F) {
	for _, s := range []string{"1.0", "v1.2.3", "1.0-rc1", "1.2-3-gabc", "dev", "", "1_2", "1.0-"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		u, err := UpstreamVersion(in)
		if err != nil {
			return
		}
		if !debianUpstreamRule.MatchString(u) {
			t.Fatalf("UpstreamVersion(%q) = %q: not a Debian upstream version", in, u)
		}
		if again, err := UpstreamVersion(u); err != nil || again != u {
			t.Fatalf("UpstreamVersion(%q) = %q, but again gives %q, %v", in, u, again, err)
		}
	})
}
