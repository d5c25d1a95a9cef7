package cli

import (
	"github.com/spf13/pflag"

	"github.com/clonecd/clonecd/versions"
)

const storeHelp = `The image store (default /root/clone_image, or $CLONECD_STORE; --dir) is
what clonecd serve serves: DIR/versions/V/ holds each version's
node.cpio.gz, node.cpio.gz.sha256, node.sfdisk, CLONE_CD_VERSION, its
MANIFEST and, signed, MANIFEST.minisig (files 0600, directories 0700);
DIR/current points at the current one and DIR/node.cpio.gz etc. are
aliases of current's files, so the Medusa path /root/clone_image/node.cpio.gz
still works. A Medusa-style directory with a plain node.cpio.gz is adopted
as a version on first use. Only prune deletes.`

// storeFlag defines --dir, the image store.
func storeFlag(fs *pflag.FlagSet, p *string) {
	fs.StringVar(p, "dir", versions.DefaultDir(), "image store `DIR` ($CLONECD_STORE)")
}

// storeEntry is a version as images, publish and prune print it with
// --json.
type storeEntry struct {
	versions.Entry
	Current bool     `json:"current"`
	Dir     string   `json:"dir"`
	Nodes   []string `json:"nodes"`
	Signed  bool     `json:"signed"`
	KeyID   string   `json:"key_id,omitempty"` // the key of MANIFEST.minisig
}

func storeEntries(list []versions.Entry) []storeEntry {
	rows := []storeEntry{}
	for _, e := range list {
		rows = append(rows, storeEntry{e, e.Current, e.Dir, nonNil(e.Nodes), e.Signed, e.KeyID})
	}
	return rows
}
