package nodesync_test

import (
	"fmt"
	"os"
	"strings"

	"github.com/clonecd/clonecd/nodesync"
)

func ExampleParse() {
	files, err := nodesync.Parse(strings.NewReader(`clonecd-files 1
d 0755 0 0 1700000000 /
d 0755 0 0 1700000000 /etc
f 0644 0 0 1700000000 6 ee52f6a6a4b8a37e2ff1b5dd2a0c2a4bcf1bb4b08d5ec24c3ecae3e9bbe5a7b2 /etc/host\x20name
l 0 0 1700000000 ../usr/share/zoneinfo/UTC /etc/localtime
end 4
`))
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, e := range files.Entries {
		fmt.Printf("%s %q %d\n", e.Type, e.Path, e.Size)
	}
	files.WriteTo(os.Stdout)
	// Output:
	// directory "/" 0
	// directory "/etc" 0
	// regular file "/etc/host name" 6
	// symlink "/etc/localtime" 0
	// clonecd-files 1
	// d 0755 0 0 1700000000 /
	// d 0755 0 0 1700000000 /etc
	// f 0644 0 0 1700000000 6 ee52f6a6a4b8a37e2ff1b5dd2a0c2a4bcf1bb4b08d5ec24c3ecae3e9bbe5a7b2 /etc/host\x20name
	// l 0 0 1700000000 ../usr/share/zoneinfo/UTC /etc/localtime
	// end 4
}
