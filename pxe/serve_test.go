package pxe

import (
	"bytes"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"pack.ag/tftp"

	"github.com/clonecd/clonecd/internal/testenv"
	"github.com/clonecd/clonecd/medium"
)

// TestServePXE: `clonecd serve --pxe` (the binary, beside Debian's
// dnsmasq as the site's DHCP server, in the test's network namespace)
// answers a real DHCP client: an unknown MAC gets no boot file and shows
// as new in `clonecd status`; `clonecd reclone --pxe NODE` marks a node
// of the nodes table, whose next DISCOVER gets snponly.efi, which TFTP
// and HTTP serve as publish copied it from Debian's ipxe; its stage 2
// boots the version's cloner with the image server's HTTPS URL, TLS pin
// and the node's credential; its done report sends its next boot to its
// disk.
func TestServePXE(t *testing.T) {
	t.Parallel()
	l, iface := clientLab(t)
	if l == nil {
		return
	}
	if _, err := os.Stat("/usr/lib/ipxe/" + FileUEFI); err != nil {
		testenv.Missing(t, "Debian's ipxe (%v)", err)
	}
	bin := testenv.Clonecd(t)
	store := smallStore(t, bin, l.dir)
	defer func() {
		if t.Failed() {
			t.Logf("lab log:\n%s", l.logText())
		}
	}()

	serve := clonecd(t.Context(), bin, "serve", map[string]string{"store": store, "listen": l.ip + ":8443", "iface": iface,
		"port": "8069", "pxe": "--pxe-tftp-single-port"})
	serve.Stdout, serve.Stderr = l.logWriter("serve"), l.logWriter("serve")
	if err := serve.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { serve.Process.Signal(syscall.SIGTERM); serve.Wait() }()
	l.url = "http://" + l.ip + ":8069"
	l.waitStage2()

	const marked, unknown = "52:54:00:7e:00:05", "52:54:00:7e:00:99"
	run := func(what string, a map[string]string) (string, error) {
		a["store"] = store
		out, err := clonecd(t.Context(), bin, what, a).CombinedOutput()
		return string(out), err
	}
	if out, err := run("reclone --pxe", map[string]string{"nodes": "pxe05"}); err != nil || !strings.Contains(out, marked) {
		t.Fatalf("clonecd reclone --pxe pxe05: %v\n%s", err, out)
	}
	if out, err := run("reclone --pxe", map[string]string{"nodes": "nosuchnode"}); err == nil {
		t.Errorf("clonecd reclone --pxe of a node the nodes table does not name: exit 0\n%s", out)
	}
	site, proxy := labSubnet+".1", labSubnet+".2"
	for deadline := time.Now().Add(time.Minute); ; { // dnsmasq and serve up
		got := dhcpOffers(t, "cB", marked, uefiPXE)
		if got[site] != nil && got[proxy] != nil {
			if f := got[proxy].BootFileName; f != FileUEFI {
				t.Errorf("the marked node's proxy offer: boot file %q; want %q", f, FileUEFI)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no answer from dnsmasq and clonecd serve --pxe within a minute: %v", got)
		}
	}
	if got := dhcpOffers(t, "cB", unknown, uefiPXE); got[site] == nil || got[proxy] != nil {
		t.Errorf("an unknown MAC: offers %v; want dnsmasq's only", got)
	}
	for _, server := range []string{"", "https://" + proxy + ":8443"} { // the store, the server's fleet overview
		if out, err := run("status", map[string]string{"server": server}); err != nil || !regexpMatch(`(?m)^  `+unknown+`  new, uefi, PXEClient`, out) {
			t.Errorf("clonecd status (server %q): %v; want %s as new\n%s", server, err, unknown, out)
		}
	}

	// the boot file, as publish copied it (and listed it in MANIFEST),
	// over TFTP and HTTP
	if m, err := os.ReadFile(filepath.Join(store, "current", "MANIFEST")); err != nil || !strings.Contains(string(m), " pxe/"+FileUEFI+"\n") {
		t.Errorf("the version's MANIFEST does not list pxe/%s: %v\n%s", FileUEFI, err, m)
	}
	want, err := os.ReadFile("/usr/lib/ipxe/" + FileUEFI)
	if err != nil {
		t.Fatal(err)
	}
	tc, err := tftp.NewClient(tftp.ClientBlocksize(1024))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := tc.Get("tftp://" + proxy + "/" + FileUEFI)
	var got []byte
	if err == nil {
		got, err = io.ReadAll(resp)
	}
	if err != nil || !bytes.Equal(got, want) {
		t.Errorf("TFTP %s: %d bytes, %v; want the %d of Debian's", FileUEFI, len(got), err, len(want))
	}
	get := func(path string) string {
		t.Helper()
		r, err := http.Get(l.url + Prefix + path)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Body.Close()
		b, _ := io.ReadAll(r.Body)
		if r.StatusCode != http.StatusOK {
			t.Errorf("GET %s: %s", path, r.Status)
		}
		return string(b)
	}
	if b := get("boot/" + FileUEFI); b != string(want) {
		t.Errorf("HTTP boot/%s: %d bytes; want %d", FileUEFI, len(b), len(want))
	}
	if b := get("v/" + labVersion + "/" + KernelName); b != "KERNEL" {
		t.Errorf("HTTP the cloner's kernel: %q", b)
	}
	token, err := run("token", map[string]string{"node": "pxe05"})
	if err != nil {
		t.Fatalf("clonecd token pxe05: %v\n%s", err, token)
	}
	token = strings.TrimSpace(token)
	script := get("node/" + marked + ".ipxe")
	for _, w := range []string{"clonecd.mode=net", "clonecd.server=https://" + proxy + ":8443", "clonecd.tls-pin=sha256//",
		"clonecd.credential=" + token, "clonecd.hostname=pxe05", Prefix + "v/" + labVersion + "/" + InitrdName} {
		if !strings.Contains(script, w) {
			t.Errorf("stage 2 of the marked node lacks %q:\n%s", w, script)
		}
	}

	// the node reports its clone done: its next network boot is its disk
	user, pass, _ := strings.Cut(token, ":")
	req, _ := http.NewRequest(http.MethodPost, "https://"+proxy+":8443/api/nodes/pxe05", strings.NewReader(`{"state":"done","version":"`+labVersion+`"}`))
	req.SetBasicAuth(user, pass)
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}} // the pin is the cloner's business
	r, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	r.Body.Close()
	if r.StatusCode != http.StatusOK {
		t.Fatalf("the done report: %s", r.Status)
	}
	select {
	case n := <-l.cloned:
		if n != "pxe05" {
			t.Errorf("serve marked %s cloned; want pxe05", n)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("serve did not mark pxe05 cloned after its done report")
	}
	if got := dhcpOffers(t, "cB", marked, uefiPXE); got[proxy] != nil {
		t.Errorf("after the clone, the proxy offered %q; want silence (the disk)", got[proxy].BootFileName)
	}
}

// smallStore publishes a tiny image with a stand-in cloner kernel and
// initramfs (stage 2 only serves them) and the lab's nodes table.
func smallStore(t *testing.T, bin, dir string) string {
	t.Helper()
	root := filepath.Join(dir, "root")
	var nodes strings.Builder
	for mac, name := range labNodes {
		fmt.Fprintf(&nodes, "%s %s\n", mac, name)
	}
	nodes.WriteString("52:54:00:7e:00:05 pxe05\n")
	for name, s := range map[string]string{"root/etc/hostname": "golden\n", "vmlinuz": "KERNEL", "initrd.img": "INITRD",
		"gpt.sfdisk": gptLayout, "nodes": nodes.String()} {
		p := filepath.Join(dir, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	img, store := filepath.Join(dir, "node.cpio.gz"), filepath.Join(dir, "store")
	runClonecd(t, bin, "pack", map[string]string{"out": img, "root": root})
	runClonecd(t, bin, "publish", map[string]string{"store": store, "layout": filepath.Join(dir, "gpt.sfdisk"),
		"nodes": filepath.Join(dir, "nodes"), "kernel": filepath.Join(dir, "vmlinuz"), "initrd": filepath.Join(dir, "initrd.img"),
		"version": labVersion, "image": img})
	return store
}

func regexpMatch(re, s string) bool { return regexp.MustCompile(re).MatchString(s) }

// TestBootFileNames: every boot file this package serves has its name
// among the medium's (publish copies it into the version as that name,
// MANIFEST lists it, serve --pxe serves the current version's).
func TestBootFileNames(t *testing.T) {
	if len(BootFiles) != len(medium.BootFiles) {
		t.Errorf("pxe has %d boot files, medium names %d", len(BootFiles), len(medium.BootFiles))
	}
	for _, f := range BootFiles {
		name := medium.BootDir + "/" + f.Name
		if !slices.Contains(medium.BootFiles, name) || !medium.IsFile(name) {
			t.Errorf("%s: not a medium file name", name)
		}
	}
}
