package packaging

import (
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/clonecd/clonecd/internal/testenv"
)

// maxExposure is the highest `systemd-analyze security` exposure the unit
// may have (0 = locked down, 10 = unprotected; it scored 1.1 when
// written: what is left is the network, which it serves, the device ACL
// of ProtectClock and the host's root directory).
const maxExposure = 1.5

// analyze runs systemd-analyze with the packaged man pages on MANPATH
// (verify checks Documentation=man:...) and returns its output and error.
func analyze(root string, args ...string) (string, error) {
	cmd := []string{"env", "MANPATH=" + filepath.Join(root, "usr/share/man"), "SYSTEMD_LOG_LEVEL=notice", "systemd-analyze"}
	return testenv.Output(cmd[0], append(cmd[1:], args...)...)
}

// TestUnitVerify runs systemd-analyze verify on the unit as packaged,
// inside a golden root with the package unpacked (systemd's own units,
// the binary at /usr/bin/clonecd, the man page): no output is accepted.
// The broken variants show that the check sees what it should.
func TestUnitVerify(t *testing.T) {
	testenv.NeedTools(t, "systemd-analyze", "dpkg-deb")
	res := sharedDeb(t)
	root, _ := overlayRoot(t)
	run(t, "dpkg-deb", "-x", res.Path, root)
	unitPath := filepath.Join(root, "lib/systemd/system", UnitName)
	unit, err := os.ReadFile(unitPath)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name, from, to string
		want           string // "" = verify accepts it
	}{
		{"packaged", "", "", ""},
		{"misspelt directive", "ProtectSystem=strict", "ProtectSytem=strict", "Unknown key"},
		{"missing binary", "ExecStart=/usr/bin/clonecd ", "ExecStart=/usr/bin/clonecd-missing ", "clonecd-missing"},
		{"missing man page", "man:clonecd-serve(1)", "man:clonecd-missing(1)", "clonecd-missing"},
		{"bad value", "RestrictAddressFamilies=AF_INET", "RestrictAddressFamilies=AF_BOGUS", "AF_BOGUS"},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := unitPath
			if c.from != "" {
				if !strings.Contains(string(unit), c.from) {
					t.Fatalf("the unit has no %q to break", c.from)
				}
				p = filepath.Join(root, "etc/systemd/system", "clonecd-broken.service")
				if err := os.WriteFile(p, []byte(strings.Replace(string(unit), c.from, c.to, 1)), 0o644); err != nil {
					t.Fatal(err)
				}
				defer os.Remove(p)
			}
			out, err := analyze(root, "verify", "--root="+root, p)
			out = strings.TrimSpace(out)
			if c.want == "" {
				if err != nil || out != "" {
					t.Fatalf("systemd-analyze verify %s: %v\n%s", p, err, out)
				}
				return
			}
			if !strings.Contains(out, c.want) {
				t.Fatalf("systemd-analyze verify of a unit with %s: %v %q; want a message with %q", c.name, err, out, c.want)
			}
		})
	}
}

var exposureRE = regexp.MustCompile(`Overall exposure level for ` + regexp.QuoteMeta(UnitName) + `: ([0-9.]+)`)

// TestUnitSecurity scores the packaged unit with systemd-analyze
// security (offline) and checks the protections the unit promises.
func TestUnitSecurity(t *testing.T) {
	testenv.NeedTools(t, "systemd-analyze", "dpkg-deb")
	res := sharedDeb(t)
	root, _ := overlayRoot(t)
	run(t, "dpkg-deb", "-x", res.Path, root)
	out, err := analyze(root, "security", "--offline=true", "--root="+root, UnitName)
	if err != nil {
		t.Fatalf("systemd-analyze security: %v\n%s", err, out)
	}
	m := exposureRE.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("systemd-analyze security printed no exposure level:\n%s", out)
	}
	score, _ := strconv.ParseFloat(m[1], 64)
	t.Logf("systemd-analyze security %s: exposure %.1f", UnitName, score)
	if score > maxExposure {
		t.Errorf("exposure %.1f, want at most %.1f:\n%s", score, maxExposure, out)
	}
	// What the unit promises, as systemd-analyze reads it.
	for _, want := range []string{
		"ProtectSystem=", "PrivateDevices=", "PrivateTmp=", "ProtectKernelModules=", "ProtectKernelTunables=",
		"CapabilityBoundingSet=~CAP_SYS_ADMIN", "CapabilityBoundingSet=~CAP_(DAC_*|FOWNER|IPC_OWNER)",
		"RestrictAddressFamilies=~AF_PACKET", "RestrictAddressFamilies=~AF_NETLINK", "SystemCallFilter=~@privileged",
		"User=/DynamicUser=", "NoNewPrivileges=",
	} {
		if !hasPassed(out, want) {
			t.Errorf("systemd-analyze security: %s is not marked passed", want)
		}
	}
}

// hasPassed finds the line of a check and says whether it is marked
// passed: "✓", or "+" under LC_ALL=C.
func hasPassed(out, check string) bool {
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) >= 2 && f[1] == check {
			return f[0] == "✓" || f[0] == "+"
		}
	}
	return false
}
