package vm

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Disk is a raw disk image attached to the guest.
type Disk struct {
	Path   string
	Bus    string // virtio (default), ide, ahci, nvme, usb
	Serial string // optional drive serial
}

// Options describes one QEMU run.
type Options struct {
	Name   string // for logs
	UEFI   bool   // OVMF instead of SeaBIOS
	CDROM  string // ISO on the IDE CD drive
	Disks  []Disk
	MemMB  int    // default 1024
	CPUs   int    // default 1
	NIC    string // e1000 (default), virtio-net-pci, rtl8139, none
	Net    string // extra -netdev user options, e.g. "hostfwd=tcp:127.0.0.1:2222-:22"
	Kernel string // direct kernel boot
	Initrd string
	Append string
	Boot   string // -boot order, e.g. "d" for CD (then the CD has bootindex 0, for OVMF too), "c" for disk
	Reboot bool   // let the guest reboot (default: -no-reboot, QEMU exits)
	Extra  []string
	Log    io.Writer // copy of the serial console (e.g. a file or os.Stderr)
	// Netns runs QEMU in that network namespace (ip netns exec): the
	// user network's connections leave from there, so a guest reaches
	// the namespace's addresses and what they route to, and nothing of
	// the host's own namespace but through it.
	Netns string
}

// VM is a running QEMU.
type VM struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	mu     sync.Mutex
	out    bytes.Buffer
	cursor int
	notify chan struct{}
	done   chan struct{}
	err    error
	name   string
	slot   *os.File
}

// OVMF is the UEFI firmware image.
const OVMF = "/usr/share/ovmf/OVMF.fd"

// Args returns QEMU's command line for o.
func Args(o Options) []string {
	mem := o.MemMB
	if mem == 0 {
		mem = 1024
	}
	cpus := o.CPUs
	if cpus == 0 {
		cpus = 1
	}
	a := []string{"-accel", "tcg", "-cpu", "max", "-m", strconv.Itoa(mem), "-smp", strconv.Itoa(cpus),
		"-device", "virtio-rng-pci", "-display", "none", "-vga", "none", "-monitor", "none",
		"-serial", "stdio"}
	if !o.Reboot {
		a = append(a, "-no-reboot")
	}
	if o.UEFI {
		a = append(a, "-bios", OVMF)
	}
	switch {
	case o.CDROM != "" && strings.HasPrefix(o.Boot, "d"):
		// CD first: OVMF ignores -boot's order and follows bootindex, so a
		// disk that boots would win over the CD
		a = append(a, "-drive", "file="+o.CDROM+",if=none,id=cd0,media=cdrom,readonly=on,format=raw",
			"-device", "ide-cd,drive=cd0,bus=ide.1,unit=0,bootindex=0")
	case o.CDROM != "":
		a = append(a, "-drive", "file="+o.CDROM+",media=cdrom,if=ide,index=2,readonly=on,format=raw")
	}
	for i, d := range o.Disks {
		id := fmt.Sprintf("disk%d", i)
		ser := ""
		if d.Serial != "" {
			ser = ",serial=" + d.Serial
		}
		switch d.Bus {
		case "", "virtio":
			a = append(a, "-drive", "file="+d.Path+",format=raw,if=virtio"+ser)
		case "ide":
			a = append(a, "-drive", fmt.Sprintf("file=%s,format=raw,if=ide,index=%d%s", d.Path, i, ser))
		case "ahci":
			a = append(a, "-device", "ahci,id=ahci"+strconv.Itoa(i),
				"-drive", "id="+id+",file="+d.Path+",format=raw,if=none",
				"-device", "ide-hd,drive="+id+",bus=ahci"+strconv.Itoa(i)+".0"+ser)
		case "nvme":
			if ser == "" {
				ser = ",serial=clonecd" + strconv.Itoa(i)
			}
			a = append(a, "-drive", "id="+id+",file="+d.Path+",format=raw,if=none",
				"-device", "nvme,drive="+id+ser)
		case "usb":
			a = append(a, "-device", "qemu-xhci,id=xhci"+strconv.Itoa(i),
				"-drive", "id="+id+",file="+d.Path+",format=raw,if=none",
				"-device", "usb-storage,bus=xhci"+strconv.Itoa(i)+".0,drive="+id+",removable=on")
		default:
			panic("vm: unknown bus " + d.Bus)
		}
	}
	switch o.NIC {
	case "none":
		a = append(a, "-nic", "none")
	default:
		model := o.NIC
		if model == "" {
			model = "e1000"
		}
		net := "user,id=n0"
		if o.Net != "" {
			net += "," + o.Net
		}
		a = append(a, "-netdev", net, "-device", model+",netdev=n0")
	}
	if o.Kernel != "" {
		a = append(a, "-kernel", o.Kernel)
		if o.Initrd != "" {
			a = append(a, "-initrd", o.Initrd)
		}
		if o.Append != "" {
			a = append(a, "-append", o.Append)
		}
	}
	if o.Boot != "" {
		a = append(a, "-boot", o.Boot)
	}
	return append(a, o.Extra...)
}

// Start boots a VM. The caller must Kill or Wait for it.
func Start(o Options) (*VM, error) {
	queued := time.Now()
	slot, err := acquire()
	if err != nil {
		return nil, fmt.Errorf("vm %s: waiting for a VM slot: %w", o.Name, err)
	}
	started := time.Now()
	cmd := exec.Command("qemu-system-x86_64", Args(o)...)
	if o.Netns != "" { // ip execs QEMU: the process killed is QEMU
		cmd = exec.Command("ip", append([]string{"netns", "exec", o.Netns, "qemu-system-x86_64"}, Args(o)...)...)
	}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		slot.Close()
		return nil, err
	}
	v := &VM{cmd: cmd, stdin: stdin, notify: make(chan struct{}, 1), done: make(chan struct{}), name: o.Name, slot: slot}
	pr, pw := io.Pipe()
	cmd.Stdout = pw
	cmd.Stderr = pw
	if err := cmd.Start(); err != nil {
		slot.Close()
		return nil, fmt.Errorf("starting qemu: %w", err)
	}
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := pr.Read(buf)
			if n > 0 {
				v.mu.Lock()
				v.out.Write(buf[:n])
				v.mu.Unlock()
				if o.Log != nil {
					o.Log.Write(buf[:n])
				}
				select {
				case v.notify <- struct{}{}:
				default:
				}
			}
			if err != nil {
				return
			}
		}
	}()
	go func() {
		v.err = cmd.Wait()
		v.slot.Close()
		account(o.Name, started.Sub(queued), time.Since(started))
		pw.Close()
		close(v.done)
		select {
		case v.notify <- struct{}{}:
		default:
		}
	}()
	return v, nil
}

// Expect waits until the console shows a match for pattern (a regexp) after
// the previous match, and returns the matched text. It fails when QEMU
// exits first or the timeout passes, quoting the console's tail.
func (v *VM) Expect(pattern string, timeout time.Duration) (string, error) {
	re, err := regexp.Compile(pattern)
	if err != nil {
		return "", err
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	for {
		v.mu.Lock()
		b := v.out.Bytes()[v.cursor:]
		if loc := re.FindIndex(b); loc != nil {
			m := string(b[loc[0]:loc[1]])
			v.cursor += loc[1]
			v.mu.Unlock()
			return m, nil
		}
		v.mu.Unlock()
		select {
		case <-v.notify:
		case <-v.done:
			// one last look at what arrived before the exit
			v.mu.Lock()
			b := v.out.Bytes()[v.cursor:]
			loc := re.FindIndex(b)
			if loc != nil {
				m := string(b[loc[0]:loc[1]])
				v.cursor += loc[1]
				v.mu.Unlock()
				return m, nil
			}
			v.mu.Unlock()
			return "", fmt.Errorf("vm %s: qemu exited (%v) before %q; console tail:\n%s", v.name, v.err, pattern, v.Tail(40))
		case <-ctx.Done():
			return "", fmt.Errorf("vm %s: no %q within %s; console tail:\n%s", v.name, pattern, timeout, v.Tail(40))
		}
	}
}

// Send types s on the serial console.
func (v *VM) Send(s string) error {
	_, err := io.WriteString(v.stdin, s)
	return err
}

// Output is everything the console printed so far.
func (v *VM) Output() string {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.out.String()
}

// Tail is the console's last n lines.
func (v *VM) Tail(n int) string {
	lines := strings.Split(strings.TrimRight(v.Output(), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// Wait waits for QEMU to exit (e.g. the guest powered off) up to timeout.
func (v *VM) Wait(timeout time.Duration) error {
	select {
	case <-v.done:
		var ee *exec.ExitError
		if errors.As(v.err, &ee) {
			return fmt.Errorf("vm %s: qemu: %v", v.name, v.err)
		}
		return v.err
	case <-time.After(timeout):
		return fmt.Errorf("vm %s: still running after %s; console tail:\n%s", v.name, timeout, v.Tail(40))
	}
}

// Exited reports whether QEMU has exited.
func (v *VM) Exited() bool {
	select {
	case <-v.done:
		return true
	default:
		return false
	}
}

// Kill stops QEMU at once (a power cut) and waits for it.
func (v *VM) Kill() {
	if v.cmd.Process != nil {
		v.cmd.Process.Signal(os.Kill)
	}
	<-v.done
}

// account appends a line to $CLONECD_VM_LOG (make test sets it to
// build/vm.log): the VM's name, how long it waited for a slot and how long
// it ran, what make test's wall time is made of.
func account(name string, waited, ran time.Duration) {
	p := os.Getenv("CLONECD_VM_LOG")
	if p == "" {
		return
	}
	f, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return
	}
	defer f.Close()
	fmt.Fprintf(f, "%s %s waited %.0fs ran %.0fs\n", time.Now().UTC().Format(time.TimeOnly), name, waited.Seconds(), ran.Seconds())
}
