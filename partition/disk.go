package partition

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// disk is an open block device or image file.
type disk struct {
	path   string
	f      *os.File
	size   int64 // bytes
	ss     int   // logical sector size
	block  bool
	grain  uint64 // bytes
	phys   uint64 // physical sector size
	sysfs  string // /sys/class/block/NAME for block devices
	writer bool
}

// openDisk opens a disk with flag (os.O_RDONLY, os.O_RDWR, with
// unix.O_EXCL for an exclusive claim of a block device).
func openDisk(path string, flag int) (*disk, error) {
	write := flag&(os.O_RDWR|os.O_WRONLY) != 0
	f, err := os.OpenFile(path, flag, 0)
	if err != nil {
		return nil, err
	}
	d := &disk{path: path, f: f, ss: 512, grain: 1 << 20, writer: write}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	if st.Mode()&os.ModeDevice != 0 && st.Mode()&os.ModeCharDevice == 0 {
		d.block = true
		var size uint64
		if err := ioctlPtr(f, unix.BLKGETSIZE64, &size); err != nil {
			f.Close()
			return nil, fmt.Errorf("%s: BLKGETSIZE64: %w", path, err)
		}
		d.size = int64(size)
		ss, err := unix.IoctlGetInt(int(f.Fd()), unix.BLKSSZGET)
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("%s: BLKSSZGET: %w", path, err)
		}
		d.ss = ss
		var sys unix.Stat_t
		if err := unix.Fstat(int(f.Fd()), &sys); err == nil {
			d.sysfs = fmt.Sprintf("/sys/dev/block/%d:%d", unix.Major(uint64(sys.Rdev)), unix.Minor(uint64(sys.Rdev)))
			// libfdisk's grain: the optimal (else minimum) I/O size, at least 1 MiB.
			io := readSysUint(filepath.Join(d.sysfs, "queue", "optimal_io_size"))
			if io == 0 {
				io = readSysUint(filepath.Join(d.sysfs, "queue", "minimum_io_size"))
			}
			if io > d.grain {
				d.grain = io
			}
			d.phys = readSysUint(filepath.Join(d.sysfs, "queue", "physical_block_size"))
		}
	} else if st.Mode().IsRegular() {
		d.size = st.Size()
	} else {
		f.Close()
		return nil, fmt.Errorf("%s: not a block device or image file", path)
	}
	if d.phys == 0 {
		d.phys = uint64(d.ss)
	}
	// libfdisk uses no huge grain on small devices.
	if d.sectors() <= d.grain*4/uint64(d.ss) {
		d.grain = d.phys
	}
	if d.size < int64(d.ss)*4 {
		f.Close()
		return nil, fmt.Errorf("%s: too small for a partition table (%d bytes)", path, d.size)
	}
	return d, nil
}

func readSysUint(p string) uint64 {
	b, err := os.ReadFile(p)
	if err != nil {
		return 0
	}
	v, _ := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
	return v
}

func (d *disk) Close() error { return d.f.Close() }

// sectors returns the disk's size in logical sectors.
func (d *disk) sectors() uint64 { return uint64(d.size) / uint64(d.ss) }

func (d *disk) readSectors(lba uint64, n int) ([]byte, error) {
	b := make([]byte, n*d.ss)
	if _, err := d.f.ReadAt(b, int64(lba)*int64(d.ss)); err != nil && err != io.EOF {
		return nil, fmt.Errorf("%s: reading sector %d: %w", d.path, lba, err)
	}
	return b, nil
}

func (d *disk) writeAt(b []byte, lba uint64) error {
	if _, err := d.f.WriteAt(b, int64(lba)*int64(d.ss)); err != nil {
		return fmt.Errorf("%s: writing sector %d: %w", d.path, lba, err)
	}
	return nil
}
