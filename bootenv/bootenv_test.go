package bootenv

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/clonecd/clonecd/internal/testsign"
	"github.com/clonecd/clonecd/trust"
)

func TestParseCmdline(t *testing.T) {
	for _, c := range []struct {
		in   string
		want map[string]string
	}{
		{"BOOT_IMAGE=/vmlinuz ro quiet", map[string]string{"BOOT_IMAGE": "/vmlinuz", "ro": "", "quiet": ""}},
		{"console=tty0 console=ttyS0,115200 clonecd.mode=probe\n", map[string]string{"console": "tty0 ttyS0,115200", "clonecd.mode": "probe"}},
		{`clonecd.hostname="node 7" a=b=c`, map[string]string{"clonecd.hostname": "node 7", "a": "b=c"}},
		{"clonecd.mode=cd clonecd.mode=net", map[string]string{"clonecd.mode": "net"}},
		{"x=1 -- clonecd.mode=shell", map[string]string{"x": "1"}},
		{"", map[string]string{}},
		{`  a="" b  `, map[string]string{"a": "", "b": ""}},
	} {
		if got := ParseCmdline(c.in); !reflect.DeepEqual(got, c.want) {
			t.Errorf("ParseCmdline(%q) = %v, want %v", c.in, got, c.want)
		}
	}
}

func TestConsoleDevices(t *testing.T) {
	for _, c := range []struct {
		in   string
		want []string
	}{
		{"tty0 ttyS0,115200n8", []string{"/dev/tty0", "/dev/ttyS0"}},
		{"ttyS0 ttyS0,9600", []string{"/dev/ttyS0"}},
		{"", []string{"/dev/console"}},
		{"../etc/passwd", []string{"/dev/console"}},
	} {
		if got := ConsoleDevices(c.in); !reflect.DeepEqual(got, c.want) {
			t.Errorf("ConsoleDevices(%q) = %v, want %v", c.in, got, c.want)
		}
	}
}

func media(t *testing.T, sumLine func(sum string) string) string {
	dir := t.TempDir()
	data := []byte("pretend this is node.cpio.gz")
	os.WriteFile(filepath.Join(dir, "node.cpio.gz"), data, 0o644)
	os.WriteFile(filepath.Join(dir, "CLONE_CD_VERSION"), []byte("1.19\n"), 0o644)
	s := sha256.Sum256(data)
	if sumLine != nil {
		os.WriteFile(filepath.Join(dir, "node.cpio.gz.sha256"), []byte(sumLine(hex.EncodeToString(s[:]))), 0o644)
	}
	return dir
}

func TestCheckImage(t *testing.T) {
	for _, c := range []struct {
		name string
		line func(string) string
		err  string
	}{
		{"sha256sum format", func(s string) string { return s + "  node.cpio.gz\n" }, ""},
		{"upper case", func(s string) string { return strings.ToUpper(s) + " *node.cpio.gz\n" }, ""},
		{"wrong sum", func(s string) string { return strings.Repeat("0", 64) + "  node.cpio.gz\n" }, "node.cpio.gz sha256 "},
		{"garbage", func(s string) string { return "hello\n" }, `node.cpio.gz.sha256: line 1: "hello" is not a sha256 checksum`},
		{"empty", func(s string) string { return "" }, "node.cpio.gz.sha256: no checksum in it"},
		{"missing", nil, "checksum file"},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := media(t, c.line)
			err := CheckImage(dir)
			if c.err == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Fatalf("error %v, want one with %q", err, c.err)
			}
		})
	}
}

func TestProbeReport(t *testing.T) {
	dir := media(t, func(s string) string { return s + "  node.cpio.gz\n" })
	if !IsMedia(dir) {
		t.Fatal("IsMedia false for media")
	}
	var out bytes.Buffer
	env := &Env{Modules: []string{"ahci", "e1000"}, MediaDev: "/dev/sr0", MediaDir: dir, MediaFS: "iso9660", Version: "1.19"}
	if err := Probe(env, &out); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"clonecd: drivers loaded: ahci e1000\n", "clonecd: media /dev/sr0 (iso9660) version 1.19\n", "clonecd: media OK: node.cpio.gz sha256 matches\n"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("probe output lacks %q:\n%s", want, out.String())
		}
	}
	os.WriteFile(filepath.Join(dir, "node.cpio.gz"), []byte("corrupted"), 0o644)
	out.Reset()
	if err := Probe(env, &out); err == nil || !strings.Contains(out.String(), "media BAD") {
		t.Errorf("corrupted image: %v\n%s", err, out.String())
	}
	os.Remove(filepath.Join(dir, "CLONE_CD_VERSION"))
	if IsMedia(dir) {
		t.Error("IsMedia true without CLONE_CD_VERSION")
	}
	if err := Probe(&Env{}, &out); err == nil {
		t.Error("Probe without media succeeded")
	}
}

func TestNotPID1(t *testing.T) {
	if os.Getpid() == 1 {
		t.Skip("running as PID 1")
	}
	if err := PowerOff(); err == nil || !strings.Contains(err.Error(), "not PID 1") {
		t.Errorf("PowerOff outside the initramfs: %v", err)
	}
	if err := Reboot(); err == nil {
		t.Error("Reboot outside the initramfs succeeded?")
	}
	if st := Init(nil); st != 2 {
		t.Errorf("Init outside PID 1 returned %d, want 2", st)
	}
}

func FuzzParseCmdline(f *testing.F) {
	f.Add(`console=tty0 console=ttyS0,115200 clonecd.hostname="a b" -- x`)
	f.Fuzz(func(t *testing.T, s string) {
		m := ParseCmdline(s)
		for k := range m {
			if !strings.Contains(s, `"`) && strings.ContainsAny(k, " \t\n") {
				t.Errorf("key %q has blanks", k)
			}
		}
		ConsoleDevices(m["console"])
	})
}

func TestSafely(t *testing.T) {
	err := safely(func() error { panic("boom") })
	if err == nil || !strings.Contains(err.Error(), "clonecd crashed: boom") {
		t.Errorf("panic became %v", err)
	}
	if err := safely(func() error { return os.ErrNotExist }); err != os.ErrNotExist {
		t.Errorf("error passed as %v", err)
	}
}

// TestProbeSigned: a cloner that trusts a key checks the media as the
// clone does: the signature, then every file MANIFEST lists; a changed
// file, a missing signature or another key's is BAD, naming the file.
func TestProbeSigned(t *testing.T) {
	keyDir := t.TempDir()
	key, err := trust.GenerateKey(filepath.Join(keyDir, "clonecd.key"))
	if err != nil {
		t.Fatal(err)
	}
	other, err := trust.GenerateKey(filepath.Join(t.TempDir(), "other.key"))
	if err != nil {
		t.Fatal(err)
	}
	trustDir := t.TempDir()
	pub, _ := os.ReadFile(filepath.Join(keyDir, "clonecd.key.pub"))
	os.WriteFile(filepath.Join(trustDir, key.Public().FileName()), pub, 0o644)
	defer func(d string) { probeTrustDir = d }(probeTrustDir)
	probeTrustDir = trustDir
	for _, tt := range []struct {
		name   string
		change func(dir string)
		want   string // regexp on the output
	}{
		{"signed", nil, `media OK: node\.cpio\.gz sha256 matches; signed by key ` + key.ID() + `, 4 files match MANIFEST`},
		{"image changed", func(d string) {
			os.WriteFile(filepath.Join(d, "node.cpio.gz"), []byte("pretend this is node.cpio.gZ"), 0o644)
		},
			`media BAD: node\.cpio\.gz: sha256 [0-9a-f]{64}, the manifest says`},
		{"nodes changed", func(d string) { os.WriteFile(filepath.Join(d, "nodes"), []byte("52:54:00:00:00:02 s001\n"), 0o644) },
			`media BAD: nodes: .*the manifest says`},
		{"signature removed", func(d string) { os.Remove(filepath.Join(d, "MANIFEST.minisig")) }, `media BAD: MANIFEST\.minisig: missing`},
		{"another key", func(d string) { testsign.Dir(t, d, "1.19", other) }, `media BAD: MANIFEST\.minisig: signed by key ` + other.ID() + `, which is not trusted`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := media(t, func(s string) string { return s + "  node.cpio.gz\n" })
			os.WriteFile(filepath.Join(dir, "nodes"), []byte("52:54:00:00:00:01 s001\n"), 0o644)
			testsign.Dir(t, dir, "1.19", key)
			if tt.change != nil {
				tt.change(dir)
			}
			var out bytes.Buffer
			err := Probe(&Env{MediaDev: "/dev/sr0", MediaDir: dir, MediaFS: "iso9660", Version: "1.19"}, &out)
			if !regexp.MustCompile(tt.want).MatchString(out.String()) || (err == nil) != (tt.change == nil) {
				t.Errorf("Probe: %v\n%s\nwant %s", err, out.String(), tt.want)
			}
		})
	}
}
