package swarm_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/clonecd/clonecd/swarm"
)

// The master makes the torrent at publish and seeds the image; a node
// that trusts the infohash (from the signed manifest) streams the image
// from the swarm into its unpacker.
func ExampleOpen() {
	dir, _ := os.MkdirTemp("", "swarm-example-")
	defer os.RemoveAll(dir)
	image := filepath.Join(dir, "node.cpio.gz")
	os.WriteFile(image, bytes.Repeat([]byte("clonecd "), 1<<17), 0o600) // 1 MiB

	// Publish: node.torrent, and the manifest's btih line.
	tor, _ := swarm.MakeTorrentFile(image, swarm.MakeOptions{})
	btih := tor.InfoHash

	// Serve: the master seeds (and would hand its address out through a Tracker).
	seeder, err := swarm.NewSeeder(context.Background(), tor, image, swarm.Options{Listen: "127.0.0.1:0"})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer seeder.Close()

	// The node: node.torrent checked against the manifest's infohash.
	nodeTor, err := swarm.ParseTorrent(tor.Bytes, btih)
	if err != nil {
		fmt.Println(err)
		return
	}
	node, err := swarm.Open(nodeTor, swarm.Options{Dir: filepath.Join(dir, "node"), Listen: "127.0.0.1:0", Peers: []string{seeder.Addr()}})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer node.Close()
	r := node.Reader(context.Background())
	n, err := io.Copy(io.Discard, r) // the unpacker reads here
	r.Close()
	fmt.Println(n, err, node.Complete())
	// Output: 1048576 <nil> true
}
