package builder

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/clonecd/clonecd/internal/testenv"
	"github.com/clonecd/clonecd/medium"
	"github.com/clonecd/clonecd/trust"
)

// TestBuildTrust: a CD built with a signing key, the server's pin and the
// nodes' tokens carries a MANIFEST of its medium files that Debian's
// minisign accepts and trust verifies file by file, tls-pin= in
// clonecd.conf and on the clone-net entry, and the tokens in
// isolinux/credentials.img (a newc archive with a 0600 file), which every
// entry loads after the initramfs. A prebuilt initramfs cannot take
// trusted keys.
func TestBuildTrust(t *testing.T) {
	testenv.NeedTools(t, "xorriso", "minisign", "cpio")
	o := buildOptions(t)
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "clonecd.key")
	key, err := trust.GenerateKey(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	secret, _ := trust.LoadOrCreateSecret(dir)
	s1, _ := secret.Credential("s001")
	s2, _ := secret.Credential("s002")
	_, pin, err := trust.LoadOrCreateServerCert(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	o.Server, o.TLSPin, o.Key, o.Credentials = "https://10.0.0.1:8443", pin, key, []trust.Credential{s1, s2}
	s, err := Build(o)
	if err != nil {
		t.Fatal(err)
	}
	if s.Signed != "signed by key "+key.ID() || s.Credentials != 2 {
		t.Errorf("summary: %q, %d credentials", s.Signed, s.Credentials)
	}
	media := filepath.Join(dir, "media")
	testenv.Run(t, "xorriso", "-osirrox", "on", "-indev", o.Output, "-extract", "/", media)

	cmd := exec.Command("minisign", "-Vm", medium.ManifestFile, "-p", keyFile+trust.PubSuffix)
	cmd.Dir = media
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("minisign -Vm MANIFEST on the CD: %v\n%s", err, out)
	}
	v, _ := trust.NewVerifier(key.Public())
	m, st, err := v.ReadManifest(os.DirFS(media))
	if err != nil || !st.Signed {
		t.Fatalf("ReadManifest(CD) = %v, %v", st, err)
	}
	var listed []string
	for _, f := range m.Files {
		listed = append(listed, f.Name)
		if _, err := trust.ReadFile(os.DirFS(media), m, f.Name); err != nil {
			t.Errorf("the CD's %s: %v", f.Name, err)
		}
	}
	want := []string{medium.Version, medium.Conf, medium.Initrd, medium.Credentials, medium.Kernel, medium.ImageGzip, medium.SumName(medium.ImageGzip), medium.Layout}
	if strings.Join(listed, " ") != strings.Join(sortedCopy(want), " ") {
		t.Errorf("the CD's MANIFEST lists %v; want %v", listed, sortedCopy(want))
	}

	conf, _ := os.ReadFile(filepath.Join(media, medium.Conf))
	iso, _ := os.ReadFile(filepath.Join(media, "isolinux/isolinux.cfg"))
	for what, text := range map[string]string{"clonecd.conf": string(conf), "isolinux.cfg": string(iso)} {
		if !strings.Contains(text, "tls-pin="+pin) {
			t.Errorf("%s lacks the pin:\n%s", what, text)
		}
	}
	if !strings.Contains(string(iso), "initrd=/isolinux/initrd.img,/"+medium.Credentials+" ") {
		t.Errorf("isolinux.cfg does not load %s:\n%s", medium.Credentials, iso)
	}
	x := filepath.Join(dir, "x")
	os.Mkdir(x, 0o755)
	img, _ := os.ReadFile(filepath.Join(media, medium.Credentials))
	c := exec.Command("cpio", "-id", "--quiet")
	c.Dir, c.Stdin = x, bytes.NewReader(img)
	if out, err := c.CombinedOutput(); err != nil {
		t.Fatalf("cpio -id %s: %v\n%s", medium.Credentials, err, out)
	}
	creds, err := trust.LoadCredentials(filepath.Join(x, trust.CredentialsFile))
	if err != nil || len(creds) != 2 || creds[0] != s1 || creds[1] != s2 {
		t.Errorf("%s holds %v, %v; want s001's and s002's", medium.Credentials, creds, err)
	}

	o.Output = filepath.Join(dir, "again.iso")
	o.Trust = []string{keyFile + trust.PubSuffix}
	if _, err := Build(o); err == nil || !strings.Contains(err.Error(), "--trust with --initrd") {
		t.Errorf("Build(--trust, prebuilt --initrd) = %v; want a refusal", err)
	}
}

func sortedCopy(s []string) []string {
	out := slices.Clone(s)
	slices.Sort(out)
	return out
}

func TestMenuTrust(t *testing.T) {
	m := Menu{Version: "1.19", Server: "https://10.0.0.1:8443", TLSPin: "sha256//AAAA", Credentials: true}
	if es := m.Entries(); !strings.Contains(es[1].Args, "clonecd.server=https://10.0.0.1:8443 clonecd.tls-pin=sha256//AAAA") {
		t.Errorf("clone-net args %q", es[1].Args)
	}
	if g := m.Grub(); !strings.Contains(g, "initrd /isolinux/initrd.img /"+medium.Credentials+"\n") {
		t.Errorf("grub.cfg does not load %s:\n%s", medium.Credentials, g)
	}
}
