package builder

import (
	"bytes"
	"fmt"

	"github.com/clonecd/clonecd/kickstart"
	"github.com/clonecd/clonecd/partition"
)

// checkLayout parses a layout file with the partition package, so a bad
// layout fails the build instead of every clone.
func checkLayout(name string, b []byte) error {
	l, err := partition.ParseLayout(bytes.NewReader(b))
	if err != nil {
		return fmt.Errorf("layout %s: %w", name, err)
	}
	if len(l.Parts) == 0 {
		return fmt.Errorf("layout %s: no partitions", name)
	}
	return nil
}

// layoutFromKickstart turns ks.cfg's partitioning (clearpart, part, ...)
// into a layout file with the kickstart package; warn gets what it does
// not honour.
func layoutFromKickstart(ks string, warn func(string)) ([]byte, error) {
	k, err := kickstart.ParseFile(ks, kickstart.Options{Name: ks})
	if err != nil {
		return nil, err
	}
	for _, w := range k.Warnings {
		warn(w.String())
	}
	l, err := k.Layout()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", ks, err)
	}
	var b bytes.Buffer
	if _, err := l.WriteTo(&b); err != nil {
		return nil, fmt.Errorf("%s: layout: %w", ks, err)
	}
	return b.Bytes(), nil
}
