package cli

import (
	"errors"
	"time"

	"github.com/spf13/pflag"

	"github.com/clonecd/clonecd/netclone"
	"github.com/clonecd/clonecd/swarm"
)

// swarmFetchFlags are fetch's swarm flags.
type swarmFetchFlags struct {
	off    bool
	on     bool // --swarm: the default, accepted for scripts written when it was not
	dir    string
	listen listenFlag
	seed   time.Duration
}

const swarmFetchHelp = `The image comes from the swarm of the nodes fetching the same version
when the server runs one (serve --swarm) and the version has a
node.torrent: each piece is checked against the torrent (whose infohash is
the manifest's) before it is written, the whole image against the sha256
as over HTTP. Without a swarm, when --swarm-dir has no room for the image,
when the swarm fails, and with --no-swarm, the image comes over HTTP. The
image sits in --swarm-dir while it streams; --seed keeps serving it to the
others afterwards while the server says nodes still need it.`

func (f *swarmFetchFlags) define(fl *pflag.FlagSet) {
	fl.BoolVar(&f.off, "no-swarm", false, "take the image over HTTP even when the server offers a swarm (BitTorrent)")
	fl.BoolVar(&f.on, "swarm", false, "take the image from the swarm when the server offers one (the default)")
	fl.MarkHidden("swarm")
	fl.StringVar(&f.dir, "swarm-dir", "", "`DIR` holding the image while it streams from the swarm (default: $TMPDIR)")
	fl.Var(&f.listen, "swarm-listen", "address other nodes reach this one on for the swarm (default: every address, a free port)")
	durationVar(fl, &f.seed, "seed", 0, 0, "when the image came from the swarm, keep serving it to the other nodes this long at most")
}

// options are the netclone settings of the flags; nil with --no-swarm.
func (f *swarmFetchFlags) options() (*netclone.SwarmOptions, error) {
	if f.off {
		if f.on || f.seed > 0 || f.dir != "" || f.listen != "" {
			return nil, errors.New("--no-swarm takes the image over HTTP: --swarm, --seed, --swarm-dir and --swarm-listen contradict it")
		}
		return nil, nil
	}
	return &netclone.SwarmOptions{Dir: f.dir, Listen: string(f.listen), Seed: f.seed}, nil
}

// fetchSwarm is fetch --json's swarm counts.
type fetchSwarm struct {
	FromPeers    int64 `json:"fromPeers"`    // image bytes from other nodes
	FromWebSeeds int64 `json:"fromWebseeds"` // image bytes from the server's (or a cache's) HTTP as the webseed
	Uploaded     int64 `json:"uploaded"`     // image bytes sent to other nodes
}

func swarmJSON(s *swarm.Stats) *fetchSwarm {
	if s == nil {
		return nil
	}
	return &fetchSwarm{FromPeers: s.FromPeers, FromWebSeeds: s.FromWebSeeds, Uploaded: s.Uploaded}
}
