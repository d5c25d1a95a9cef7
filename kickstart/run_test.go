package kickstart

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/clonecd/clonecd/internal/testenv"
)

// busyboxRoot makes a tiny root with a static busybox as /bin/sh.
func busyboxRoot(t *testing.T) string {
	t.Helper()
	bb := testenv.Tool("busybox")
	if bb == "" {
		testenv.NeedTools(t, "busybox")
	}
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "bin"), 0o755)
	os.MkdirAll(filepath.Join(root, "etc"), 0o755)
	data, err := os.ReadFile(bb)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "bin", "busybox"), data, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, l := range []string{"sh", "echo", "cat", "hostname"} {
		os.Symlink("busybox", filepath.Join(root, "bin", l))
	}
	return root
}

func TestRunScripts(t *testing.T) {
	testenv.NeedRoot(t) // chroot
	root := busyboxRoot(t)
	text := `%post --log=/root/ks-post.log
echo "post ran on $HOSTNAME" > /etc/ks-post
echo to-log
%end
%post --nochroot
echo "nochroot saw $INSTALL_ROOT" > "$INSTALL_ROOT/etc/ks-nochroot"
%end
%post --erroronfail
echo failing >&2
exit 3
%end
%post --interpreter=/usr/bin/python3
print("x")
%end
`
	ks, err := Parse(strings.NewReader(text), Options{Name: "ks.cfg"})
	if err != nil {
		t.Fatal(err)
	}
	var log strings.Builder
	o := RunOptions{Root: root, Env: []string{"HOSTNAME=s042"}, Output: &log}
	tests := []struct {
		file, content, err string
	}{
		{"etc/ks-post", "post ran on s042\n", ""},
		{"etc/ks-nochroot", "nochroot saw " + root + "\n", ""},
		{"", "", "ks.cfg:8: %post script (/bin/sh) failed: exit status 3"},
		{"", "", "ks.cfg:12: %post --interpreter /usr/bin/python3: not in the new root"},
	}
	for i, tt := range tests {
		err := ks.Post[i].Run(context.Background(), o)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("script %d: error %v, want %q", i, err, tt.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("script %d: %v", i, err)
			continue
		}
		b, err := os.ReadFile(filepath.Join(root, tt.file))
		if err != nil || string(b) != tt.content {
			t.Errorf("script %d: %s = %q, %v; want %q", i, tt.file, b, err, tt.content)
		}
	}
	if !ks.Post[2].ErrorOnFail || ks.Post[0].ErrorOnFail {
		t.Error("ErrorOnFail not parsed")
	}
	if b, err := os.ReadFile(filepath.Join(root, "root", "ks-post.log")); err != nil || string(b) != "to-log\n" {
		t.Errorf("--log file: %q, %v", b, err)
	}
	if !strings.Contains(log.String(), "to-log\n") || !strings.Contains(log.String(), "failing\n") {
		t.Errorf("output not passed on: %q", log.String())
	}
	if left, _ := filepath.Glob(filepath.Join(root, "tmp", "ks-script-*")); len(left) != 0 {
		t.Errorf("script files left: %v", left)
	}
}

func TestRunPost(t *testing.T) {
	testenv.NeedRoot(t)
	tests := []struct {
		name, text, err string
		files           []string // made in the root, in order
	}{
		{"all run", "%post\necho > /etc/a\n%end\n%post\nfalse\n%end\n%post\necho > /etc/c\n%end\n", "", []string{"etc/a", "etc/c"}},
		{"erroronfail stops", "%post\necho > /etc/a\n%end\n%post --erroronfail\nexit 1\n%end\n%post\necho > /etc/c\n%end\n", "ks.cfg:4: %post script (/bin/sh) failed: exit status 1", []string{"etc/a"}},
	}
	for _, tt := range tests {
		root := busyboxRoot(t)
		os.Symlink("busybox", filepath.Join(root, "bin", "false"))
		ks, err := Parse(strings.NewReader(tt.text), Options{Name: "ks.cfg"})
		if err != nil {
			t.Fatal(err)
		}
		var log strings.Builder
		err = ks.RunPost(context.Background(), RunOptions{Root: root, Output: &log})
		if (tt.err == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tt.err)) {
			t.Errorf("%s: error %v, want %q\n%s", tt.name, err, tt.err, log.String())
		}
		for _, f := range []string{"etc/a", "etc/c"} {
			_, err := os.Stat(filepath.Join(root, f))
			want := strings.Contains(strings.Join(tt.files, " "), f)
			if (err == nil) != want {
				t.Errorf("%s: %s exists=%v, want %v", tt.name, f, err == nil, want)
			}
		}
		if tt.err == "" && !strings.Contains(log.String(), "warning: ks.cfg:4: %post script (/bin/sh) failed") {
			t.Errorf("%s: failure without --erroronfail not logged:\n%s", tt.name, log.String())
		}
	}
}
