package netboot

import (
	"fmt"
	"time"

	"github.com/clonecd/clonecd/netclone"
)

// The kernel arguments of the swarm.
const (
	// SwarmArg=1 takes the image from the swarm when the server runs one
	// (serve --swarm) and the version has a torrent; absent, 0 or off:
	// over HTTP.
	SwarmArg = "clonecd.swarm"
	// SeedArg=DURATION keeps seeding the image to the other nodes once
	// it is here, while the server says nodes still need it, at most
	// this long (the clone waits meanwhile); absent: not at all.
	SeedArg = "clonecd.seed"
)

// SwarmOptions are the swarm settings of the kernel command line; nil
// without clonecd.swarm=1. The image streams through the initramfs's
// /tmp (its tmpfs: the image's size in RAM).
func SwarmOptions(cmdline map[string]string) (*netclone.SwarmOptions, error) {
	switch v := cmdline[SwarmArg]; v {
	case "", "0", "off", "no":
		return nil, nil
	case "1", "on", "yes":
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
