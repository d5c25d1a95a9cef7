package fleet

import (
	"reflect"
	"sort"
	"strings"
	"testing"
)

func TestParseNodeset(t *testing.T) {
	tests := []struct {
		in   string
		want []string
		err  string
	}{
		{"s001", []string{"s001"}, ""},
		{"s[001-003,070]", []string{"s001", "s002", "s003", "s070"}, ""},
		{"s[8-11]", []string{"s8", "s9", "s10", "s11"}, ""},
		{"s[08-11]", []string{"s08", "s09", "s10", "s11"}, ""},
		{"s001,s002,s001", []string{"s001", "s002"}, ""},
		{"r[1-2]n[01-02]", []string{"r1n01", "r1n02", "r2n01", "r2n02"}, ""},
		{"s[1-2]-ib,m", []string{"s1-ib", "s2-ib", "m"}, ""},
		{"s[3-1]", nil, "backwards"},
		{"s[1-", nil, "missing ]"},
		{"s1]", nil, "unbalanced"},
		{"s[a-b]", nil, "bad range"},
		{"s[1-99999999]", nil, "more than"},
		{"", nil, "empty item"},
		{"s1,,s2", nil, "empty item"},
		{"../etc", nil, "not a letter"},
		{"s 1", nil, "not a letter"},
		{"-oProxyCommand=x", nil, "starts or ends with '-'"},
		{"s_1", nil, "not a letter"},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParseNodeset(tc.in)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got %v %v, want %v", got, err, tc.want)
			}
		})
	}
}

func TestPatternNodes(t *testing.T) {
	tests := []struct {
		pattern     string
		first, last int
		want        []string
		bad         bool
	}{
		{"s%03d", 1, 3, []string{"s001", "s002", "s003"}, false},
		{"node%d", 9, 10, []string{"node9", "node10"}, false},
		{"s%03d-ib", 64, 64, []string{"s064-ib"}, false},
		{"s%s", 1, 2, nil, true},
		{"s", 1, 2, nil, true},
		{"s%d%d", 1, 2, nil, true},
		{"s%03d", 5, 1, nil, true},
		{"s%03d/x", 1, 1, nil, true},
	}
	for _, tc := range tests {
		got, err := PatternNodes(tc.pattern, tc.first, tc.last)
		if tc.bad != (err != nil) || !tc.bad && !reflect.DeepEqual(got, tc.want) {
			t.Errorf("PatternNodes(%q, %d, %d) = %v, %v", tc.pattern, tc.first, tc.last, got, err)
		}
	}
}

func TestNodeLess(t *testing.T) {
	in := []string{"s10", "s2", "s001", "a", "s1", "s02", "m1n10", "m1n9", "b"}
	sort.Slice(in, func(i, j int) bool { return NodeLess(in[i], in[j]) })
	want := []string{"a", "b", "m1n9", "m1n10", "s1", "s001", "s2", "s02", "s10"}
	if !reflect.DeepEqual(in, want) {
		t.Fatalf("%v, want %v", in, want)
	}
}

func FuzzParseNodeset(f *testing.F) {
	for _, s := range []string{"s[001-064,070]", "s1,s2", "r[1-2]n[01-16]", "s[", "a]b", "s[1-3]x[4]", "[1-2]", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		nodes, err := ParseNodeset(s)
		if err != nil {
			return
		}
		if len(nodes) == 0 || len(nodes) > MaxNodeset {
			t.Fatalf("%q: %d nodes", s, len(nodes))
		}
		seen := map[string]bool{}
		for _, n := range nodes {
			if ValidName(n) != nil || seen[n] {
				t.Fatalf("%q gave bad or duplicate name %q", s, n)
			}
			seen[n] = true
		}
	})
}
