package cli

import (
	"context"
	"fmt"

	"github.com/clonecd/clonecd/netclone"
	"github.com/clonecd/clonecd/progress"
)

// printServed prints, for a running server, the image bytes the master
// sent and those its nodes sent each other through the swarm (serve
// --swarm): how much of the fleet's image traffic the master carried.
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
	if st.PeerBytes == nil {
		fmt.Fprintf(out.Stdout, "image bytes served: master %s (no swarm)\n", progress.Bytes(st.Bytes))
		return nil
	}
	share := ""
	if total := st.Bytes + *st.PeerBytes; total > 0 {
		share = fmt.Sprintf(" (master %.0f%%)", 100*float64(st.Bytes)/float64(total))
	}
	fmt.Fprintf(out.Stdout, "image bytes served: master %s, peers %s%s\n", progress.Bytes(st.Bytes), progress.Bytes(*st.PeerBytes), share)
	return nil
}
