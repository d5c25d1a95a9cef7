package netclone

import (
	"testing"

	"github.com/clonecd/clonecd/fleet"
	"github.com/clonecd/clonecd/versions"
)

// openStore opens the image store in dir (a flat directory or a store).
func openStore(t testing.TB, dir string) *versions.Store {
	t.Helper()
	s, err := versions.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// newServer serves the image store in dir with at most streams streams.
func newServer(t testing.TB, dir string, streams int) *Server {
	return NewServer(openStore(t, dir), ServerOptions{MaxStreams: streams})
}

// nodesOf is the node store of the image store in dir.
func nodesOf(dir string) *fleet.Store {
	s, _ := versions.Open(dir)
	return s.Nodes(fleet.Limits{})
}

func readState(dir, node string) (fleet.State, error) { return nodesOf(dir).Get(node) }

func writeState(dir string, st fleet.State) (fleet.State, error) { return nodesOf(dir).Update(st) }
