package partition

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

func ioctlPtr(f *os.File, req uint, p *uint64) error {
	_, _, e := unix.Syscall(unix.SYS_IOCTL, f.Fd(), uintptr(req), uintptr(unsafe.Pointer(p)))
	if e != 0 {
		return e
	}
	return nil
}

const (
	ioctlBLKPG = 0x1269
	blkpgAdd   = 1
	blkpgDel   = 2
)

type blkpgPartition struct {
	start   int64
	length  int64
	pno     int32
	devname [64]byte
	volname [64]byte
	_       [4]byte
}

type blkpgIoctlArg struct {
	op      int32
	flags   int32
	datalen int32
	_       [4]byte
	data    uintptr
}

func blkpg(f *os.File, op int32, pno int, start, length int64) error {
	p := blkpgPartition{start: start, length: length, pno: int32(pno)}
	a := blkpgIoctlArg{op: op, datalen: int32(unsafe.Sizeof(p)), data: uintptr(unsafe.Pointer(&p))}
	_, _, e := unix.Syscall(unix.SYS_IOCTL, f.Fd(), ioctlBLKPG, uintptr(unsafe.Pointer(&a)))
	if e != 0 {
		return e
	}
	return nil
}

// kernelParts lists the partition numbers the kernel knows for a disk.
func kernelParts(sysfs string) map[int]bool {
	out := map[int]bool{}
	ents, _ := os.ReadDir(sysfs)
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(sysfs, e.Name(), "partition"))
		if err != nil {
			continue
		}
		if n, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
			out[n] = true
		}
	}
	return out
}

// reread makes the kernel see the new table: BLKRRPART, and when that is
// refused or does not show the partitions (loop devices without partscan),
// BLKPG deletes the old and adds the new partitions as `partx` does.
func (d *disk) reread(l *Layout) error {
	if !d.block {
		return nil
	}
	if err := d.f.Sync(); err != nil {
		return fmt.Errorf("%s: sync: %w", d.path, err)
	}
	rrErr := unix.IoctlSetInt(int(d.f.Fd()), unix.BLKRRPART, 0)
	want := map[int]bool{}
	for _, p := range l.Parts {
		want[p.Number] = true
	}
	have := kernelParts(d.sysfs)
	if rrErr == nil && sameSet(have, want) {
		return nil
	}
	for n := range have {
		if err := blkpg(d.f, blkpgDel, n, 0, 0); err != nil {
			return fmt.Errorf("%s: removing old partition %d from the kernel (BLKPG): %w (re-read: %v)", d.path, n, err, rrErr)
		}
	}
	ss := int64(d.ss)
	for _, p := range l.Parts {
		length := int64(p.Size) * ss
		if l.Label == "dos" && IsExtended(p.Type) {
			length = 1024
			if ss > 1024 {
				length = ss
			}
		}
		if err := blkpg(d.f, blkpgAdd, p.Number, int64(p.Start)*ss, length); err != nil {
			return fmt.Errorf("%s: adding partition %d to the kernel (BLKPG): %w", d.path, p.Number, err)
		}
	}
	// devtmpfs creates the nodes asynchronously.
	for i := 0; i < 50; i++ {
		missing := false
		for _, p := range l.Parts {
			if _, err := os.Stat(PartDevice(d.path, p.Number)); err != nil {
				missing = true
			}
		}
		if !missing {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	return nil
}

func sameSet(a, b map[int]bool) bool {
	if len(a) != len(b) {
		return false
	}
	for k := range a {
		if !b[k] {
			return false
		}
	}
	return true
}
