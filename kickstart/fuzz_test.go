package kickstart

import (
	"bytes"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/clonecd/clonecd/partition"
)

// FuzzParse feeds arbitrary kickstarts to Parse and Layout: neither may
// panic, errors name a line, and every layout made must be a valid layout
// file that partition.ParseLayout reads back unchanged. Seeds:
// testdata/fuzz/FuzzParse (the test kickstarts and tricky fragments).
func FuzzParse(f *testing.F) {
	f.Add([]byte("part / --size=1 --grow\n"), "bios")
	f.Add([]byte("%post\necho hi\n%end\n"), "uefi")
	fsys := fstest.MapFS{"inc.ks": {Data: []byte("part /inc --size=5\n")}, "self.ks": {Data: []byte("%include self.ks\n")}}
	f.Fuzz(func(t *testing.T, data []byte, firmware string) {
		ks, err := Parse(bytes.NewReader(data), Options{Name: "ks.cfg", Firmware: firmware, ReadFile: fsys.ReadFile})
		if err != nil {
			if !strings.Contains(err.Error(), "ks.cfg") && !strings.Contains(err.Error(), "%include") {
				t.Fatalf("error does not name the file: %v", err)
			}
			return
		}
		for _, s := range ks.Post {
			if s.Line < 1 || s.Interpreter == "" {
				t.Fatalf("bad script %+v", s)
			}
		}
		l, err := ks.Layout()
		if err != nil {
			return
		}
		var buf bytes.Buffer
		if _, err := l.WriteTo(&buf); err != nil {
			t.Fatal(err)
		}
		back, err := partition.ParseLayout(bytes.NewReader(buf.Bytes()))
		if err != nil {
			t.Fatalf("layout from kickstart does not parse: %v\n%s\nkickstart:\n%s", err, buf.String(), data)
		}
		if back.String() != buf.String() {
			t.Fatalf("layout round trip differs:\n%s\nvs\n%s", buf.String(), back.String())
		}
	})
}
