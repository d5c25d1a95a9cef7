package image

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/clonecd/clonecd/cpio"
	"github.com/clonecd/clonecd/internal/testenv"
)

// bash runs a shell pipeline with pipefail in dir and returns its stderr;
// any failing stage fails the test.
func bash(t testing.TB, dir, script string) string {
	t.Helper()
	cmd := exec.Command("bash", "-c", "set -o pipefail; "+script)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", script, err, out)
	}
	return string(out)
}

// TestGNUExtractsOurs: GNU cpio -idm --no-absolute-filenames extracts our
// newc and crc archives (xattr records included) to a tree identical to
// the source, with gzip, pigz and zstd, every stage exiting 0.
func TestGNUExtractsOurs(t *testing.T) {
	testenv.NeedRoot(t)
	testenv.NeedTools(t, "cpio", "gzip", "pigz", "zstd")
	src := makeTree(t)
	want := walkTree(t, src, true)
	for _, format := range []cpio.Format{cpio.Newc, cpio.CRC} {
		for _, dec := range []string{"gzip -dc", "pigz -dc", "zstd -dc"} {
			t.Run(format.String()+"/"+strings.Fields(dec)[0], func(t *testing.T) {
				dir := t.TempDir()
				c := map[bool]Compression{false: Gzip, true: Zstd}[strings.HasPrefix(dec, "zstd")]
				img := filepath.Join(dir, c.ImageName())
				if _, _, err := PackFile(src, img, PackOptions{Format: format, Compress: c}); err != nil {
					t.Fatal(err)
				}
				out := filepath.Join(dir, "out")
				os.Mkdir(out, 0o755)
				msg := bash(t, out, dec+" -q ../"+c.ImageName()+" | cpio -idm --no-absolute-filenames")
				if strings.TrimSpace(msg) != "" && !regexpBlocks.MatchString(strings.TrimSpace(msg)) {
					t.Errorf("GNU cpio said: %q", msg)
				}
				compareTrees(t, want, walkTree(t, out, true), defaultDropped, defaultEmptied)
			})
		}
	}
}

// TestUnpackGNUArchives: our Unpack restores archives made by GNU
// find | cpio -o (crc and newc, data on the last hardlink, gzip'd and
// zstd'd) identically.
func TestUnpackGNUArchives(t *testing.T) {
	testenv.NeedRoot(t)
	testenv.NeedTools(t, "cpio", "gzip", "zstd", "find")
	src := makeTree(t)
	want := walkTree(t, src, true)
	for _, tc := range []struct{ format, compress string }{
		{"--format=crc", "gzip"}, {"-H newc", "gzip"}, {"-H newc", "zstd -T0 -3 -q"}, {"--format=crc", "zstd -19 -q"},
	} {
		t.Run(tc.format+"|"+tc.compress, func(t *testing.T) {
			dir := t.TempDir()
			img := filepath.Join(dir, "gnu.img")
			bash(t, src, "find . -xdev | cpio -o "+tc.format+" | "+tc.compress+" > "+img)
			out := filepath.Join(dir, "out")
			os.Mkdir(out, 0o755)
			st, err := UnpackFile(img, out, UnpackOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if st.Hardlinks != 3 {
				t.Errorf("%d hardlinks restored, want 3", st.Hardlinks)
			}
			compareTrees(t, want, walkTree(t, out, true), nil, nil)
			f, _ := os.Open(img)
			defer f.Close()
			rep, err := Verify(f, out, VerifyOptions{NoXattrs: true})
			if err != nil || !rep.OK() {
				t.Errorf("verify: %v %v", err, rep.Differences)
			}
		})
	}
}

var regexpBlocks = regexpMust(`^\d+ blocks?$`)
