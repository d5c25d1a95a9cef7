package packaging

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/clonecd/clonecd/internal/testenv"
	"github.com/clonecd/clonecd/internal/vm"
	"github.com/clonecd/clonecd/medium"
)

// checkScript runs in the VM after clonecd-serve started, as root, and
// prints "CHECK key: value" lines on the serial console. The server speaks
// HTTPS and wants a credential on every request, so the checks talk to it
// with clonecd itself, which reads the store's secret and certificate
// (the golden root has no curl). %[1]s is the version file's name, %[2]s
// the store's node directory.
const checkScript = `#!/bin/bash
fetch() { clonecd fetch --server https://127.0.0.1:8080 --dir "${STORE:-/var/lib/clonecd}" -o /tmp/probe "$@"; }
waitup() {
	for i in $(seq 300); do
		fetch >/dev/null 2>&1 && return 0
		sleep 1
	done
	echo "CHECK failed: serve does not answer"; fetch; systemctl status clonecd-serve --no-pager; journalctl -u clonecd-serve --no-pager | tail -20
}
mainpid() { systemctl show -p MainPID --value clonecd-serve; }

waitup
echo "CHECK serve: $(systemctl is-active clonecd-serve) $(ps -o user= -p $(mainpid))"
echo "CHECK version: $(fetch --json | sed -n 's/.*"version": "\(.*\)".*/\1/p')"
echo "CHECK report: $(fetch --node s001 --report >/dev/null 2>&1 && echo reported || echo failed)"
echo "CHECK owner: $(stat -c %%U:%%G /var/lib/clonecd/%[2]s/s001/state.json 2>&1)"
echo "CHECK root-view: $(nsenter -t $(mainpid) -m ls -A /root | tr '\n' ' ')"
echo "CHECK writable: $(nsenter -t $(mainpid) -m sh -c 'touch /etc/x /usr/x /var/tmp/x /var/lib/clonecd/x 2>&1' | sed 's/.*cannot touch .\(.*\).: \(.*\)/\1 \2;/' | tr -d '\n')"
# A Medusa store served where it is (examples/medusa-store.conf), then
# the unit as shipped again.
dropins=/etc/systemd/system/clonecd-serve.service.d
mkdir -p $dropins && cp /usr/share/doc/clonecd/examples/medusa-store.conf $dropins/
systemctl daemon-reload && systemctl restart clonecd-serve
export STORE=/root/clone_image
waitup
echo "CHECK medusa: $(ps -o user= -p $(mainpid)) $(fetch --json | sed -n 's/.*"version": "\(.*\)".*/\1/p') $(fetch --node s002 --report >/dev/null 2>&1 && echo reported || echo failed) $(stat -c %%U:%%G $STORE/%[2]s/s002/state.json 2>&1) caps=$(sed -n 's/^CapEff:\t*//p' /proc/$(mainpid)/status) root-view=$(nsenter -t $(mainpid) -m ls -A /root | tr '\n' ' ')"
rm $dropins/medusa-store.conf
systemctl daemon-reload && systemctl restart clonecd-serve
unset STORE
waitup
pid=$(mainpid)
dpkg -i /var/tmp/clonecd.deb >/tmp/dpkg.log 2>&1; rc=$?
[ "$(mainpid)" != "$pid" ] && restarted=yes || restarted=no
echo "CHECK reinstall: rc=$rc $(systemctl is-active clonecd-serve) restarted=$restarted"
dpkg -r clonecd >>/tmp/dpkg.log 2>&1; echo "CHECK remove: rc=$? $(systemctl is-active clonecd-serve)"
dpkg -P clonecd >>/tmp/dpkg.log 2>&1; echo "CHECK purge: rc=$? $(test -e /var/lib/clonecd/%[1]s && echo store-kept || echo store-gone)"
sed 's/^/DPKG /' /tmp/dpkg.log
echo "CHECK done"
systemctl --no-block poweroff
`

const checkUnit = `[Unit]
Description=clonecd package test
After=clonecd-serve.service
Wants=clonecd-serve.service
[Service]
Type=oneshot
ExecStart=/usr/local/sbin/clonecd-check
StandardOutput=tty
StandardError=tty
TTYPath=/dev/ttyS0
[Install]
WantedBy=multi-user.target
`

// TestServiceUnderSystemd boots the golden root with the package
// installed (QEMU, its own kernel and systemd) and the service enabled by
// the admin: serve runs as clonecd under the unit's sandbox, serves the
// store root published, keeps a node's report (owned by clonecd), sees
// nothing of /root, can write only its store; with the drop-in
// medusa-store.conf it serves /root/clone_image in place as root without
// capabilities, seeing only that of /root; the maintainer scripts restart
// it on reinstall, stop it on remove and keep the store on purge, with
// systemd running.
func TestServiceUnderSystemd(t *testing.T) {
	if testing.Short() {
		t.Skip("boots a VM")
	}
	testenv.NeedTools(t, "qemu-system-x86_64", "mke2fs", "chroot", "dpkg-deb", "systemctl")
	res := sharedDeb(t)
	bin := releaseBinary(t)
	golden := testenv.GoldenRoot(t)
	root, _ := overlayRoot(t)
	dpkg(t, root, "-i", copyDeb(t, root, res.Path))
	// kept for the check to install again (/tmp is emptied at boot)
	if err := os.Rename(filepath.Join(root, "tmp", filepath.Base(res.Path)), filepath.Join(root, "var/tmp/clonecd.deb")); err != nil {
		t.Fatal(err)
	}

	// What root publishes into the service's store (root's files are
	// handed to the store's owner, clonecd), and a file in /root the
	// service must not see.
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	if err := os.MkdirAll(filepath.Join(src, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(src, "etc/hostname"), []byte("node\n"), 0o644)
	img, layout := filepath.Join(dir, "image.cpio.gz"), filepath.Join(dir, "layout")
	os.WriteFile(layout, []byte("label: dos\nunit: sectors\nsector-size: 512\n\n/dev/sda1 : start=2048, type=83\n# clonecd: part=1 fs=ext4 mount=/\n"), 0o644)
	run(t, bin, "pack", "-q", "-o", img, src)
	run(t, bin, "publish", "--unsigned", "--dir", filepath.Join(root, "var/lib/clonecd"), "--layout", layout, "--version", "1.0", img)
	// a Medusa store left in /root (served by the drop-in medusa-store.conf)
	run(t, bin, "publish", "--unsigned", "--dir", filepath.Join(root, "root/clone_image"), "--layout", layout, "--version", "2.0", img)
	os.WriteFile(filepath.Join(root, "root/secret"), []byte("root's\n"), 0o600)
	if err := os.WriteFile(filepath.Join(root, "usr/local/sbin/clonecd-check"), fmt.Appendf(nil, checkScript, medium.Version, medium.Nodes), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "etc/systemd/system/clonecd-check.service"), []byte(checkUnit), 0o644); err != nil {
		t.Fatal(err)
	}
	run(t, "systemctl", "--root="+root, "enable", UnitName, "clonecd-check.service")
	// No login prompt on the console: agetty hangs up ttyS0 when it
	// starts, and the check's output would go with it.
	run(t, "systemctl", "--root="+root, "mask", "serial-getty@ttyS0.service")

	disk := testenv.Sparse(t, "root.img", 3<<30)
	run(t, "mke2fs", "-q", "-t", "ext4", "-L", "root", "-d", root, disk)
	console, err := os.Create(filepath.Join(dir, "console.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer console.Close()
	v, err := vm.Start(vm.Options{Name: "deb-service", Kernel: filepath.Join(golden, "vmlinuz"), Initrd: filepath.Join(golden, "initrd.img"),
		Append: "root=/dev/vda rw console=ttyS0 systemd.show_status=0", Disks: []vm.Disk{{Path: disk}}, NIC: "none", MemMB: 1024, Log: console})
	if err != nil {
		t.Fatal(err)
	}
	defer v.Kill()

	for i, c := range []struct{ key, want string }{
		{"serve", `^active clonecd$`},
		{"version", `^1\.0$`},
		{"report", `^reported$`},
		{"owner", `^clonecd:clonecd$`},
		{"root-view", `^$`},
		{"writable", `^/etc/x Read-only file system;/usr/x Read-only file system;$`},
		{"medusa", `^root 2\.0 reported root:root caps=0+ root-view=clone_image $`},
		{"reinstall", `^rc=0 active restarted=yes$`},
		{"remove", `^rc=0 (inactive|unknown)$`},
		{"purge", `^rc=0 store-kept$`},
	} {
		timeout := 2 * time.Minute
		if i == 0 {
			timeout = 15 * time.Minute // a TCG boot on a busy machine
		}
		// up to the line's end: the console arrives in pieces
		line, err := v.Expect(`CHECK (`+regexp.QuoteMeta(c.key)+`|failed): [^\r\n]*\r?\n`, timeout)
		if err != nil {
			t.Fatal(err)
		}
		got := strings.TrimRight(strings.TrimPrefix(line, "CHECK "+c.key+": "), "\r\n")
		if !regexp.MustCompile(c.want).MatchString(got) {
			t.Errorf("%s: %q, want %s\nconsole:\n%s", c.key, got, c.want, v.Tail(60))
		}
	}
	if _, err := v.Expect(`CHECK done`, 2*time.Minute); err != nil {
		t.Fatal(err)
	}
	if out := v.Output(); strings.Contains(out, "DPKG ") && regexp.MustCompile(`DPKG .*(?i:warning|error)`).MatchString(out) {
		t.Errorf("dpkg with systemd running said:\n%s", regexp.MustCompile(`(?m)^.*DPKG .*$`).FindAllString(out, -1))
	}
	if err := v.Wait(3 * time.Minute); err != nil {
		t.Logf("the VM did not power off: %v", err)
	}
}
