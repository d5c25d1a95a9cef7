package kickstart

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
)

// RunOptions says where and how a script runs.
type RunOptions struct {
	// Root is the new (cloned) root, mounted. A chroot script runs chrooted
	// there (prepare /proc, /sys and /dev bind mounts yourself if scripts
	// need them); a --nochroot script runs in the cloner with INSTALL_ROOT
	// and ANA_INSTALL_PATH set to Root.
	Root string
	// Env is added to the script's environment, e.g. HOSTNAME=s001.
	Env []string
	// Output receives the script's standard output and error (the clone
	// log). A --log file gets them too.
	Output io.Writer
}

// Run runs the script as anaconda does: the body is written to a
// temporary file (in Root/tmp for a chroot script) and run with the
// interpreter; output is appended to the --log file when one is given
// (inside Root unless --nochroot). A failing script returns an error
// naming its file and line; the caller decides from ErrorOnFail whether
// that stops the clone.
func (s *Script) Run(ctx context.Context, o RunOptions) error {
	if o.Root == "" {
		return fmt.Errorf("%s: %%%s: no root to run in", where(s.File, s.Line), s.Type)
	}
	dir := os.TempDir()
	if !s.NoChroot {
		dir = filepath.Join(o.Root, "tmp")
		if err := os.MkdirAll(dir, 0o1777); err != nil {
			return fmt.Errorf("%s: %w", where(s.File, s.Line), err)
		}
	}
	f, err := os.CreateTemp(dir, "ks-script-")
	if err != nil {
		return fmt.Errorf("%s: %w", where(s.File, s.Line), err)
	}
	script := f.Name()
	defer os.Remove(script)
	_, err = f.WriteString(s.Body)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(script, 0o700)
	}
	if err != nil {
		return fmt.Errorf("%s: writing the script: %w", where(s.File, s.Line), err)
	}

	interp := s.Interpreter
	env := []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/root", "TERM=dumb", "LANG=C"}
	var cmd *exec.Cmd
	if s.NoChroot {
		cmd = exec.CommandContext(ctx, interp, script)
		env = append(env, "INSTALL_ROOT="+o.Root, "ANA_INSTALL_PATH="+o.Root)
	} else {
		if _, err := os.Stat(filepath.Join(o.Root, interp)); err != nil {
			return fmt.Errorf("%s: %%%s --interpreter %s: not in the new root: %w", where(s.File, s.Line), s.Type, interp, err)
		}
		inside := "/tmp/" + filepath.Base(script)
		cmd = exec.CommandContext(ctx, interp, inside)
		// exec looks the interpreter up on the host; the chroot happens
		// before exec, so give the path as seen inside the root.
		cmd.Path = interp
		cmd.SysProcAttr = &syscall.SysProcAttr{Chroot: o.Root}
	}
	cmd.Dir = "/"
	cmd.Env = append(env, o.Env...)
	var out bytes.Buffer
	w := io.Writer(&out)
	if o.Output != nil {
		w = io.MultiWriter(&out, o.Output)
	}
	cmd.Stdout, cmd.Stderr = w, w
	runErr := cmd.Run()
	if s.Log != "" {
		logPath := s.Log
		if !s.NoChroot {
			logPath = filepath.Join(o.Root, strings.TrimPrefix(filepath.Clean("/"+s.Log), "/"))
		}
		if err := appendFile(logPath, out.Bytes()); err != nil && runErr == nil {
			return fmt.Errorf("%s: --log=%s: %w", where(s.File, s.Line), s.Log, err)
		}
	}
	if runErr != nil {
		return fmt.Errorf("%s: %%%s script (%s) failed: %w", where(s.File, s.Line), s.Type, interp, runErr)
	}
	return nil
}

func appendFile(path string, b []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	_, err = f.Write(b)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// RunPost runs the %post scripts in order, as anaconda does at the end of
// an installation (clonecd: at the end of the identity step). A failing
// script with --erroronfail stops the run and is returned; other failures
// are written to o.Output and the next script runs.
func (ks *Kickstart) RunPost(ctx context.Context, o RunOptions) error {
	for i := range ks.Post {
		s := &ks.Post[i]
		if o.Output != nil {
			fmt.Fprintf(o.Output, "kickstart: running %%post %d of %d (%s, %s)\n", i+1, len(ks.Post), where(s.File, s.Line), s.describe())
		}
		err := s.Run(ctx, o)
		if err == nil {
			continue
		}
		if s.ErrorOnFail {
			return err
		}
		if o.Output != nil {
			fmt.Fprintf(o.Output, "kickstart: warning: %v (no --erroronfail: going on)\n", err)
		}
	}
	return nil
}

func (s *Script) describe() string {
	d := s.Interpreter
	if s.NoChroot {
		d += ", --nochroot"
	}
	if s.ErrorOnFail {
		d += ", --erroronfail"
	}
	return d
}
