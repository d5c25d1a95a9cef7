package vm

import (
	"fmt"
	"os"
	"strconv"
	"time"

	"golang.org/x/sys/unix"
)

// Slots is how many VMs may run at once on this machine, across all test
// binaries (CLONECD_VM_SLOTS, default 2: one per core).
func Slots() int {
	if n, err := strconv.Atoi(os.Getenv("CLONECD_VM_SLOTS")); err == nil && n > 0 {
		return n
	}
	return 2
}

// acquire takes one of the machine-wide VM slots (flock'd files in the
// temp dir), waiting while all are busy. The slot is released when the
// returned file is closed or the process dies.
func acquire() (*os.File, error) {
	for {
		for i := 0; i < Slots(); i++ {
			p := fmt.Sprintf("%s/clonecd-vm-slot-%d.lock", os.TempDir(), i)
			f, err := os.OpenFile(p, os.O_CREATE|os.O_RDWR, 0o666)
			if err != nil {
				return nil, err
			}
			if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err == nil {
				return f, nil
			}
			f.Close()
		}
		time.Sleep(250 * time.Millisecond)
	}
}
