package clone

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"strings"

	"github.com/clonecd/clonecd/cpio"
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
		b, err := trust.ReadFile(r.media, m, f.Name)
		if err != nil {
			return refused(err)
		}
		if f.Name == medium.Initrd {
			r.checkInitrdKeys(b, st.Key)
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

// checkInitrdKeys warns when the cloner a clone installs as the node's
// ramclone entry (the signed isolinux/initrd.img) does not trust the key
// that signed this version: a network reclone of the node would then
// refuse the master's versions, or clone them UNSIGNED. The entry keeps
// the keys its initramfs carries (trust.TrustDir); the master chose them
// when it signed it, so this is a warning, not a refusal.
func (r *run) checkInitrdKeys(initrd []byte, signer trust.PublicKey) {
	ids, err := initrdKeyIDs(initrd)
	if err != nil {
		r.logf("setup: warning: %s: cannot list the keys it trusts: %v", medium.Initrd, err)
		return
	}
	for _, id := range ids {
		if id == signer.ID() {
			r.logf("setup: %s (the ramclone entry) trusts key %s", medium.Initrd, id)
			return
		}
	}
	r.logf("setup: warning: %s, the cloner this node keeps as its ramclone entry, does not trust key %s (it trusts: %s): a network reclone of this node will not verify this master's versions; publish the initrd.img built with --trust %s",
		medium.Initrd, signer.ID(), orNone(strings.Join(ids, " ")), signer.FileName())
}

// initrdKeyIDs lists the keys an initramfs (gzip-compressed or not)
// carries in trust.TrustDir, by the IDs of their file names.
func initrdKeyIDs(b []byte) ([]string, error) {
	var in io.Reader = bytes.NewReader(b)
	if len(b) > 2 && b[0] == 0x1f && b[1] == 0x8b {
		z, err := gzip.NewReader(in)
		if err != nil {
			return nil, err
		}
		in = z
	}
	cr := cpio.NewReader(in)
	dir := strings.TrimPrefix(trust.TrustDir, "/") + "/"
	var ids []string
	for {
		h, err := cr.Next()
		if err == io.EOF {
			return ids, nil
		}
		if err != nil {
			return ids, err
		}
		name := strings.TrimPrefix(h.Name, "./")
		if id, ok := strings.CutPrefix(name, dir); ok && strings.HasSuffix(id, trust.PubSuffix) && !strings.Contains(id, "/") {
			ids = append(ids, strings.TrimSuffix(id, trust.PubSuffix))
		}
	}
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
