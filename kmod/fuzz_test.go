package kmod

import (
	"strings"
	"testing"
)

func FuzzParse(f *testing.F) {
	f.Add("kernel/fs/ext4/ext4.ko: kernel/lib/crc16.ko\nalias fs-ext4 ext4\nsoftdep ext4 pre: crypto-crc32c post: x\nkernel/fs/a.ko\n")
	f.Fuzz(func(t *testing.T, s string) {
		for _, p := range []func(string) error{
			func(s string) error { _, err := ParseDep(strings.NewReader(s)); return err },
			func(s string) error { _, err := ParseAlias(strings.NewReader(s)); return err },
			func(s string) error { _, err := ParseSoftdep(strings.NewReader(s)); return err },
			func(s string) error { _, err := ParseBuiltin(strings.NewReader(s)); return err },
		} {
			p(s)
		}
		x, err := ParseDep(strings.NewReader(s))
		if err == nil {
			x.Closure(x.Modules())
		}
	})
}

func FuzzGlob(f *testing.F) {
	f.Add("pci:v*d*sv*", "pci:v00008086d00007010sv0")
	f.Add("[a-", "[a-")
	f.Add(`\`, `\`)
	f.Fuzz(func(t *testing.T, pat, s string) {
		got := Glob(pat, s)
		if pat == "*" && !got {
			t.Errorf("* does not match %q", s)
		}
		if !strings.ContainsAny(pat, `*?[\`) && Glob(pat, s) != (pat == s) {
			t.Errorf("literal pattern %q vs %q", pat, s)
		}
	})
}
