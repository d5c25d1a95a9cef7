package cli

import (
	"github.com/clonecd/clonecd/bootenv"
	"github.com/clonecd/clonecd/clone"
	"github.com/clonecd/clonecd/kmod"
	"github.com/clonecd/clonecd/netclone/netboot"
)

// multicall returns the program clonecd is when started as name
// (argv[0]'s base name), or nil. The initramfs's /init is clonecd itself
// (PID 1 lands here too, see Run), and /sbin/modprobe is a link to it:
// the kernel's usermode helper for fs-*, crypto-* and other module
// requests.
func multicall(name string) func(argv []string, out Output) int {
	switch name {
	case "init":
		return runInit
	case "modprobe":
		return runModprobe
	}
	return nil
}

func runInit(argv []string, out Output) int { return bootenv.Init(bootCloner) }

// bootCloner is what /init runs in cd and net mode: the clone, with the
// network cloner's opener for clonecd.mode=net.
func bootCloner(env *bootenv.Env) error {
	return clone.Boot(env, clone.BootOptions{NetMedia: netboot.Open})
}

func runModprobe(argv []string, out Output) int { return kmod.Modprobe(argv, out.Stderr) }
