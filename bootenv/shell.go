package bootenv

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
	"mvdan.cc/sh/v3/interp"
	"mvdan.cc/sh/v3/syntax"
)

// ShellPath is the rescue shell (busybox's ash in the initramfs).
var ShellPath = "/bin/sh"

func shellEnv(reason string) []string {
	return []string{
		"PATH=/sbin:/bin:/usr/sbin:/usr/bin", "HOME=/root", "TERM=linux", "ENV=/etc/profile",
		"PS1=clonecd rescue:\\w# ", "CLONECD_REASON=" + reason,
	}
}

// Shell opens the rescue shell on every console, says why and how to go
// on (the log is /tmp/clone.log; `clonecd clone` retries), and returns
// when one of them exits. Without /bin/sh it runs clonecd's embedded shell
// on the first console.
func Shell(env *Env, reason string) error {
	consoles := []string{"/dev/console"}
	var log io.Writer = os.Stderr
	if env != nil {
		if len(env.Consoles) > 0 {
			consoles = env.Consoles
		}
		if env.Log != nil {
			log = env.Log
		}
	}
	fmt.Fprintf(log, "\nclonecd: %s\nclonecd: rescue shell: the log is %s; retry with `clonecd clone`; `exit` leaves the shell; `poweroff -f` or `reboot -f` end it all\n", reason, LogPath)
	if _, err := os.Stat(ShellPath); err != nil {
		return embeddedShell(consoles[0], reason)
	}
	type done struct {
		err error
	}
	ch := make(chan done, len(consoles))
	var cmds []*exec.Cmd
	for _, c := range consoles {
		tty, err := os.OpenFile(c, os.O_RDWR, 0)
		if err != nil {
			fmt.Fprintf(log, "clonecd: shell on %s: %v\n", c, err)
			continue
		}
		cmd := exec.Command(ShellPath)
		cmd.Stdin, cmd.Stdout, cmd.Stderr = tty, tty, tty
		cmd.Env = shellEnv(reason)
		cmd.Dir = "/"
		// A session of its own with the console as controlling tty
		// gives job control and Ctrl-C.
		cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
		if c == "/dev/console" {
			cmd.SysProcAttr.Setctty = false
		}
		err = cmd.Start()
		if err != nil && cmd.SysProcAttr.Setctty {
			// The tty is some other session's: no job control then.
			cmd = exec.Command(ShellPath)
			cmd.Stdin, cmd.Stdout, cmd.Stderr = tty, tty, tty
			cmd.Env = shellEnv(reason)
			cmd.Dir = "/"
			cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
			err = cmd.Start()
		}
		if err != nil {
			tty.Close()
			fmt.Fprintf(log, "clonecd: shell on %s: %v\n", c, err)
			continue
		}
		cmds = append(cmds, cmd)
		go func(cmd *exec.Cmd, tty *os.File) {
			err := cmd.Wait()
			tty.Close()
			ch <- done{err}
		}(cmd, tty)
	}
	if len(cmds) == 0 {
		return embeddedShell(consoles[0], reason)
	}
	d := <-ch
	for _, c := range cmds {
		if c.ProcessState == nil {
			c.Process.Signal(unix.SIGKILL)
		}
	}
	for i := 1; i < len(cmds); i++ {
		<-ch
	}
	if d.err != nil {
		if _, ok := d.err.(*exec.ExitError); ok {
			return nil // the shell's own exit status
		}
		return fmt.Errorf("rescue shell: %w", d.err)
	}
	return nil
}

// embeddedShell is a small interactive POSIX shell (mvdan.cc/sh) for
// initramfs images without busybox.
func embeddedShell(console, reason string) error {
	tty, err := os.OpenFile(console, os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("rescue shell on %s: %w", console, err)
	}
	defer tty.Close()
	r, err := interp.New(interp.StdIO(tty, tty, tty), interp.Env(nil), interp.Interactive(true))
	if err != nil {
		return err
	}
	for _, kv := range shellEnv(reason) {
		k, v, _ := strings.Cut(kv, "=")
		os.Setenv(k, v)
	}
	r.Reset()
	parser := syntax.NewParser()
	in := bufio.NewReader(tty)
	fmt.Fprintln(tty, "clonecd: embedded shell (no busybox): POSIX shell, external programs from PATH")
	for {
		dir := r.Dir
		fmt.Fprintf(tty, "clonecd rescue:%s# ", dir)
		line, err := in.ReadString('\n')
		if strings.TrimSpace(line) != "" {
			prog, perr := parser.Parse(strings.NewReader(line), "")
			if perr != nil {
				fmt.Fprintln(tty, perr)
			} else if rerr := r.Run(context.Background(), prog); rerr != nil && r.Exited() {
				return nil
			}
			if r.Exited() {
				return nil
			}
		}
		if err != nil {
			return nil
		}
	}
}
