package netboot

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"strings"

	"github.com/clonecd/clonecd/netclone"
	"github.com/clonecd/clonecd/trust"
)

// The kernel command line keys of the server's pin and of a node's
// credential (for a node that has none in its initramfs: typed at the
// boot prompt; it shows on the console and in /proc/cmdline of the
// cloner, nowhere else).
const (
	PinArg        = "clonecd.tls-pin"
	CredentialArg = "clonecd.credential"
)

// Credentials are the credentials the cloner found, and where.
type Credentials struct {
	Creds []trust.Credential
	From  string // what they came from, for the log
	Table bool   // a table of several nodes (a CD's): the node picks its own
}

// FindAccess returns the server's pin as TLS settings (clonecd.tls-pin=;
// none: the system's roots, which a cloner does not have) and the
// credentials the cloner has, looked for in this order: clonecd.credential=
// on the kernel command line, root's trust.CredentialFile (the ramclone
// entry's credential.img), root's trust.CredentialsFile (a CD's
// credentials.img). None found is not an error: the server then answers
// 401, which says what is missing.
func FindAccess(cmdline map[string]string, root string) (netclone.Access, Credentials, error) {
	var a netclone.Access
	if pin := cmdline[PinArg]; pin != "" {
		cfg, err := trust.ClientTLSConfig(pin, "")
		if err != nil {
			return a, Credentials{}, fmt.Errorf("%s=: %w", PinArg, err)
		}
		a.TLS = cfg
	}
	if c := cmdline[CredentialArg]; c != "" {
		cred, err := trust.ParseCredential(c)
		if err != nil {
			return a, Credentials{}, fmt.Errorf("%s=: %w", CredentialArg, err)
		}
		return a, Credentials{Creds: []trust.Credential{cred}, From: "the kernel command line (" + CredentialArg + "=)"}, nil
	}
	one := filepath.Join(root, trust.CredentialFile)
	cred, err := trust.LoadCredential(one)
	if err == nil {
		return a, Credentials{Creds: []trust.Credential{cred}, From: trust.CredentialFile}, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return a, Credentials{}, err
	}
	table := filepath.Join(root, trust.CredentialsFile)
	creds, err := trust.LoadCredentials(table)
	if err == nil {
		return a, Credentials{Creds: creds, From: trust.CredentialsFile, Table: true}, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return a, Credentials{}, err
	}
	return a, Credentials{}, nil
}

// For returns the credential the node uses: its own from a table, else
// the one it has (the server knows the node by it, whatever the node's
// name). A table without the node is an error that says what to do.
func (c Credentials) For(node string) (trust.Credential, error) {
	if len(c.Creds) == 0 {
		return trust.Credential{}, nil
	}
	if !c.Table {
		return c.Creds[0], nil
	}
	if cred, ok := trust.FindCredential(c.Creds, node); ok {
		return cred, nil
	}
	names := make([]string, 0, 3)
	for _, cr := range c.Creds[:min(len(c.Creds), 3)] {
		names = append(names, cr.User)
	}
	return trust.Credential{}, fmt.Errorf("node %s has no credential in %s (it has %s...): boot it with %s=%s:TOKEN (clonecd token %s on the master), or build the CD with it in --nodes",
		node, c.From, strings.Join(names, ", "), CredentialArg, node, node)
}

// reader is a credential to read with before the node knows its name (the
// nodes table): any node may read.
func (c Credentials) reader() trust.Credential {
	if len(c.Creds) == 0 {
		return trust.Credential{}
	}
	return c.Creds[0]
}
