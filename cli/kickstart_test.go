package cli

import (
	"os"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/clonecd/clonecd/internal/testenv"
	"github.com/clonecd/clonecd/partition"
)

func TestKickstartCommand(t *testing.T) {
	t.Parallel()
	ks := func(name string) string { return filepath.Join(testenv.RepoRoot(), "testdata", "kickstart", name) }
	out := filepath.Join(t.TempDir(), "node.sfdisk")
	tests := []struct {
		args      []string
		code      int
		out, errs string // regexps
	}{
		{[]string{"kickstart", ks("rhel8.ks")}, 0,
			`(?s)== layout\n# clonecd layout from .*label: gpt\n.*/dev/vda5 : size=     2097152, type=0FC63DAF.*# clonecd: part=5 fs=xfs mount=/data label=data mkfs="-m reflink=0" grow=yes\n` +
				`.*== network\nnetwork device=ens3 bootproto=dhcp onboot=no ipv6=auto\nnetwork device=\(first\) bootproto=dhcp hostname=rhel8-node\n` +
				`.*== root password\nplain text in the kickstart \(not shown.*== timezone\nAsia/Tokyo \(hardware clock UTC, no NTP\)\n` +
				`.*== %post scripts \(1\)\n%post --log=/root/ks-post.log --erroronfail\t# .*rhel8.ks:30\n#!/bin/bash\nset -e\n.*%end\n$`, `^$`},
		{[]string{"kickstart", ks("rhel5.ks")}, 0, `(?s)\$1\$Xm3s2pQ1\$4vJ0Yx3dD2kXcN0Vw7b1R\.\n.*%post --nochroot\t.*%post\t`, `^$`},
		{[]string{"kickstart", "--layout-only", ks("centos.ks")}, 0, `^# clonecd layout from .*\nlabel: dos\n`,
			`centos.ks:12: warning: unknown command "frobnicate" ignored\n`},
		{[]string{"kickstart", "--strict", "--layout-only", ks("centos.ks")}, 1, `label: dos`, `--strict`},
		{[]string{"kickstart", ks("lvm.ks")}, 2, `(?s)== layout\n\(none: .*lvm.ks:6: volgroup`, `lvm.ks:7: logvol: clonecd cannot make LVM logical volumes`},
		{[]string{"kickstart", "--layout-only", ks("lvm.ks")}, 2, `^$`, `volgroup`},
		{[]string{"kickstart", "--firmware", "uefi", "--ram", "16384", "-o", out, ks("rhel9.ks")}, 0, `^$`, `^$`},
		{[]string{"kickstart", "--firmware", "arm", ks("rhel9.ks")}, 2, `^$`, `invalid argument "arm" for "--firmware" flag: want one of: bios, uefi`},
		{[]string{"kickstart", ks("nope.ks")}, 2, `^$`, `no such file`},
		{[]string{"kickstart"}, 2, `^$`, `clonecd kickstart: want one kickstart file\nRun .clonecd kickstart --help. for usage`},
	}
	for _, tt := range tests {
		code, stdout, stderr := runMain(t, tt.args...)
		if code != tt.code || !regexp.MustCompile(tt.out).MatchString(stdout) || !regexp.MustCompile(tt.errs).MatchString(stderr) {
			t.Errorf("%v: exit %d\nstdout:\n%s\nstderr:\n%s\nwant exit %d, stdout %q, stderr %q", tt.args, code, stdout, stderr, tt.code, tt.out, tt.errs)
		}
	}
	l, err := partition.ReadLayoutFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if l.Label != "gpt" || len(l.Parts) != 5 || l.Parts[0].Mount != "/boot/efi" || l.Parts[2].Size != 8192*2048 {
		b, _ := os.ReadFile(out)
		t.Errorf("-o wrote an unexpected layout:\n%s", b)
	}
}
