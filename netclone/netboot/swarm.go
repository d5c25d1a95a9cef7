package netboot

import (
	"fmt"
	"time"

	"github.com/clonecd/clonecd/netclone"
)

// The kernel arguments of the swarm.
const (
	// SwarmArg=0 (or off) takes the image over HTTP even when the
	// server runs a swarm; absent or 1: from the swarm when the server
	// runs one (serve --swarm), the version has a torrent and the
	// cloner's tmpfs has room for the image, else over HTTP.
	SwarmArg = "clonecd.swarm"
	// SeedArg=DURATION keeps seeding the image to the other nodes once
	// it is here, while the server says nodes still need it, at most
	// this long (the clone waits meanwhile); absent: not at all.
	SeedArg = "clonecd.seed"
)

// SwarmOptions are the swarm settings of the kernel command line; nil
// with clonecd.swarm=0. The image streams through the initramfs's /tmp
// (its tmpfs: the image's size in RAM; netclone falls back to HTTP when
// it has no room).
func SwarmOptions(cmdline map[string]string) (*netclone.SwarmOptions, error) {
	switch v, ok := cmdline[SwarmArg]; {
	case !ok, v == "", v == "1", v == "on", v == "yes": // a bare clonecd.swarm is on too
	case v == "0", v == "off", v == "no":
		return nil, nil
	default:
		return nil, fmt.Errorf("%s=%s: want 1 or 0", SwarmArg, v)
	}
	o := &netclone.SwarmOptions{}
	if v, ok := cmdline[SeedArg]; ok {
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 {
			return nil, fmt.Errorf("%s=%s: want a duration like 2m", SeedArg, v)
		}
		o.Seed = d
	}
	return o, nil
}
