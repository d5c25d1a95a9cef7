package packaging

import (
	"context"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/clonecd/clonecd/internal/testenv"
)

// inRoot runs a command chrooted into root, as dpkg would run there: a
// clean environment, no systemd running. It returns the combined output.
func inRoot(t *testing.T, root string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(testenv.Tool("chroot"), append([]string{root}, args...)...)
	cmd.Env = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL=C",
		"HOME=/root", "TERM=dumb", "DEBIAN_FRONTEND=noninteractive"}
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func mustInRoot(t *testing.T, root string, args ...string) string {
	t.Helper()
	out, err := inRoot(t, root, args...)
	if err != nil {
		t.Fatalf("chroot %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// dpkg runs dpkg in the root; warnings and errors fail the test.
func dpkg(t *testing.T, root string, args ...string) string {
	t.Helper()
	out := mustInRoot(t, root, append([]string{"dpkg"}, args...)...)
	low := strings.ToLower(out)
	if strings.Contains(low, "warning") || strings.Contains(low, "error") {
		t.Errorf("dpkg %s said:\n%s", strings.Join(args, " "), out)
	}
	return out
}

// copyDeb puts the package into the root's /tmp and returns its path there.
func copyDeb(t *testing.T, root, deb string) string {
	t.Helper()
	b, err := os.ReadFile(deb)
	if err != nil {
		t.Fatal(err)
	}
	in := "/tmp/" + filepath.Base(deb)
	if err := os.WriteFile(filepath.Join(root, in), b, 0o644); err != nil {
		t.Fatal(err)
	}
	return in
}

func exists(p string) bool {
	_, err := os.Lstat(p)
	return err == nil
}

// account is a passwd line.
type account struct {
	uid, gid    int
	home, shell string
}

func lookupUser(t *testing.T, root, name string) account {
	t.Helper()
	f := strings.Split(strings.TrimSpace(mustInRoot(t, root, "getent", "passwd", name)), ":")
	if len(f) != 7 {
		t.Fatalf("getent passwd %s: %q", name, f)
	}
	uid, _ := strconv.Atoi(f[2])
	gid, _ := strconv.Atoi(f[3])
	return account{uid, gid, f[5], f[6]}
}

const wantsLink = "etc/systemd/system/multi-user.target.wants/" + UnitName

// TestInstallUpgradeRemovePurge installs the package with dpkg -i into a
// fresh Debian root (an overlay of the golden root; no systemd runs
// there), upgrades it over an admin's changes, removes and purges it,
// and checks that what is left is only what Debian policy keeps.
func TestInstallUpgradeRemovePurge(t *testing.T) {
	testenv.NeedTools(t, "chroot", "dpkg-deb", "systemctl")
	t.Parallel()
	res := sharedDeb(t)
	bin := releaseBinary(t)
	root, upper := overlayRoot(t)
	if exists(filepath.Join(root, "run/systemd/system")) {
		t.Fatal("the golden root has /run/systemd/system: the scripts would think systemd runs")
	}

	// Install.
	deb1 := copyDeb(t, root, res.Path)
	dpkg(t, root, "-i", deb1)
	if got := mustInRoot(t, root, "dpkg-query", "-W", "-f", "${Status} ${Version}", Name); got != "install ok installed "+res.Version {
		t.Errorf("dpkg-query: %q", got)
	}
	hostVersion := run(t, bin, "--version")
	if got := mustInRoot(t, root, "clonecd", "--version"); got != hostVersion {
		t.Errorf("clonecd --version in the root: %q, want %q", got, hostVersion)
	}
	u := lookupUser(t, root, "clonecd")
	if u.uid < 100 || u.uid > 999 || u.home != "/var/lib/clonecd" || u.shell != "/usr/sbin/nologin" {
		t.Errorf("user clonecd: %+v; want a system uid, home /var/lib/clonecd, shell /usr/sbin/nologin", u)
	}
	g := strings.Split(strings.TrimSpace(mustInRoot(t, root, "getent", "group", "clonecd")), ":")
	if len(g) < 3 || g[2] != strconv.Itoa(u.gid) {
		t.Errorf("group clonecd %q is not the user's group %d", g, u.gid)
	}
	st, err := os.Stat(filepath.Join(root, "var/lib/clonecd"))
	if err != nil || !st.IsDir() || st.Mode().Perm() != 0o755 || int(st.Sys().(*syscall.Stat_t).Uid) != u.uid || int(st.Sys().(*syscall.Stat_t).Gid) != u.gid {
		t.Errorf("/var/lib/clonecd: %v, %v; want a directory 0755 owned by clonecd", st, err)
	}
	if exists(filepath.Join(root, wantsLink)) {
		t.Error("the service is enabled on install; it waits for the admin")
	}
	for _, p := range []string{"usr/bin/clonecd", "lib/systemd/system/" + UnitName, "etc/default/clonecd", "usr/share/man/man1/clonecd-serve.1.gz"} {
		if !exists(filepath.Join(root, p)) {
			t.Errorf("/%s is not installed", p)
		}
	}

	// The admin sets the address and enables the service; an upgrade
	// keeps both without asking.
	conf := filepath.Join(root, "etc/default/clonecd")
	b, _ := os.ReadFile(conf)
	edited := strings.Replace(string(b), "CLONECD_LISTEN=127.0.0.1:8080", "CLONECD_LISTEN=10.0.0.1:8080", 1)
	if edited == string(b) {
		t.Fatal("the conffile has no CLONECD_LISTEN=127.0.0.1:8080 line")
	}
	if err := os.WriteFile(conf, []byte(edited), 0o644); err != nil {
		t.Fatal(err)
	}
	run(t, "systemctl", "--root="+root, "enable", UnitName)
	res2, err := Build(context.Background(), Options{Binary: bin, OutDir: t.TempDir(), Revision: "2"})
	if err != nil {
		t.Fatal(err)
	}
	deb2 := copyDeb(t, root, res2.Path)
	dpkg(t, root, "-i", deb2)
	if got := mustInRoot(t, root, "dpkg-query", "-W", "-f", "${Version}", Name); got != res2.Version {
		t.Errorf("after the upgrade: version %q, want %q", got, res2.Version)
	}
	if b, _ := os.ReadFile(conf); string(b) != edited {
		t.Errorf("the upgrade replaced the admin's /etc/default/clonecd:\n%s", b)
	}
	if !exists(filepath.Join(root, wantsLink)) {
		t.Error("the upgrade disabled the service the admin enabled")
	}

	// Remove: the program goes, the admin's configuration and data stay.
	dpkg(t, root, "-r", Name)
	for _, p := range []string{"usr/bin/clonecd", "lib/systemd/system/" + UnitName, "usr/share/bash-completion/completions/clonecd", "usr/share/doc/clonecd"} {
		if exists(filepath.Join(root, p)) {
			t.Errorf("dpkg -r left /%s", p)
		}
	}
	for _, p := range []string{"etc/default/clonecd", "var/lib/clonecd"} {
		if !exists(filepath.Join(root, p)) {
			t.Errorf("dpkg -r removed /%s", p)
		}
	}

	// Purge: nothing of the package is left.
	dpkg(t, root, "-P", Name)
	for _, p := range []string{"etc/default/clonecd", "var/lib/clonecd", wantsLink} {
		if exists(filepath.Join(root, p)) {
			t.Errorf("dpkg -P left /%s", p)
		}
	}
	lookupUser(t, root, "clonecd") // kept: files may still be owned by it
	os.Remove(filepath.Join(root, deb1))
	os.Remove(filepath.Join(root, deb2))
	if left := leftovers(t, upper, root, nil); len(left) > 0 {
		t.Errorf("after dpkg -P, the root differs from the golden root by more than dpkg's records and the user:\n%s", strings.Join(left, "\n"))
	}
}

// TestPurgeKeepsData: a store with data and a Medusa /root/clone_image
// are the admin's: the postinst names the Medusa store and leaves it, the
// purge keeps both.
func TestPurgeKeepsData(t *testing.T) {
	testenv.NeedTools(t, "chroot", "dpkg-deb")
	t.Parallel()
	res := sharedDeb(t)
	root, upper := overlayRoot(t)
	medusa := filepath.Join(root, "root/clone_image")
	if err := os.MkdirAll(medusa, 0o755); err != nil {
		t.Fatal(err)
	}
	deb := copyDeb(t, root, res.Path)
	out := dpkg(t, root, "-i", deb)
	if !strings.Contains(out, "/root/clone_image (the Medusa store) is left as it is") {
		t.Errorf("dpkg -i with /root/clone_image present did not say what happens to it:\n%s", out)
	}
	data := filepath.Join(root, "var/lib/clonecd/versions/1.0/image")
	if err := os.MkdirAll(filepath.Dir(data), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(data, []byte("an admin's image\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	dpkg(t, root, "-P", Name)
	if b, err := os.ReadFile(data); err != nil || string(b) != "an admin's image\n" {
		t.Errorf("dpkg -P took the admin's store: %q, %v", b, err)
	}
	if !exists(medusa) {
		t.Error("dpkg -P removed /root/clone_image")
	}
	os.Remove(filepath.Join(root, deb))
	if left := leftovers(t, upper, root, []string{"var/lib/clonecd", "root/clone_image"}); len(left) > 0 {
		t.Errorf("after dpkg -P, the root differs by more than the admin's data, dpkg's records and the user:\n%s", strings.Join(left, "\n"))
	}
}

// kept are the paths, relative to the root, that an install and purge
// may leave changed: dpkg's database and logs, and the system user's
// lines in the account files (Debian keeps system users); /run is a
// tmpfs on a running system (adduser's lock is there).
var kept = []string{
	"var/lib/dpkg/", "var/log/", "var/cache/debconf/", "run/",
	"etc/passwd", "etc/passwd-", "etc/group", "etc/group-", "etc/shadow", "etc/shadow-",
	"etc/gshadow", "etc/gshadow-", "etc/.pwd.lock",
}

// leftovers lists what the overlay's upper directory holds besides kept
// and also: new or changed files, new directories, and deletions
// (whiteouts) of the golden root's files. Directories copied up only
// because something beneath them changed are not leftovers.
func leftovers(t *testing.T, upper, root string, also []string) []string {
	t.Helper()
	golden := testenv.GoldenDir()
	allowed := func(rel string) bool {
		for _, k := range append(append([]string{}, kept...), also...) {
			k = strings.TrimSuffix(k, "/")
			if rel == k || strings.HasPrefix(rel, k+"/") {
				return true
			}
		}
		return false
	}
	var left []string
	err := filepath.WalkDir(upper, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(upper, p)
		if rel == "." {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		if info.Mode()&fs.ModeCharDevice != 0 && info.Sys().(*syscall.Stat_t).Rdev == 0 {
			if !allowed(rel) {
				left = append(left, "deleted: /"+rel)
			}
			return nil
		}
		if d.IsDir() {
			if exists(filepath.Join(golden, rel)) || allowed(rel) {
				return nil
			}
			left = append(left, "new directory: /"+rel)
			return filepath.SkipDir
		}
		if !allowed(rel) {
			left = append(left, "changed: /"+rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(left)
	return left
}
