package tools

import (
	"os"
	"os/exec"
	"path/filepath"
)

// Dirs are searched after PATH.
var Dirs = []string{"/usr/sbin", "/sbin", "/usr/bin", "/bin"}

// Find returns the path of the program name, or "" if there is none.
func Find(name string) string {
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	for _, d := range Dirs {
		p := filepath.Join(d, name)
		if st, err := os.Stat(p); err == nil && !st.IsDir() && st.Mode()&0o111 != 0 {
			return p
		}
	}
	return ""
}
