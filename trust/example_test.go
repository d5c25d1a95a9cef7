package trust_test

import (
	"fmt"
	"os"
	"path/filepath"
	"testing/fstest"
	"time"

	"github.com/clonecd/clonecd/medium"
	"github.com/clonecd/clonecd/trust"
)

// The master signs a version's manifest; the cloner, which trusts the
// master's public key, reads the medium and checks each file before use.
func Example() {
	dir, _ := os.MkdirTemp("", "trust-example-")
	defer os.RemoveAll(dir)

	// The master: clonecd key generate, then publish --key.
	key, _ := trust.GenerateKey(filepath.Join(dir, "clonecd.key"))
	layout := []byte("label: dos\n")
	m := &medium.Manifest{Version: "1.20", Date: time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)}
	m.Add(medium.File{Name: medium.Layout, Size: int64(len(layout)),
		SHA256: "4148856e6c99fb4a3e325c1c82b1fb953428c890d4fa3719fc5c43a91e32795c"})
	text, _ := m.Marshal()
	sig, _ := trust.Sign(text, key)
	fsys := fstest.MapFS{
		medium.Version:       {Data: []byte("1.20\n")},
		medium.ManifestFile:  {Data: text},
		medium.SignatureFile: {Data: sig},
		medium.Layout:        {Data: layout},
	}

	// The cloner: build --trust clonecd.key.pub put the key in TrustDir.
	v, _ := trust.LoadVerifier(filepath.Join(dir, "clonecd.key"+trust.PubSuffix))
	got, status, err := v.ReadManifest(fsys)
	fmt.Println(got.Version, status.Signed, err)
	b, err := trust.ReadFile(fsys, got, medium.Layout)
	fmt.Printf("%q %v\n", b, err)

	// A layout changed after signing is refused before it is used.
	fsys[medium.Layout] = &fstest.MapFile{Data: []byte("label: gpt\n")}
	_, err = trust.ReadFile(fsys, got, medium.Layout)
	fmt.Println(err)

	// Without a trusted key the same medium is read UNSIGNED.
	_, status, _ = (*trust.Verifier)(nil).ReadManifest(fsys)
	fmt.Println(status)
	// Output:
	// 1.20 true <nil>
	// "label: dos\n" <nil>
	// node.sfdisk: sha256 f13c9596024c297edf94b792e0613b41fb8cc16b6534072a0c78399f47ac1030, the manifest says 4148856e6c99fb4a3e325c1c82b1fb953428c890d4fa3719fc5c43a91e32795c
	// UNSIGNED
}

func ExampleParsePublicKey() {
	k, err := trust.ParsePublicKey([]byte("untrusted comment: minisign public key 6D25424143BBD4E\n"+
		"RWROvTsUJFTSBhgX2bjxITGvNRnPX8+Wo44mlAcSVN2ENwpIz9Hozrxh\n"), "clonecd.key.pub")
	fmt.Println(k.ID(), k.FileName(), err)
	// Output: 6D25424143BBD4E 6D25424143BBD4E.pub <nil>
}
