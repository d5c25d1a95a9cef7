package builder

import (
	"math/rand"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/clonecd/clonecd/internal/testenv"
	"github.com/clonecd/clonecd/medium"
)

// BenchmarkISO writes a bootable hybrid ISO holding a 1 GiB node.cpio.gz
// with WriteISO (go-diskfs, hard-linked workspace) and with
// `xorriso -as mkisofs` from the same files, each three times, alternating, after a sync; the
// best times give iso/xorriso (goal: at most 1.0).
func BenchmarkISO(b *testing.B) {
	testenv.NeedTools(b, "xorriso")
	dir := b.TempDir()
	payload := filepath.Join(dir, "node.cpio.gz")
	writePayload(b, payload, 1<<30)
	efi := filepath.Join(dir, "efi.img")
	if _, err := WriteESP(efi, map[string][]byte{"EFI/BOOT/BOOTX64.EFI": make([]byte, 900<<10)}); err != nil {
		b.Fatal(err)
	}
	cfg := filepath.Join(dir, "isolinux.cfg")
	os.WriteFile(cfg, []byte(Menu{Version: "1.19"}.Isolinux()), 0o644)
	files := map[string]string{medium.ImageGzip: payload, ESPPath: efi, "isolinux/isolinux.cfg": cfg,
		"isolinux/isolinux.bin": IsolinuxBin, "isolinux/ldlinux.c32": LdlinuxC32}
	stage := func() string {
		st, err := NewStage(dir)
		if err != nil {
			b.Fatal(err)
		}
		for dst, src := range files {
			if _, err := st.Link(src, dst); err != nil {
				b.Fatal(err)
			}
		}
		st.WriteFile(medium.Version, []byte("1.19\n"), 0o644)
		return st.Dir
	}
	ours := func() time.Duration {
		out := filepath.Join(dir, "ours.iso")
		os.Remove(out)
		syscall.Sync() // start each side with no dirty pages of the other
		start := time.Now()
		if _, err := WriteISO(stage(), out, ISOOptions{VolumeID: "CLONECD_1_19", BIOSBoot: "isolinux/isolinux.bin",
			EFIBoot: ESPPath, Hybrid: true}); err != nil {
			b.Fatal(err)
		}
		return time.Since(start)
	}
	theirs := func() time.Duration {
		out := filepath.Join(dir, "xorriso.iso")
		os.Remove(out)
		tree := stage()
		defer os.RemoveAll(tree)
		syscall.Sync()
		start := time.Now()
		testenv.Run(b, "xorriso", "-as", "mkisofs", "-quiet", "-R", "-V", "CLONECD_1_19", "-o", out,
			"-b", "isolinux/isolinux.bin", "-c", "isolinux/boot.cat", "-no-emul-boot", "-boot-load-size", "4", "-boot-info-table",
			"-eltorito-alt-boot", "-e", ESPPath, "-no-emul-boot", "-isohybrid-mbr", IsohdpfxPath, "-isohybrid-gpt-basdat", tree)
		return time.Since(start)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		best := [2]time.Duration{time.Hour, time.Hour}
		for round := 0; round < 3; round++ {
			best[0] = min(best[0], ours())
			best[1] = min(best[1], theirs())
		}
		b.ReportMetric(best[0].Seconds(), "iso-s")
		b.ReportMetric(best[1].Seconds(), "xorriso-s")
		b.ReportMetric(best[0].Seconds()/best[1].Seconds(), "iso/xorriso")
		b.ReportMetric(float64(1<<30)/best[0].Seconds()/(1<<20), "iso-MiB/s")
	}
}

// BenchmarkBuild runs the whole `clonecd build` pipeline on a small image
// (initramfs from the build host's modules, GRUB, ISO) and reports the
// initramfs's compressed size.
func BenchmarkBuild(b *testing.B) {
	testenv.NeedTools(b, "xorriso", "cpio", "grub-mkstandalone")
	bin := testenv.Clonecd(b)
	dir := b.TempDir()
	image, layout, _ := inputs(b, dir)
	for i := 0; i < b.N; i++ {
		s, err := Build(Options{Output: filepath.Join(dir, "x.iso"), Image: image, Layout: layout, Version: "1.19",
			Clonecd: bin, Quiet: true})
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(s.Initrd.Compressed)/(1<<20), "initrd-MiB")
		b.ReportMetric(float64(s.Initrd.Modules), "modules")
		b.ReportMetric(float64(s.Size)/(1<<20), "iso-MiB")
		b.ReportMetric(s.Took.Seconds(), "build-s")
	}
}

func writePayload(b *testing.B, p string, size int64) {
	f, err := os.Create(p)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 4<<20)
	rand.New(rand.NewSource(1)).Read(buf)
	for n := int64(0); n < size; n += int64(len(buf)) {
		buf[0]++ // no two blocks alike
		if _, err := f.Write(buf); err != nil {
			b.Fatal(err)
		}
	}
}
