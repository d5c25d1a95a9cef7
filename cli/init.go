package cli

import (
	"github.com/clonecd/clonecd/bootenv"
	"github.com/clonecd/clonecd/clone"
	"github.com/clonecd/clonecd/kmod"
	"github.com/clonecd/clonecd/netclone/netboot"
)

// The initramfs's /init is clonecd itself (PID 1 lands here too, see
// Main), and /sbin/modprobe is a link to it: the kernel's usermode helper
// for fs-*, crypto-* and other module requests.
func init() {
	RegisterMulticall("init", func(args []string) int { return bootenv.Init(bootCloner) })
	RegisterMulticall("modprobe", func(args []string) int { return kmod.Modprobe(args, Stderr) })
}

// bootCloner is what /init runs in cd and net mode: the clone, with the
// network cloner's opener for clonecd.mode=net.
func bootCloner(env *bootenv.Env) error {
	return clone.Boot(env, clone.BootOptions{NetMedia: netboot.Open})
}
