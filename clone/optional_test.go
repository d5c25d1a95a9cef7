package clone

import (
	"bytes"
	"context"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/clonecd/clonecd/netclone"
	"github.com/clonecd/clonecd/partition"
)

// TestOptionalFiles: only a missing file is optional. A media error on
// ks.cfg, nodes, clonecd.conf or the cloner's kernel and initrd (an fs.FS
// whose Open fails, a real HTTP server answering 503 to the network
// media's retries) fails the step naming the file; a missing one does
// not (no %post, no nodes table, no ramclone entry).
func TestOptionalFiles(t *testing.T) {
	dir := t.TempDir()
	files := map[string]string{
		"CLONE_CD_VERSION":    "1.0\n",
		"node.sfdisk":         testLayout,
		"node.cpio.gz":        "image",
		"node.cpio.gz.sha256": strings.Repeat("0", 64) + "  node.cpio.gz\n",
		"clonecd.conf":        "server=http://srv:8080\n",
		"nodes":               "52:54:00:12:34:56 n1\n",
		"ks.cfg":              "%post\ntrue\n%end\n",
		"isolinux/vmlinuz":    "kernel",
		"isolinux/initrd.img": "initrd",
	}
	for name, c := range files {
		os.MkdirAll(filepath.Dir(filepath.Join(dir, name)), 0o755)
		os.WriteFile(filepath.Join(dir, name), []byte(c), 0o644)
	}
	// broken is the file the server fails on, and how (503 or 404)
	var broken string
	var code int
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		name := strings.TrimPrefix(strings.TrimPrefix(req.URL.Path, "/"), "v/1.0/")
		w.Header().Set(netclone.ServerHeader, "test") // answers as a clonecd server
		if name == broken {
			http.Error(w, http.StatusText(code), code)
			return
		}
		http.ServeFile(w, req, filepath.Join(dir, name))
	}))
	defer srv.Close()
	steps := map[string]func(r *run) error{
		"setup":      (*run).setup,
		"identity":   func(r *run) error { return r.kickstartPost("n1") },
		"bootloader": (*run).installRamclone,
	}
	tests := []struct {
		file, step string
		missingOK  bool // a missing file is no error
	}{
		{"clonecd.conf", "setup", true},
		{"nodes", "setup", true},
		{"ks.cfg", "identity", true},
		{"isolinux/vmlinuz", "bootloader", true},
		{"isolinux/initrd.img", "bootloader", false},
	}
	for _, tc := range tests {
		for _, src := range []string{"fs.FS", "HTTP"} {
			for _, missing := range []bool{false, true} {
				what := "error"
				if missing {
					what = "missing"
				}
				t.Run(tc.file+"/"+src+"/"+what, func(t *testing.T) {
					var media fs.FS
					switch src {
					case "fs.FS":
						f := failFS{FS: os.DirFS(dir), name: tc.file}
						if missing {
							f.err = fs.ErrNotExist
						}
						media = f
					case "HTTP":
						broken, code = tc.file, http.StatusServiceUnavailable
						if missing {
							code = http.StatusNotFound
						}
						m, err := netclone.NewMedia(context.Background(), srv.URL, netclone.MediaOptions{Retries: 2, Backoff: time.Millisecond, MaxBackoff: time.Millisecond})
						if err != nil {
							t.Fatal(err)
						}
						media = m
					}
					root, err := os.OpenRoot(t.TempDir())
					if err != nil {
						t.Fatal(err)
					}
					defer root.Close()
					layout, err := partition.ParseLayout(strings.NewReader(testLayout))
					if err != nil {
						t.Fatal(err)
					}
					var log bytes.Buffer
					r := &run{cfg: Config{Net: true, MACs: []string{}, Hostname: "n1", Self: "/dev/null"}, ctx: context.Background(), log: &log,
						media: media, newRoot: root, conf: map[string]string{}, hostname: "n1", fitted: layout, fsinfo: map[int]*partition.FSInfo{}}
					err = steps[tc.step](r)
					t.Logf("log:\n%s", log.String())
					switch {
					case missing && tc.missingOK:
						if err != nil {
							t.Fatalf("step %s with %s missing: %v; want no error", tc.step, tc.file, err)
						}
					case err == nil:
						t.Fatalf("step %s with %s failing: no error (the step went on without it)", tc.step, tc.file)
					case !strings.Contains(err.Error(), tc.file):
						t.Fatalf("step %s: %v; want the error to name %s", tc.step, err, tc.file)
					case !missing && src == "HTTP" && !strings.Contains(err.Error(), "503"):
						t.Fatalf("step %s: %v; want the server's 503", tc.step, err)
					}
				})
			}
		}
	}
}
