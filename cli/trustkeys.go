package cli

import (
	"fmt"
	"strings"

	"github.com/clonecd/clonecd/trust"
)

// loadTrust loads the keys of --trust FILE.pub|DIR (repeatable): nil
// without paths, an error when the paths hold no key (a typo must not
// turn a checking consumer into one that checks nothing).
func loadTrust(paths []string) (*trust.Verifier, error) {
	if len(paths) == 0 {
		return nil, nil
	}
	v, err := trust.LoadVerifier(paths...)
	if err != nil {
		return nil, fmt.Errorf("--trust: %w", err)
	}
	if len(v.Keys()) == 0 {
		return nil, fmt.Errorf("--trust %s: no public key (*%s) in it", strings.Join(paths, " "), trust.PubSuffix)
	}
	return v, nil
}

// cloneTrust is the keys clone trusts: --trust's, else those of the
// cloner's trust.TrustDir (in the clone CD's rescue shell, on a node whose
// ramclone entry runs it, or wherever an admin put keys there); none:
// the clone says UNSIGNED.
func cloneTrust(paths []string) (*trust.Verifier, error) {
	if len(paths) > 0 {
		return loadTrust(paths)
	}
	v, err := trust.LoadTrustDir(trust.TrustDir)
	if err != nil {
		return nil, fmt.Errorf("the cloner's trusted keys: %w", err)
	}
	return v, nil
}
