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
// returned file is closed or the process dies. Waiters line up on a queue
// lock first, so a test that frees a slot and at once starts its next VM
// cannot keep a slot from tests that waited longer.
func acquire() (*os.File, error) {
	q, err := os.OpenFile(os.TempDir()+"/clonecd-vm-queue.lock", os.O_CREATE|os.O_RDWR, 0o666)
	if err != nil {
		return nil, err
	}
	defer q.Close()
	if err := unix.Flock(int(q.Fd()), unix.LOCK_EX); err != nil {
		return nil, fmt.Errorf("vm queue lock: %w", err)
	}
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
