package vm

import (
	"os"
	"path/filepath"
	"testing"
)

// ConsoleLog makes dir/NAME.console.log for a VM's serial console
// (Options.Log); when the test fails its last 8000 bytes are logged.
func ConsoleLog(t testing.TB, dir, name string) *os.File {
	t.Helper()
	f, err := os.Create(filepath.Join(dir, name+".console.log"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		f.Close()
		if t.Failed() {
			b, _ := os.ReadFile(f.Name())
			if len(b) > 8000 {
				b = b[len(b)-8000:]
			}
			t.Logf("console of %s (tail):\n%s", name, b)
		}
	})
	return f
}
