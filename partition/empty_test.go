package partition

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/clonecd/clonecd/internal/testenv"
)

// TestEmptyLayout: a layout with no label and no partitions (empty, only
// comments or only other headers: sfdisk leaves the table as it is) is
// refused by ParseLayout; one with a label but no partitions (sfdisk
// writes an empty table) parses, and Apply refuses it unless AllowEmpty,
// before writing: the disk's table is as it was.
func TestEmptyLayout(t *testing.T) {
	for _, in := range []string{"", "\n\n", "# nothing\n", "unit: sectors\n", "device: /dev/sda\nunit: sectors\n",
		"# partition table of /dev/sda\nunit: sectors\n\n/dev/sda1 : start=0, size=0, Id=0\n"} {
		if l, err := ParseLayout(strings.NewReader(in)); !errors.Is(err, ErrEmpty) {
			t.Errorf("ParseLayout(%q) = %v, %v; want ErrEmpty", in, l, err)
		}
	}
	p := filepath.Join(t.TempDir(), "empty.sfdisk")
	os.WriteFile(p, nil, 0o644)
	if _, err := ReadLayoutFile(p); !errors.Is(err, ErrEmpty) || !strings.Contains(err.Error(), p+": ") {
		t.Errorf("ReadLayoutFile(empty) = %v; want ErrEmpty naming the file", err)
	}

	testenv.NeedTools(t, "sfdisk")
	for _, label := range []string{"dos", "gpt"} {
		img := testenv.Sparse(t, label+".img", 64<<20)
		sfdiskScript(t, img, "label: "+label+"\nsize=8M\nsize=8M\n,\n")
		before, _ := os.ReadFile(img)
		l, err := ParseLayout(strings.NewReader("label: " + label + "\n"))
		if err != nil {
			t.Fatalf("ParseLayout(label only): %v", err)
		}
		l.Source = "labelonly.sfdisk"
		for _, dry := range []bool{true, false} {
			_, err = Apply(l, img, ApplyOptions{DryRun: dry})
			if !errors.Is(err, ErrNoPartitions) || !strings.Contains(err.Error(), "labelonly.sfdisk") ||
				!strings.Contains(err.Error(), "every partition") || !strings.Contains(err.Error(), "--allow-empty") {
				t.Errorf("Apply(label: %s, DryRun %v) = %v; want ErrNoPartitions naming the file and --allow-empty", label, dry, err)
			}
		}
		if after, _ := os.ReadFile(img); !bytes.Equal(before, after) {
			t.Errorf("label: %s: refused, but the image changed", label)
		}
		if _, err := Apply(l, img, ApplyOptions{AllowEmpty: true}); err != nil {
			t.Fatalf("Apply(label: %s, AllowEmpty) = %v", label, err)
		}
		if d, err := Dump(img); err != nil || d.Label != label || len(d.Parts) != 0 {
			t.Errorf("after AllowEmpty: Dump = %v, %v; want an empty %s table", d, err, label)
		}
	}
}

// TestMountPaths: mount= must be an absolute, clean path without ".."
// (the clone mounts at root+mount); the error names the line.
func TestMountPaths(t *testing.T) {
	for _, tt := range []struct {
		mount string
		ok    bool
	}{
		{"/", true}, {"/data", true}, {"/boot/efi", true}, {"none", true}, {`"/my data"`, true},
		{"data", false}, {"/../../etc", false}, {"/data/../etc", false}, {"/..", false}, {"/data/", false},
		{"//data", false}, {"/./data", false}, {"/data/.", false}, {`"/da` + "\x01" + `ta"`, false},
	} {
		in := "label: dos\nsize=1G\n,\n# clonecd: part=2 fs=ext4 mount=" + tt.mount + "\n"
		_, err := ParseLayout(strings.NewReader(in))
		var le *LineError
		switch {
		case tt.ok && err != nil:
			t.Errorf("mount=%s: %v; want it accepted", tt.mount, err)
		case !tt.ok && (!errors.As(err, &le) || le.Line != 4 || !strings.Contains(err.Error(), "mount=")):
			t.Errorf("mount=%s: %v; want an error at line 4", tt.mount, err)
		}
	}
}

// TestErrorsNameTheLayoutFile: a layout that does not fit says the layout
// file's line and the disk, and "does not fit" once (usability L05, C05).
func TestErrorsNameTheLayoutFile(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "toobig.sfdisk")
	os.WriteFile(p, []byte("label: dos\n\n# an 8 GiB root\nsize=8G, type=83\n"), 0o644)
	img := testenv.Sparse(t, "d2.img", 256<<20)
	l, err := ReadLayoutFile(p)
	if err != nil {
		t.Fatal(err)
	}
	fit := func() error { _, err := l.FitDisk(img); return err }
	apply := func() error { _, err := Apply(l, img, ApplyOptions{}); return err }
	for name, f := range map[string]func() error{"FitDisk": fit, "Apply": apply} {
		err := f()
		want := p + ": line 4: layout does not fit " + img + ": partition 1 ends at sector 16779263, last usable is 524287; the disk (256 MiB) is 7937 MiB too small"
		if err == nil || err.Error() != want {
			t.Errorf("%s = %v\nwant %s", name, err, want)
		}
		var fe *FitError
		var le *LineError
		if !errors.As(err, &fe) || fe.Disk != img || fe.ShortMiB != 7937 || !errors.As(err, &le) || le.File != p || le.Line != 4 {
			t.Errorf("%s = %#v; want a LineError at %s:4 around a FitError for %s", name, err, p, img)
		}
	}
}

// TestDryRunLabelID: the dry run shows exactly the label-id and uuids
// that will be written: those the layout gives, and none where the layout
// gives none (they are chosen at random when the table is written).
func TestDryRunLabelID(t *testing.T) {
	for _, tt := range []struct{ layout, id, uuid string }{
		{"label: dos\nlabel-id: 0x1234abcd\nsize=8M\n", "0x1234abcd", ""},
		{"label: gpt\nlabel-id: 01234567-89AB-4CDE-8F01-23456789ABCD\nsize=8M, uuid=11234567-89AB-4CDE-8F01-23456789ABCD\n",
			"01234567-89AB-4CDE-8F01-23456789ABCD", "11234567-89AB-4CDE-8F01-23456789ABCD"},
		{"label: dos\nsize=8M\n", "", ""},
		{"label: gpt\nsize=8M\n", "", ""},
	} {
		img := testenv.Sparse(t, "d.img", 64<<20)
		l, _ := ParseLayout(strings.NewReader(tt.layout))
		dry, err := Apply(l, img, ApplyOptions{DryRun: true})
		if err != nil || dry.LabelID != tt.id || dry.Parts[0].UUID != tt.uuid {
			t.Errorf("dry run of %q: label-id %q uuid %q (%v); want %q %q", tt.layout, dry.LabelID, dry.Parts[0].UUID, err, tt.id, tt.uuid)
			continue
		}
		w, err := Apply(l, img, ApplyOptions{})
		if err != nil || w.LabelID == "" || tt.id != "" && w.LabelID != tt.id {
			t.Errorf("write of %q: label-id %q (%v); want %q", tt.layout, w.LabelID, err, tt.id)
		}
		if d, _ := Dump(img); d == nil || d.LabelID != w.LabelID {
			t.Errorf("write of %q: the disk has label-id %v, Apply said %q", tt.layout, d, w.LabelID)
		}
	}
}
