package clone

import (
	"fmt"
	"strings"

	"github.com/clonecd/clonecd/medium"
	"github.com/clonecd/clonecd/trust"
)

// TrustReporter is a Reporter that also reports how the cloner trusted
// the media (trust.Status's String: "signed by key ID" or "UNSIGNED"),
// for the node's reported state (fleet.State.Trust). The setup step
// tells it before any later step starts.
type TrustReporter interface {
	Trusted(status string)
}

// verifyMedia is the setup step's first act. With trusted keys
// (Config.Trust), it verifies MANIFEST's signature, then every file the
// manifest lists but the image (and its .sha256: the image is checked
// against the manifest's sha256 itself, read whole in setup from a CD,
// at the end of its stream over the network), so that a forged layout,
// ks.cfg, nodes table, clonecd.conf, kernel or initrd stops the run
// before anything is written. From then on r.media is the media as the
// manifest says (trust.VerifiedFS): each file is checked again as the
// step that uses it reads it, a file the manifest does not list is
// missing. Without a key the media are used as they are, and the log and
// the report say UNSIGNED.
func (r *run) verifyMedia() error {
	keys := r.cfg.Trust.Keys()
	if len(keys) == 0 {
		r.trust = trust.Status{}
		r.logf("setup: %s: this cloner trusts no key, so the media's files are not checked against a signature (build the cloner with --trust KEY.pub, or clone --trust KEY.pub)", trust.Unsigned)
		r.reportTrust()
		return nil
	}
	m, st, err := r.cfg.Trust.ReadManifest(r.media)
	if err != nil {
		return refused(err)
	}
	for _, f := range m.Files {
		if medium.IsImage(f.Name) || medium.IsImage(strings.TrimSuffix(f.Name, medium.SumSuffix)) {
			continue
		}
		if _, err := trust.ReadFile(r.media, m, f.Name); err != nil {
			return refused(err)
		}
	}
	img := ""
	for _, n := range medium.Images {
		if _, ok := m.Lookup(n); ok {
			img = n
			break
		}
	}
	if img == "" {
		return refused(fmt.Errorf("%s lists no image (%s)", medium.ManifestFile, strings.Join(medium.Images, " or ")))
	}
	r.manifest, r.trust = m, st
	r.media = trust.VerifiedFS(r.media, m)
	r.logf("setup: media %s (%s); %d files checked against it, %s against it as it is read", st, st.Comment, len(m.Files)-1, img)
	r.reportTrust()
	return nil
}

// refused is a verification failure of setup: the file is named by err.
func refused(err error) error {
	return fmt.Errorf("%w (media refused: nothing was written to the disk)", err)
}

// signedImage is the image the signed manifest lists and its sha256 (ok
// false without a manifest).
func (r *run) signedImage() (name, sum string, ok bool) {
	if r.manifest == nil {
		return "", "", false
	}
	for _, n := range medium.Images {
		if f, ok := r.manifest.Lookup(n); ok {
			return n, f.SHA256, true
		}
	}
	return "", "", false
}

// sumFrom names where the image's sha256 came from.
func (r *run) sumFrom() string {
	if r.manifest != nil {
		return "the signed " + medium.ManifestFile
	}
	return medium.SumName(r.image)
}

func (r *run) reportTrust() {
	if tr, ok := r.cfg.Reporter.(TrustReporter); ok {
		tr.Trusted(r.trust.String())
	}
}
