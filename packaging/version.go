package packaging

import (
	"fmt"
	"regexp"
	"strings"
)

// preRelease matches the start of a pre-release suffix ("rc1", "beta2"):
// such a suffix sorts before the release, so its '-' becomes '~'.
var preRelease = regexp.MustCompile(`^(?i:alpha|beta|rc|pre|dev)`)

// debianUpstream is what Debian allows in an upstream version that has a
// revision after it (Debian policy 5.6.12): a digit first, then
// alphanumerics and . + ~ -.
var debianUpstream = regexp.MustCompile(`^[0-9][A-Za-z0-9.+~-]*$`)

// UpstreamVersion turns the tool's version (what `clonecd --version`
// prints: CLONE_CD_VERSION's "1.0", a tag "v1.2.3", git describe's
// "1.2-3-gabc1234") into the upstream part of a Debian version: a leading
// "v" dropped, a pre-release "-rc1" written "~rc1" (before the release),
// any other '-' written '+' (after it), '_' written '.'. A version that
// does not start with a digit ("dev", a build without -ldflags) is
// refused: it has no place in Debian's version order.
func UpstreamVersion(v string) (string, error) {
	orig := v
	v = strings.TrimPrefix(strings.TrimSpace(v), "v")
	var b strings.Builder
	for i := 0; i < len(v); i++ {
		switch c := v[i]; {
		case c == '-' && preRelease.MatchString(v[i+1:]):
			b.WriteByte('~')
		case c == '-':
			b.WriteByte('+')
		case c == '_':
			b.WriteByte('.')
		default:
			b.WriteByte(c)
		}
	}
	u := b.String()
	if !debianUpstream.MatchString(u) {
		return "", fmt.Errorf("version %q: not a release version (Debian needs a digit first, then letters, digits and . + ~ -); build the binary with make build/clonecd", orig)
	}
	return u, nil
}

// DebVersion is the package's version: UpstreamVersion(v) and the Debian
// revision ("1" when empty).
func DebVersion(v, revision string) (string, error) {
	u, err := UpstreamVersion(v)
	if err != nil {
		return "", err
	}
	if revision == "" {
		revision = "1"
	}
	if !regexp.MustCompile(`^[A-Za-z0-9.+~]+$`).MatchString(revision) {
		return "", fmt.Errorf("revision %q: only letters, digits and . + ~", revision)
	}
	return u + "-" + revision, nil
}
