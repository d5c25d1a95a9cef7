package cli

import (
	"github.com/clonecd/clonecd/bootenv"
	"github.com/clonecd/clonecd/clone"
	"github.com/clonecd/clonecd/kmod"
)

// The initramfs's /init is clonecd itself (PID 1 lands here too, see
// Main), and /sbin/modprobe is a link to it: the kernel's usermode helper
// for fs-*, crypto-* and other module requests.
func init() {
	RegisterMulticall("init", func(args []string) int { return bootenv.Init(clone.Boot) })
	RegisterMulticall("modprobe", func(args []string) int { return kmod.Modprobe(args, Stderr) })
}
