package clone

// A node keeps its ssh host keys and machine-id across reclones: the
// master's known_hosts (and `clonecd reclone`, which runs ssh with
// BatchMode) keep working, and journald and DHCP keep knowing the node.
// Before the table is written (step partition), the node's previous
// identity is read from its old root, read-only: /etc/hostname,
// /etc/machine-id and /etc/ssh/ssh_host_*. The identity step puts them
// back when the old system had the same name; otherwise (a new node, a
// disk moved to another node, an unreadable old root) it makes new ones,
// and it logs which.
//
// The old root is formatted in step mkfs, so a power cut between mkfs and
// the identity step would lose them. Right after the root's mkfs they are
// therefore written to /var/lib/clonecd/identity on the new filesystem
// (0700, synced); a run that finds that directory takes the identity from
// it, and the identity step removes it once the real files are written.

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"regexp"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/clonecd/clonecd/partition"
)

// carryDir is where the previous identity waits on the new root between
// mkfs and the identity step.
const carryDir = "var/lib/clonecd/identity"

// oldNode is the identity of the system on the disk before the clone.
type oldNode struct {
	hostname  string
	machineID string     // 32 hex digits, or ""
	keys      []hostFile // etc/ssh/ssh_host_*
	from      string     // where it was read, for the log
}

type hostFile struct {
	name string // base name: ssh_host_ed25519_key
	data []byte
	mode os.FileMode
}

var machineIDRE = regexp.MustCompile(`^[0-9a-f]{32}$`)

// readPrevious reads the identity of the system on the disk's root
// partition, before anything is written. It never fails the run: without
// a readable old root the node gets a new identity.
func (r *run) readPrevious() {
	n := r.rootNumber()
	if r.oldTable == nil || r.oldTable.Part(n) == nil {
		r.logf("identity: no partition %d on %s before the clone: this node gets a new identity", n, r.disk)
		return
	}
	dev := partition.PartDevice(r.disk, n)
	waitDevice(r.disk, dev)
	info, err := partition.ProbeFS(dev)
	if err != nil || fam(info.Type) == "" {
		r.logf("identity: no old root on %s (%v): this node gets a new identity", dev, orNone(errString(err)))
		return
	}
	mnt, err := os.MkdirTemp("", "clonecd-oldroot-")
	if err != nil {
		r.logf("identity: warning: %v", err)
		return
	}
	defer os.Remove(mnt)
	if err := unix.Mount(dev, mnt, mountType(info.Type), unix.MS_RDONLY, ""); err != nil {
		r.logf("identity: the old root %s (%s) cannot be mounted: %v; this node gets a new identity", dev, info.Type, err)
		return
	}
	defer unix.Unmount(mnt, 0)
	root, err := os.OpenRoot(mnt)
	if err != nil {
		r.logf("identity: warning: %v", err)
		return
	}
	defer root.Close()
	old := readIdentity(root, carryDir, "")
	old.from = dev + ":/" + carryDir + " (a clone cut short)"
	if old.hostname == "" {
		old = readIdentity(root, "etc", "etc/ssh")
		old.from = dev
	}
	if old.hostname == "" {
		r.logf("identity: the old root on %s has no /etc/hostname: this node gets a new identity", dev)
		return
	}
	r.previous = old
	r.logf("identity: the old system on %s is %s (machine-id %s, %d ssh host key files)", dev, old.hostname, orNone(old.machineID), len(old.keys))
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// readIdentity reads hostname and machine-id from dir and the ssh host
// key files from keyDir (dir itself when "").
func readIdentity(root *os.Root, dir, keyDir string) *oldNode {
	if keyDir == "" {
		keyDir = dir
	}
	n := &oldNode{}
	if b, err := readIn(root, path.Join(dir, "hostname")); err == nil {
		if h := strings.TrimSpace(string(b)); checkHostname(h) == nil {
			n.hostname = h
		}
	}
	if b, err := readIn(root, path.Join(dir, "machine-id")); err == nil {
		if id := strings.TrimSpace(string(b)); machineIDRE.MatchString(id) {
			n.machineID = id
		}
	}
	kd, err := resolveIn(root, keyDir, true)
	if err != nil {
		return n
	}
	ents, _ := fs.ReadDir(root.FS(), kd)
	for _, e := range ents {
		if !strings.HasPrefix(e.Name(), "ssh_host_") || !e.Type().IsRegular() {
			continue
		}
		fi, err := e.Info()
		if err != nil {
			continue
		}
		b, err := root.ReadFile(path.Join(kd, e.Name()))
		if err != nil || len(b) == 0 {
			continue
		}
		n.keys = append(n.keys, hostFile{name: e.Name(), data: b, mode: fi.Mode().Perm()})
	}
	return n
}

// carryPrevious writes the previous identity to carryDir on the freshly
// made root filesystem mounted at root (step mkfs).
func (r *run) carryPrevious(root *os.Root) error {
	o := r.previous
	if err := root.MkdirAll(carryDir, 0o700); err != nil {
		return err
	}
	if err := root.Chmod(carryDir, 0o700); err != nil {
		return err
	}
	files := []hostFile{{name: "hostname", data: []byte(o.hostname + "\n"), mode: 0o600}}
	if o.machineID != "" {
		files = append(files, hostFile{name: "machine-id", data: []byte(o.machineID + "\n"), mode: 0o600})
	}
	for _, f := range append(files, o.keys...) {
		if err := root.WriteFile(path.Join(carryDir, f.name), f.data, f.mode); err != nil {
			return fmt.Errorf("keeping the node's identity in /%s: %w", carryDir, err)
		}
	}
	return nil
}

// hostKeys gives the node its ssh host keys and machine-id: its own from
// before the clone when the old system had the same name, else new ones.
func (r *run) hostKeys() error {
	root := r.newRoot
	o := r.previous
	same := o != nil && o.hostname == r.hostname
	switch {
	case o == nil:
		r.logf("identity: first clone of this disk (no old system): new ssh host keys and machine-id")
	case !same:
		r.logf("identity: the old system was %s, this node is %s: new ssh host keys and machine-id", o.hostname, r.hostname)
	}
	kept := 0
	if same && len(o.keys) > 0 {
		if err := r.removeHostKeys(); err != nil {
			return err
		}
		for _, k := range o.keys {
			if err := writeIn(root, "etc/ssh/"+k.name, k.data, k.mode); err != nil {
				return err
			}
		}
		kept = len(o.keys)
	} else if err := r.newHostKeys(); err != nil {
		return err
	}
	id := ""
	if same {
		id = o.machineID
	}
	if err := r.machineID(id); err != nil {
		return err
	}
	if same {
		r.logf("identity: ssh host keys (%d files) and machine-id %s kept from the node's previous system (%s, %s)", kept, orNone(id), o.hostname, o.from)
	}
	if err := root.RemoveAll(carryDir); err != nil {
		return fmt.Errorf("removing /%s: %w", carryDir, err)
	}
	return nil
}

// machineID writes /etc/machine-id: id, or a new random one when "".
func (r *run) machineID(id string) error {
	if id == "" {
		var err error
		if id, err = newMachineID(); err != nil {
			return err
		}
	}
	if err := writeIn(r.newRoot, "etc/machine-id", []byte(id+"\n"), 0o444); err != nil {
		return err
	}
	if st, err := statIn(r.newRoot, "var/lib/dbus"); err == nil && st.IsDir() {
		if err := symlinkIn(r.newRoot, "/etc/machine-id", "var/lib/dbus/machine-id"); err != nil {
			return fmt.Errorf("linking /var/lib/dbus/machine-id: %w", err)
		}
	}
	return nil
}

// removeHostKeys removes the image's ssh host keys (the golden node's, or
// a half-done clone's).
func (r *run) removeHostKeys() error {
	dir, err := resolveIn(r.newRoot, "etc/ssh", true)
	if err != nil {
		return err
	}
	ents, err := fs.ReadDir(r.newRoot.FS(), dir)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), "ssh_host_") {
			if err := r.newRoot.Remove(path.Join(dir, e.Name())); err != nil {
				return err
			}
		}
	}
	return nil
}

// newHostKeys replaces the image's ssh host keys with new ones
// (ssh-keygen -A inside the new root).
func (r *run) newHostKeys() error {
	if st, err := statIn(r.newRoot, "etc/ssh"); err != nil || !st.IsDir() {
		r.logf("identity: no /etc/ssh, no host keys")
		return nil
	}
	if err := r.removeHostKeys(); err != nil {
		return err
	}
	if _, err := statIn(r.newRoot, "usr/bin/ssh-keygen"); err != nil {
		return fmt.Errorf("the image has /etc/ssh but no /usr/bin/ssh-keygen: cannot make ssh host keys")
	}
	if err := r.chroot(nil, "ssh-keygen", "-A"); err != nil {
		return err
	}
	dir, _ := resolveIn(r.newRoot, "etc/ssh", true)
	ents, _ := fs.ReadDir(r.newRoot.FS(), dir)
	n := 0
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), "ssh_host_") && strings.HasSuffix(e.Name(), "_key") {
			n++
		}
	}
	r.logf("identity: %d new ssh host keys", n)
	return nil
}
