// Command static uses package swarm; TestStaticBuild builds it with CGO
// off and checks the binary is statically linked, as clonecd must be.
package main

import (
	"fmt"
	"os"
	"strings"

	"github.com/clonecd/clonecd/swarm"
)

func main() {
	t, err := swarm.MakeTorrent(strings.NewReader("x"), 1, swarm.MakeOptions{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	n, err := swarm.Open(t, swarm.Options{Dir: os.TempDir(), Listen: "127.0.0.1:0"})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	n.Close()
	fmt.Println(t.InfoHash)
}
