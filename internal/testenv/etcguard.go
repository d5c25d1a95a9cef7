package testenv

import (
	"crypto/sha256"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"syscall"
)

// EtcDir is the host directory GuardEtc watches.
const EtcDir = "/etc"

// GuardEtc runs a package's tests (m.Run) and fails the package when they
// changed the host's /etc: tests write only under their temp dirs and in
// network namespaces they made (a DHCP test once emptied the host's
// resolv.conf). Use it as TestMain in every package whose tests touch
// networking or disks:
//
//	func TestMain(m *testing.M) { os.Exit(testenv.GuardEtc(m)) }
func GuardEtc(m interface{ Run() int }) int {
	before, err := HashTree(EtcDir)
	if err != nil {
		fmt.Fprintf(os.Stderr, "testenv: hashing %s: %v\n", EtcDir, err)
		return 1
	}
	code := m.Run()
	after, err := HashTree(EtcDir)
	if err != nil {
		fmt.Fprintf(os.Stderr, "testenv: hashing %s: %v\n", EtcDir, err)
		return 1
	}
	if diff := DiffTrees(before, after); len(diff) > 0 {
		fmt.Fprintf(os.Stderr, "FAIL: the tests changed the host's %s:\n", EtcDir)
		for _, d := range diff {
			fmt.Fprintf(os.Stderr, "\t%s\n", d)
		}
		return 1
	}
	return code
}

// GuardEtcOr is GuardEtc for a package whose test binary doubles as a
// helper process that its tests start with the environment variable env
// set: then the binary runs helper instead of the tests and returns its
// exit code.
//
//	func TestMain(m *testing.M) { os.Exit(testenv.GuardEtcOr(m, "PKG_HELPER", helper)) }
func GuardEtcOr(m interface{ Run() int }, env string, helper func() int) int {
	if os.Getenv(env) != "" {
		return helper()
	}
	return GuardEtc(m)
}

// HashTree describes every entry under dir: type, mode, owner, and the
// sha256 of a file's content or a symlink's target.
func HashTree(dir string) (map[string]string, error) {
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			out[p] = "unreadable: " + err.Error()
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			out[p] = "unreadable: " + err.Error()
			return nil
		}
		desc := fi.Mode().String()
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			desc += fmt.Sprintf(" %d:%d", st.Uid, st.Gid)
		}
		switch {
		case fi.Mode().IsRegular():
			h := sha256.New()
			f, err := os.Open(p)
			if err != nil {
				desc += " unreadable"
				break
			}
			_, err = io.Copy(h, f)
			f.Close()
			if err != nil {
				desc += " unreadable"
				break
			}
			desc += fmt.Sprintf(" %d %x", fi.Size(), h.Sum(nil))
		case fi.Mode()&fs.ModeSymlink != 0:
			t, _ := os.Readlink(p)
			desc += " -> " + t
		}
		out[p] = desc
		return nil
	})
	return out, err
}

// DiffTrees lists what differs between two HashTree results.
func DiffTrees(before, after map[string]string) []string {
	var diff []string
	for p, b := range before {
		a, ok := after[p]
		switch {
		case !ok:
			diff = append(diff, p+": removed")
		case a != b:
			diff = append(diff, fmt.Sprintf("%s: changed (%s, was %s)", p, a, b))
		}
	}
	for p := range after {
		if _, ok := before[p]; !ok {
			diff = append(diff, p+": added")
		}
	}
	sort.Strings(diff)
	return diff
}
