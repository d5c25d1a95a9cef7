package versions

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/clonecd/clonecd/internal/testimage"
)

// TestPublishProgress: Publish tells Progress how far it read the image,
// checking it whole and then copying it, each stage up to the image's
// size; Mark changes with each change of the store's versions and not
// with a read.
func TestPublishProgress(t *testing.T) {
	src := t.TempDir()
	s, err := Open(filepath.Join(t.TempDir(), "clone_image"))
	if err != nil {
		t.Fatal(err)
	}
	img := testimage.Write(t, src, "progress")
	type seen struct {
		calls      int
		done, last int64
		total      int64
	}
	stages := map[string]*seen{}
	var order []string
	o := PublishOptions{Layout: layoutFile(t, src), Progress: func(stage string, done, total int64) {
		st := stages[stage]
		if st == nil {
			st = &seen{}
			stages[stage] = st
			order = append(order, stage)
		}
		if done < st.last {
			t.Errorf("%s: done went back from %d to %d", stage, st.last, done)
		}
		st.calls++
		st.last, st.done, st.total = done, done, total
	}}
	m0 := s.Mark()
	e, err := s.Publish(img, o)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(order, ",") != StageCheck+","+StageCopy {
		t.Fatalf("stages %v; want %s then %s", order, StageCheck, StageCopy)
	}
	for _, name := range order {
		st := stages[name]
		if st.done != e.Size || st.total != e.Size || st.calls < 2 {
			t.Errorf("%s: last call %d of %d after %d calls; want %d of %d", name, st.done, st.total, st.calls, e.Size, e.Size)
		}
	}
	m1 := s.Mark()
	if m1 == m0 {
		t.Errorf("Mark did not change with a publish: %q", m1)
	}
	s.List()
	s.Current()
	if m := s.Mark(); m != m1 {
		t.Errorf("Mark changed with reads: %q then %q", m1, m)
	}
	o.Progress, o.Version, o.NoPromote = nil, "2.0", true
	if _, err := s.Publish(img, o); err != nil {
		t.Fatal(err)
	}
	m2 := s.Mark()
	if m2 == m1 {
		t.Errorf("Mark did not change with a canary's publish")
	}
	if err := s.MarkBad("2.0", "test"); err != nil {
		t.Fatal(err)
	}
	if s.Mark() == m2 {
		t.Errorf("Mark did not change with a bad mark")
	}
}
