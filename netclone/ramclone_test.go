package netclone

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/clonecd/clonecd/internal/testenv"
)

const grubCfg = `load_env
if [ "${next_entry}" ] ; then
   set default="${next_entry}"
   set next_entry=
   save_env next_entry
fi
menuentry 'Debian GNU/Linux' --class debian --id gnulinux-simple {
	linux /boot/vmlinuz root=UUID=x
}
menuentry 'ramclone' --id ramclone {
	linux /boot/clonecd/vmlinuz clonecd.mode=net clonecd.server=http://10.0.2.2:8080
	initrd /boot/clonecd/initrd.img
}
`

// TestRamcloneGrub: the real grub-editenv writes next_entry=ramclone (or
// saved_entry with --sticky) into the node's grubenv.
func TestRamcloneGrub(t *testing.T) {
	testenv.NeedTools(t, "grub-editenv")
	tests := []struct {
		name   string
		cfg    string
		sticky bool
		want   string
		err    string
	}{
		{"once", grubCfg, false, "next_entry=ramclone", ""},
		{"sticky", grubCfg, true, "saved_entry=ramclone", ""},
		{"no entry", strings.ReplaceAll(grubCfg, "--id ramclone", ""), false, "", "no menuentry"},
		{"no env", strings.ReplaceAll(grubCfg, "next_entry", "x"), false, "", "GRUB_DEFAULT=saved"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			boot := t.TempDir()
			os.MkdirAll(filepath.Join(boot, "grub"), 0o755)
			os.WriteFile(filepath.Join(boot, "grub", "grub.cfg"), []byte(tc.cfg), 0o644)
			what, err := Ramclone(RamcloneOptions{BootDir: boot, Sticky: tc.sticky, Hostname: "s042"})
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			env := testenv.Run(t, "grub-editenv", filepath.Join(boot, "grub", "grubenv"), "list")
			if !strings.Contains(env, tc.want) || !strings.Contains(env, "clonecd_hostname=s042") {
				t.Fatalf("grubenv %q, want %s (%s)", env, tc.want, what)
			}
		})
	}
}

func TestRamcloneExtlinux(t *testing.T) {
	boot := t.TempDir()
	os.MkdirAll(filepath.Join(boot, "extlinux"), 0o755)
	os.WriteFile(filepath.Join(boot, "extlinux", "extlinux.conf"), []byte("default linux\nlabel linux\n  kernel /vmlinuz\nlabel ramclone\n  kernel /clonecd/vmlinuz\n"), 0o644)
	var ran []string
	what, err := Ramclone(RamcloneOptions{BootDir: boot, Run: func(name string, args ...string) ([]byte, error) {
		ran = append(ran, name+" "+strings.Join(args, " "))
		return nil, nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	if want := "extlinux --once=ramclone " + filepath.Join(boot, "extlinux"); len(ran) != 1 || ran[0] != want {
		t.Fatalf("ran %q, want %q (%s)", ran, want, what)
	}
	if _, err := Ramclone(RamcloneOptions{BootDir: t.TempDir()}); err == nil {
		t.Fatal("no boot loader: no error")
	}
}
