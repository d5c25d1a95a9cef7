package builder

import (
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/clonecd/clonecd/internal/testenv"
	"github.com/clonecd/clonecd/medium"
)

// TestWriteISOBigFiles: files of bigMin bytes or more are appended after
// the volume rather than copied by go-diskfs; xorriso must read them, and
// the small files, back exactly. (The kernel's isofs reads such files in
// TestBootISO, whose node.cpio.gz and initrd.img are over bigMin.)
func TestWriteISOBigFiles(t *testing.T) {
	testenv.NeedTools(t, "xorriso")
	dir := t.TempDir()
	files := map[string]int64{
		medium.ImageGzip:      bigMin + 12345, // not a sector multiple
		"isolinux/initrd.img": bigMin,         // exactly the threshold
		"isolinux/vmlinuz":    bigMin - 1,     // just below: go-diskfs copies it
		"deep/er/big.bin":     2*bigMin + 2048,
	}
	srcs := map[string]string{}
	rng := rand.New(rand.NewPCG(1, 2))
	for rel, size := range files {
		p := filepath.Join(dir, filepath.Base(rel)+".src")
		b := make([]byte, size)
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		srcs[rel] = p
	}
	st := stageTree(t, dir, srcs[medium.ImageGzip])
	for rel, src := range srcs {
		if rel == medium.ImageGzip {
			continue
		}
		if _, err := st.Link(src, rel); err != nil {
			t.Fatal(err)
		}
	}
	iso := filepath.Join(dir, "big.iso")
	info, err := WriteISO(st.Dir, iso, ISOOptions{VolumeID: "CLONECD_BIG", BIOSBoot: "isolinux/isolinux.bin", Hybrid: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(st.Dir + ".big"); !os.IsNotExist(err) {
		t.Errorf("the set-aside directory is still there: %v", err)
	}
	for _, src := range srcs {
		if _, err := os.Stat(src); err != nil {
			t.Errorf("input %s gone: %v", src, err)
		}
	}
	if info.Volume < 4*bigMin {
		t.Errorf("volume %d bytes is smaller than the files on it", info.Volume)
	}
	checkISO(t, iso, "CLONECD_BIG", false)
	for rel, src := range srcs {
		want := fileSum(t, src)
		back := filepath.Join(dir, "back-"+filepath.Base(rel))
		testenv.Run(t, "xorriso", "-osirrox", "on", "-indev", iso, "-extract", "/"+rel, back)
		if got := fileSum(t, back); got != want {
			t.Errorf("xorriso reads %s back changed", rel)
		}
	}
}
