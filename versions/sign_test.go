package versions

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/clonecd/clonecd/internal/testenv"
	"github.com/clonecd/clonecd/internal/testimage"
	"github.com/clonecd/clonecd/medium"
	"github.com/clonecd/clonecd/trust"
)

// TestSignedPublish: publish with a key writes MANIFEST.minisig in the
// version, which Debian's minisign accepts (and refuses once MANIFEST
// changed), and which the store lists as signed by the key.
func TestSignedPublish(t *testing.T) {
	testenv.NeedTools(t, "minisign")
	src := t.TempDir()
	keyFile := filepath.Join(t.TempDir(), "clonecd.key")
	key, err := trust.GenerateKey(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	s, _ := Open(filepath.Join(t.TempDir(), "clone_image"))
	signed, err := s.Publish(testimage.Write(t, src, "a"), PublishOptions{Layout: layoutFile(t, src), Key: key})
	if err != nil {
		t.Fatal(err)
	}
	unsigned, err := s.Publish(testimage.Write(t, src, "b"), PublishOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !signed.Signed || signed.KeyID != key.ID() || unsigned.Signed {
		t.Errorf("Publish: signed %v by %q, unsigned %v; want signed by %s, unsigned", signed.Signed, signed.KeyID, unsigned.Signed, key.ID())
	}
	list, err := s.List()
	if err != nil || len(list) != 2 || !list[0].Signed || list[0].KeyID != key.ID() || list[1].Signed {
		t.Fatalf("List() = %+v, %v; want 1.0 signed by %s, 1.1 unsigned", list, err, key.ID())
	}

	minisign := func(dir string) error {
		cmd := exec.Command("minisign", "-Vm", medium.ManifestFile, "-p", keyFile+trust.PubSuffix)
		cmd.Dir = dir
		out, err := cmd.CombinedOutput()
		t.Logf("minisign -Vm in %s: %s", filepath.Base(dir), out)
		return err
	}
	if err := minisign(signed.Dir); err != nil {
		t.Errorf("minisign -Vm MANIFEST -p KEY.pub refuses a published version: %v", err)
	}
	v, _ := trust.NewVerifier(key.Public())
	if _, st, err := v.ReadManifest(os.DirFS(signed.Dir)); err != nil || !st.Signed {
		t.Errorf("ReadManifest(published version) = %v, %v; want signed", st, err)
	}
	if _, err := os.Stat(filepath.Join(unsigned.Dir, medium.SignatureFile)); err == nil {
		t.Errorf("an unsigned publish wrote %s", medium.SignatureFile)
	}

	// The same check must fail once MANIFEST changed.
	man := filepath.Join(signed.Dir, medium.ManifestFile)
	b, _ := os.ReadFile(man)
	os.WriteFile(man, append(b[:len(b)-2], '0', '\n'), 0o600)
	if err := minisign(signed.Dir); err == nil {
		t.Errorf("minisign accepts a changed MANIFEST")
	}
}
