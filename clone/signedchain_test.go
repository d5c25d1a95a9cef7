package clone

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/clonecd/clonecd/partition"
)

// TestSignedChain: the bootloader step puts the root's signed shim and
// GRUB on the ESP when the root has shim-signed and
// grub-efi-amd64-signed, replacing grub-install's BOOTX64.EFI, and leaves
// the ESP alone without them.
func TestSignedChain(t *testing.T) {
	for _, tt := range []struct {
		name   string
		signed bool
		want   map[string]string // ESP file -> content ("": absent)
	}{
		{"shim-signed installed", true, map[string]string{"EFI/BOOT/BOOTX64.EFI": "SHIM", "EFI/BOOT/grubx64.efi": "GRUB",
			"EFI/debian/grub.cfg": "search.fs_uuid 1234-abcd root"}},
		{"no shim-signed", false, map[string]string{"EFI/BOOT/BOOTX64.EFI": "GRUB-INSTALL", "EFI/BOOT/grubx64.efi": "", "EFI/debian/grub.cfg": ""}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			write := func(p, s string) {
				p = filepath.Join(dir, p)
				if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			write("boot/efi/EFI/BOOT/BOOTX64.EFI", "GRUB-INSTALL")
			if tt.signed {
				write("usr/lib/shim/shimx64.efi.signed", "SHIM")
				write("usr/lib/grub/x86_64-efi-signed/grubx64.efi.signed", "GRUB")
			}
			root, err := os.OpenRoot(dir)
			if err != nil {
				t.Fatal(err)
			}
			defer root.Close()
			var log bytes.Buffer
			esp := partition.Part{Number: 2, Mount: "/boot/efi"}
			r := &run{log: &log, newRoot: root, uuids: map[int]string{4: "1234-abcd"},
				fitted: &partition.Layout{Parts: []partition.Part{esp, {Number: 4, Mount: "/"}}}}
			if err := r.signedChain(&esp); err != nil {
				t.Fatal(err)
			}
			for f, want := range tt.want {
				b, err := os.ReadFile(filepath.Join(dir, "boot/efi", f))
				switch {
				case want == "" && err == nil:
					t.Errorf("%s written: %q", f, b)
				case want != "" && (err != nil || !strings.Contains(string(b), want)):
					t.Errorf("%s = %q, %v; want %q", f, b, err, want)
				}
			}
			if tt.signed != strings.Contains(log.String(), "Secure Boot chain") {
				t.Errorf("log: %q", log.String())
			}
		})
	}
}
