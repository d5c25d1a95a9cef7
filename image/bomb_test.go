package image

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/clonecd/clonecd/cpio"
)

// xattrBomb is security.md finding 8's archive: count "." headers whose
// name field carries an xattr record of about size bytes (zeros, so that
// it compresses to nothing).
func xattrBomb(t testing.TB, c Compression, count, size int) []byte {
	var out bytes.Buffer
	w, err := compressor(&out, c, map[Compression]int{Gzip: 9}[c], 0)
	if err != nil {
		t.Fatal(err)
	}
	line := `"."` + "\t" + `"user.bomb"` + "\t"
	n := size - len(xattrMagic) - len(line) - 1
	name := []byte("." + "\x00" + xattrMagic + line + strings.Repeat("0", n-n%2) + "\n" + "\x00")
	for len(name)%4 != 2 { // 110 + name: a multiple of 4
		name = append(name, 0)
	}
	// the root first, so that the records apply to something
	fmt.Fprintf(w, "070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X.\x00", 1, cpio.TypeDir|0o755, 0, 0, 2, 0, 0, 0, 0, 0, 0, 2, 0)
	for i := 0; i < count; i++ {
		fmt.Fprintf(w, "070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X", 1, cpio.TypeDir|0o755, 0, 0, 2, 0, 0, 0, 0, 0, 0, len(name), 0)
		w.Write(name)
	}
	fmt.Fprintf(w, "070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X", 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, len(cpio.Trailer)+1, 0)
	w.Write([]byte(cpio.Trailer + "\x00\x00\x00\x00"))
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

// TestUnpackMemoryBound: archives of about 300 KiB that declare huge
// names or hundreds of MiB of xattr records do not make unpack take
// hundreds of MiB (the review measured 536 MB before). Each runs in a
// child process, whose peak RSS the kernel reports.
func TestUnpackMemoryBound(t *testing.T) {
	if path := os.Getenv("CLONECD_TEST_BOMB"); path != "" {
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		_, err = Unpack(f, filepath.Join(t.TempDir(), "out"), UnpackOptions{NoXattrs: os.Getenv("CLONECD_TEST_NOXATTRS") != ""})
		fmt.Printf("unpack error: %v\n", err)
		// The peak of this process's own memory: getrusage's ru_maxrss
		// would include the parent's, which exec inherits.
		status, _ := os.ReadFile("/proc/self/status")
		for _, l := range strings.Split(string(status), "\n") {
			if strings.HasPrefix(l, "VmHWM:") {
				fmt.Printf("%s\n", l)
			}
		}
		return
	}
	limit := int64(96 << 20)
	if raceEnabled {
		limit *= 4 // the race detector's shadow memory
	}
	for _, tt := range []struct {
		name     string
		img      []byte
		noXattrs bool
		want     string
	}{
		{"1 MiB names, gzip -9", xattrBomb(t, Gzip, 300, 1<<20), false, "name size 10485"},
		{"records past the total", xattrBomb(t, Zstd, XattrTotalMax/XattrRecordMax+10, XattrRecordMax), true, "xattr records pass 256 MiB in total"},
		// these stop at the first record: ext4 holds no 30 KB xattr
		{"records applied", xattrBomb(t, Zstd, 100, XattrRecordMax), false, "setting xattr user.bomb on /"},
		{"oversized records", xattrBomb(t, Zstd, 100, XattrRecordMax+1000), false, "bytes (at most 61440)"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if len(tt.img) > 400<<10 {
				t.Fatalf("the bomb is %d bytes; want about 300 KiB", len(tt.img))
			}
			path := filepath.Join(t.TempDir(), "bomb.cpio")
			os.WriteFile(path, tt.img, 0o600)
			cmd := exec.Command(os.Args[0], "-test.run=^TestUnpackMemoryBound$", "-test.count=1")
			cmd.Env = append(os.Environ(), "CLONECD_TEST_BOMB="+path)
			if tt.noXattrs {
				cmd.Env = append(cmd.Env, "CLONECD_TEST_NOXATTRS=1")
			}
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("child: %v\n%s", err, out)
			}
			if !strings.Contains(string(out), tt.want) {
				t.Errorf("unpack of a %d-byte bomb: %s; want an error with %q", len(tt.img), out, tt.want)
			}
			var rss int64
			if i := strings.Index(string(out), "VmHWM:"); i < 0 {
				t.Fatalf("child printed no VmHWM:\n%s", out)
			} else if _, err := fmt.Sscanf(string(out[i:]), "VmHWM: %d kB", &rss); err != nil {
				t.Fatalf("child's VmHWM: %v\n%s", err, out)
			}
			rss <<= 10
			t.Logf("%d-byte image: peak RSS %d MiB", len(tt.img), rss>>20)
			if rss > limit {
				t.Errorf("unpack of a %d-byte image took %d MiB; want at most %d", len(tt.img), rss>>20, limit>>20)
			}
		})
	}
}
