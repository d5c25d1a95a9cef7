package kickstart

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/clonecd/clonecd/internal/testenv"
	"github.com/clonecd/clonecd/partition"
)

// TestApplyLoop applies layouts made from the test kickstarts to loop
// disks with partition.Apply, reads the table back with the real
// `sfdisk -d` and checks it against what the kickstart asked: exact sizes
// in MiB, growing partitions at least their size and at most --maxsize,
// and the disk filled when a partition grows without a cap.
func TestApplyLoop(t *testing.T) {
	testenv.NeedRoot(t)
	testenv.NeedTools(t, "sfdisk", "losetup", "partx")
	tests := []struct {
		file   string
		opts   Options
		gib    int64
		capped int // partition that must end up at its --maxsize (0: none)
		ss     int // logical sector size of the loop device (0: 512)
	}{
		{"rhel5.ks", Options{}, 16, 2, 0},
		{"rhel5.ks", Options{}, 10, 0, 0},
		{"rhel8.ks", Options{}, 48, 4, 0},
		{"rhel8.ks", Options{}, 40, 0, 0},
		{"centos.ks", Options{}, 40, 2, 0},
		{"fedora.ks", Options{}, 12, 4, 0},
		{"rhel9.ks", Options{Firmware: "uefi", RAM: 16384}, 20, 0, 0},
		{"rhel6.ks", Options{RAM: 1024}, 8, 0, 0},
		{"fedora.ks", Options{}, 12, 4, 4096},
		{"rhel5.ks", Options{}, 16, 2, 4096},
	}
	for _, tt := range tests {
		ss := tt.ss
		if ss == 0 {
			ss = 512
		}
		t.Run(fmt.Sprintf("%s-%dGiB-%d", tt.file, tt.gib, ss), func(t *testing.T) {
			ks, err := ParseFile(filepath.Join(ksDir(), tt.file), tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			want, err := ks.Layout()
			if err != nil {
				t.Fatal(err)
			}
			img := testenv.Sparse(t, "disk.img", tt.gib<<30)
			dev := testenv.Loop(t, img, ss)
			if _, err := partition.Apply(want, dev, partition.ApplyOptions{}); err != nil {
				t.Fatalf("Apply: %v", err)
			}
			dump := testenv.Run(t, "sfdisk", "-d", dev)
			got, err := partition.ParseLayout(bytes.NewReader([]byte(dump)))
			if err != nil {
				t.Fatalf("parsing sfdisk -d: %v\n%s", err, dump)
			}
			// Compare in 512-byte units, the layout's.
			k := uint64(ss / 512)
			for i := range got.Parts {
				got.Parts[i].Start *= k
				got.Parts[i].Size *= k
			}
			if got.Label != want.Label || len(got.Parts) != len(want.Parts) {
				t.Fatalf("sfdisk -d shows %s with %d partitions, want %s with %d:\n%s", got.Label, len(got.Parts), want.Label, len(want.Parts), dump)
			}
			diskEnd := uint64(tt.gib<<30) / 512
			gpt := uint64(34 * k)
			var end uint64
			growers := uint64(0)
			uncapped := false
			for _, w := range want.Parts {
				g := got.Part(w.Number)
				if g == nil {
					t.Fatalf("partition %d missing:\n%s", w.Number, dump)
				}
				if g.Type != w.Type || g.Bootable != w.Bootable {
					t.Errorf("partition %d: type %s boot %v, want %s %v", w.Number, g.Type, g.Bootable, w.Type, w.Bootable)
				}
				if g.Start%2048 != 0 {
					t.Errorf("partition %d starts at %d, not 1 MiB aligned", w.Number, g.Start)
				}
				switch {
				case partition.IsExtended(w.Type) && want.Label == "dos":
					// holds the logical partitions, checked below
				case !w.Grow && g.Size != w.Size:
					t.Errorf("partition %d (%s %s): %d MiB, kickstart asks %d MiB", w.Number, w.Mount, w.FS, g.Size/2048, w.Size/2048)
				case w.Grow && g.Size < w.Size:
					t.Errorf("partition %d (%s): grew to %d MiB, below its --size %d MiB", w.Number, w.Mount, g.Size/2048, w.Size/2048)
				case w.Grow && w.MaxSize != 0 && g.Size > w.MaxSize:
					t.Errorf("partition %d (%s): grew to %d MiB, above --maxsize %d MiB", w.Number, w.Mount, g.Size/2048, w.MaxSize/2048)
				}
				if w.Grow && (w.MaxSize == 0 || g.Size < w.MaxSize) {
					uncapped = true
				}
				if w.Grow {
					growers++
				}
				if e := g.Start + g.Size; e > end {
					end = e
				}
				if g.Start+g.Size > diskEnd {
					t.Errorf("partition %d ends beyond the disk", w.Number)
				}
			}
			// Fit shares free space in whole MiB: up to 1 MiB per growing
			// partition may stay free, plus the backup GPT.
			if uncapped && diskEnd-end > growers*2048+gpt {
				t.Errorf("growing partitions leave %d MiB free at the end of the disk:\n%s", (diskEnd-end)/2048, dump)
			}
			if tt.capped != 0 {
				w, g := want.Part(tt.capped), got.Part(tt.capped)
				if g.Size != w.MaxSize {
					t.Errorf("partition %d (%s): %d MiB, want capped at --maxsize %d MiB", tt.capped, w.Mount, g.Size/2048, w.MaxSize/2048)
				}
			}
		})
	}
}

// TestApplyTooSmall: a disk smaller than the kickstart's fixed sizes is
// refused before anything is written, and the error says by how much.
func TestApplyTooSmall(t *testing.T) {
	ks, err := ParseFile(filepath.Join(ksDir(), "rhel5.ks"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	l, err := ks.Layout()
	if err != nil {
		t.Fatal(err)
	}
	img := testenv.Sparse(t, "small.img", 4<<30)
	_, err = partition.Apply(l, img, partition.ApplyOptions{})
	if err == nil || !strings.Contains(err.Error(), "MiB") {
		t.Fatalf("Apply on 4 GiB: %v, want a does-not-fit error in MiB", err)
	}
	t.Log(err)
	b := make([]byte, 512)
	f, _ := os.Open(img)
	f.Read(b)
	f.Close()
	if !bytes.Equal(b, make([]byte, 512)) {
		t.Error("something was written to the too small disk")
	}
}
