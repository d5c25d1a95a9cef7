package netclone

import (
	"os"
	"path/filepath"

	"github.com/clonecd/clonecd/internal/atomicfile"
	"github.com/clonecd/clonecd/trust"
)

// CredentialInitrd is where a node keeps its own credential for the
// cloner, relative to its boot directory: an extra initramfs holding
// trust.CredentialFile (trust.CredentialsInitrd), which the ramclone entry
// loads after clonecd/initrd.img. The cloner's initrd.img is the same on
// every node; this file is the node's own (0600).
const CredentialInitrd = "clonecd/credential.img"

// WriteCredential writes c as bootDir's CredentialInitrd (0600; the
// directory 0700 if it is made), replacing it atomically. `clonecd
// ramclone --credential -` does it with what reclone sends over ssh, and
// the clone's bootloader step with the cloner's own credential.
func WriteCredential(bootDir string, c trust.Credential) error {
	b, err := trust.CredentialsInitrd(trust.CredentialFile, c)
	if err != nil {
		return err
	}
	p := filepath.Join(bootDir, filepath.FromSlash(CredentialInitrd))
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return err
	}
	return atomicfile.WriteFile(p, b, 0o600)
}
