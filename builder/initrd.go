package builder

import (
	"fmt"
	"os"

	"github.com/clonecd/clonecd/initramfs"
	"github.com/clonecd/clonecd/progress"
)

// InitrdOptions are passed through to the initramfs build.
type InitrdOptions struct {
	Modules     string   // module tree (default: Root's /lib/modules/KVER, else the host's)
	Firmware    string   // firmware tree
	AddModules  []string // extra modules
	OmitModules []string // modules left out
	NoFirmware  bool
}

// InitrdSummary describes the initramfs on the ISO.
type InitrdSummary struct {
	Compressed int64 // bytes of initrd.img
	Modules    int
	Firmware   int
	Programs   int
	Prebuilt   bool // given with --initrd
}

// makeInitrd builds the initramfs at p for kernel kver with the
// initramfs package: clonecd as /init, the modules of kver (from the golden
// root when given, else the build host), their firmware, helper programs,
// and trusted (initramfs.Options.ExtraFiles: the trusted public keys).
func makeInitrd(o Options, kver, p string, trusted map[string]string) (InitrdSummary, error) {
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return InitrdSummary{}, err
	}
	io := initramfs.Options{
		Clonecd:       o.Clonecd,
		KernelVersion: kver,
		Golden:        o.Root,
		Root:          o.Root,
		Modules:       o.Initramfs.Modules,
		Firmware:      o.Initramfs.Firmware,
		AddModules:    o.Initramfs.AddModules,
		OmitModules:   o.Initramfs.OmitModules,
		NoFirmware:    o.Initramfs.NoFirmware,
		ExtraFiles:    trusted,
		Progress:      progress.New(o.Log, "build: initramfs", 0, o.Quiet),
	}
	s, err := initramfs.Build(f, io)
	if cerr := f.Close(); err == nil && cerr != nil {
		err = cerr
	}
	if err != nil {
		return InitrdSummary{}, err
	}
	if s.KernelVersion != "" && s.ModulesDir != "" && s.KernelVersion != kver {
		return InitrdSummary{}, fmt.Errorf("modules are for kernel %s but the kernel is %s", s.KernelVersion, kver)
	}
	return InitrdSummary{Compressed: s.Compressed, Modules: s.Modules, Firmware: s.Firmware, Programs: len(s.Programs)}, nil
}
