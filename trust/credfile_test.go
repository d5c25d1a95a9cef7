package trust

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/clonecd/clonecd/internal/testenv"
)

func TestParseCredentials(t *testing.T) {
	s, err := LoadOrCreateSecret(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	a, _ := s.Credential("s001")
	b, _ := s.Credential("s002")
	for _, tt := range []struct {
		name, in string
		n        int
		err      string
	}{
		{"two", "# nodes of rack 1\n" + a.String() + "\n\n" + b.String() + "\n", 2, ""},
		{"empty", "", 0, ""},
		{"twice", a.String() + "\n" + a.String() + "\n", 0, "creds:2: a second credential for s001"},
		{"bad name", "-oProxy:xyz\n", 0, "creds:1:"},
		{"no token", "s001\n", 0, "creds:1: credential: want NAME:TOKEN"},
	} {
		got, err := ParseCredentials([]byte(tt.in), "creds")
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("ParseCredentials(%s) = %v; want an error saying %q", tt.name, err, tt.err)
			}
			continue
		}
		if err != nil || len(got) != tt.n {
			t.Errorf("ParseCredentials(%s) = %v, %v; want %d credentials", tt.name, got, err, tt.n)
		}
	}
	if c, ok := FindCredential([]Credential{a, b}, "s002"); !ok || c != b {
		t.Errorf("FindCredential(s002) = %v, %v", c, ok)
	}
}

// TestCredentialsInitrd: GNU cpio lists the archive as the kernel will
// unpack it: the directories 0755, the file 0600 with one line each.
func TestCredentialsInitrd(t *testing.T) {
	testenv.NeedTools(t, "cpio")
	s, _ := LoadOrCreateSecret(t.TempDir())
	a, _ := s.Credential("s001")
	b, _ := s.Credential("s002")
	img, err := CredentialsInitrd(CredentialsFile, a, b)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cmd := exec.Command("cpio", "-idv", "--no-absolute-filenames", "--quiet")
	cmd.Dir, cmd.Stdin = dir, bytes.NewReader(img)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("cpio -i: %v\n%s", err, out)
	}
	for p, mode := range map[string]os.FileMode{"etc": 0o755, "etc/clonecd": 0o755, "etc/clonecd/credentials": 0o600} {
		fi, err := os.Stat(filepath.Join(dir, p))
		if err != nil || fi.Mode().Perm() != mode {
			t.Errorf("%s in the archive: %v, %v; want mode %o", p, fi, err, mode)
		}
	}
	got, _ := os.ReadFile(filepath.Join(dir, "etc/clonecd/credentials"))
	creds, err := ParseCredentials(got, CredentialsFile)
	if err != nil || len(creds) != 2 || creds[0] != a || creds[1] != b {
		t.Errorf("the archive's credentials = %v, %v; want s001's and s002's", creds, err)
	}
	if _, err := CredentialsInitrd("etc/relative", a); err == nil {
		t.Errorf("CredentialsInitrd(relative path) succeeded")
	}
}
