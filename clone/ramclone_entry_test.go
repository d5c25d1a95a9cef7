package clone

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/clonecd/clonecd/internal/testenv"
)

// TestRamcloneEntry: the ramclone menu entry (the grub.d script's and the
// safety net's grub.cfg) is valid GRUB script by GRUB's own checker and
// loads the node's credential as a second initrd only when it exists.
func TestRamcloneEntry(t *testing.T) {
	testenv.NeedTools(t, "grub-script-check")
	for _, prefix := range []string{"/boot", ""} {
		e := ramcloneEntry("0b6e3c1c-8f0e-4a44-9d43-1d9c2a8d3e55", prefix, "clonecd.mode=net clonecd.server=https://10.0.0.1:8443 clonecd.hostname=s001")
		cfg := filepath.Join(t.TempDir(), "grub.cfg")
		if err := os.WriteFile(cfg, []byte(e), 0o644); err != nil {
			t.Fatal(err)
		}
		if out, err := exec.Command("grub-script-check", cfg).CombinedOutput(); err != nil {
			t.Errorf("grub-script-check on the entry (prefix %q): %v\n%s\n%s", prefix, err, out, e)
		}
		for _, want := range []string{
			"if [ -f " + prefix + "/clonecd/credential.img ]; then",
			"initrd " + prefix + "/clonecd/initrd.img " + prefix + "/clonecd/credential.img\n",
			"linux " + prefix + "/clonecd/vmlinuz clonecd.mode=net",
		} {
			if !strings.Contains(e, want) {
				t.Errorf("entry (prefix %q) lacks %q:\n%s", prefix, want, e)
			}
		}
	}
}

// TestRamcloneArgs: the ramclone entry names the server, its TLS pin and
// the node: from the cloner's own command line in network mode, else from
// the CD's clonecd.conf (without the pin an HTTPS reclone cannot check the
// server's self-signed certificate).
func TestRamcloneArgs(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
		conf map[string]string
		want string
	}{
		{"CD", Config{}, map[string]string{"server": "https://10.0.0.1:8443", "tls-pin": "sha256//AAAA"},
			"clonecd.mode=net clonecd.server=https://10.0.0.1:8443 clonecd.tls-pin=sha256//AAAA clonecd.hostname=s001 "},
		{"network", Config{Server: "https://m:8443", TLSPin: "sha256//BBBB"}, map[string]string{"server": "https://10.0.0.1:8443", "tls-pin": "sha256//AAAA"},
			"clonecd.mode=net clonecd.server=https://m:8443 clonecd.tls-pin=sha256//BBBB clonecd.hostname=s001 "},
		{"plain HTTP", Config{Server: "http://m:8080"}, map[string]string{},
			"clonecd.mode=net clonecd.server=http://m:8080 clonecd.hostname=s001 "},
	} {
		r := &run{cfg: tc.cfg, conf: tc.conf, hostname: "s001"}
		if got := r.ramcloneArgs(); !strings.HasPrefix(got, tc.want) {
			t.Errorf("%s: ramclone args %q, want %q...", tc.name, got, tc.want)
		}
	}
}
