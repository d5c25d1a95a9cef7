package trust

import (
	"bufio"
	"bytes"
	"fmt"
	"path"
	"strings"

	"github.com/clonecd/clonecd/cpio"
)

// Where the cloner finds its credential in its root (the initramfs). The
// files come in extra initramfs archives that the boot loader loads after
// the cloner's initrd.img, so the cloner's initrd.img itself (which a clone
// installs on every node) never carries a token:
//
//   - CredentialFile, one node's "NAME:TOKEN\n": the ramclone entry on a
//     cloned node loads it from /boot/clonecd/credential.img (0600), which
//     `clonecd ramclone --credential -` or the clone's bootloader step
//     writes.
//   - CredentialsFile, one "NAME:TOKEN" line per node: a clone CD built
//     with a nodes table and the store's secret carries it as
//     medium.Credentials, loaded by every entry of the CD. The cloner picks
//     its node's line.
const (
	CredentialFile  = "/etc/clonecd/credential"
	CredentialsFile = "/etc/clonecd/credentials"
)

// maxCredentials bounds a credentials table (4096 nodes).
const maxCredentials = 4096

// ParseCredentials reads a credentials table: one NAME:TOKEN a line,
// blank lines and # comments ignored, names unique. name is used in
// errors.
func ParseCredentials(b []byte, name string) ([]Credential, error) {
	var out []Credential
	seen := map[string]bool{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		c, err := ParseCredential(line)
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %w", name, n, err)
		}
		if seen[c.User] {
			return nil, fmt.Errorf("%s:%d: a second credential for %s", name, n, c.User)
		}
		if len(out) == maxCredentials {
			return nil, fmt.Errorf("%s: more than %d credentials", name, maxCredentials)
		}
		seen[c.User] = true
		out = append(out, c)
	}
	return out, sc.Err()
}

// LoadCredentials reads a credentials table file (CredentialsFile), which
// must not be readable by group or others.
func LoadCredentials(file string) ([]Credential, error) {
	b, err := readPrivate(file, 256<<10)
	if err != nil {
		return nil, err
	}
	return ParseCredentials(b, file)
}

// FindCredential returns the credential of user in creds.
func FindCredential(creds []Credential, user string) (Credential, bool) {
	for _, c := range creds {
		if c.User == user {
			return c, true
		}
	}
	return Credential{}, false
}

// CredentialsInitrd returns an uncompressed newc archive holding file
// (CredentialFile or CredentialsFile; 0600, root's) with creds, one
// "NAME:TOKEN" line each, and its directories (0755, as the cloner's
// initramfs has them: the kernel applies an archive's directory modes to
// directories that exist). The kernel unpacks it over the initramfs when
// the boot loader names it after initrd.img.
func CredentialsInitrd(file string, creds ...Credential) ([]byte, error) {
	if !path.IsAbs(file) || path.Clean(file) != file {
		return nil, fmt.Errorf("credentials file %q: want a clean absolute path", file)
	}
	var text bytes.Buffer
	for _, c := range creds {
		if _, err := ParseCredential(c.String()); err != nil {
			return nil, err
		}
		b, _ := c.MarshalText()
		text.Write(b)
	}
	var out bytes.Buffer
	w := cpio.NewWriter(&out)
	name := strings.TrimPrefix(file, "/")
	var dirs []string
	for d := path.Dir(name); d != "."; d = path.Dir(d) {
		dirs = append([]string{d}, dirs...)
	}
	for _, d := range dirs {
		if err := w.WriteHeader(&cpio.Header{Name: d, Mode: 0o040755, Nlink: 2}); err != nil {
			return nil, err
		}
	}
	if err := w.WriteHeader(&cpio.Header{Name: name, Mode: 0o100600, Nlink: 1, Size: int64(text.Len())}); err != nil {
		return nil, err
	}
	if _, err := w.Write(text.Bytes()); err != nil {
		return nil, err
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	return out.Bytes(), nil
}
