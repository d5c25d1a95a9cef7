package cli

import (
	"context"
	"fmt"

	"github.com/clonecd/clonecd/netclone"
	"github.com/clonecd/clonecd/progress"
)

// printServed prints, for a running server, the image bytes the master
// sent and those its nodes sent each other through the swarm (serve
// --swarm): how much of the fleet's image traffic the master carried, in
// total, then per version that has bytes (newest first, as the server
// lists them).
func printServed(ctx context.Context, out Output, src netclone.StateSource) error {
	s, ok := src.(interface {
		Streams(context.Context) (*netclone.StreamsView, error)
	})
	if !ok {
		return nil
	}
	st, err := s.Streams(ctx)
	if err != nil {
		return err
	}
	total := servedBytes(st.Bytes, st.PeerBytes)
	if st.PeerBytes == nil {
		total += " (no swarm)"
	}
	fmt.Fprintf(out.Stdout, "image bytes served: %s\n", total)
	for _, v := range st.Versions {
		fmt.Fprintf(out.Stdout, "  %s: %s\n", printable(v.Version), servedBytes(v.Bytes, v.PeerBytes))
	}
	return nil
}

// servedBytes says the master's bytes and, with a swarm (peers not nil),
// the peers' and the master's share.
func servedBytes(master int64, peers *int64) string {
	if peers == nil {
		return "master " + progress.Bytes(master)
	}
	share := ""
	if total := master + *peers; total > 0 {
		share = fmt.Sprintf(" (master %.0f%%)", 100*float64(master)/float64(total))
	}
	return fmt.Sprintf("master %s, peers %s%s", progress.Bytes(master), progress.Bytes(*peers), share)
}
