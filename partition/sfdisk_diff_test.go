package partition

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/clonecd/clonecd/internal/testenv"
)

// sfdiskOutcome runs real sfdisk with script on a blank image of mib MiB:
// its dump, or an error when sfdisk refused the script.
func sfdiskOutcome(t *testing.T, script string, mib int64) (string, error) {
	t.Helper()
	ref := testenv.Sparse(t, "ref.img", mib<<20)
	cmd := exec.Command(testenv.Tool("sfdisk"), "--no-reread", "--no-tell-kernel", "-q", ref)
	cmd.Stdin = strings.NewReader(script)
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("sfdisk: %v: %s", err, out)
	}
	return strings.ReplaceAll(sfdiskDump(t, ref), ref, "DISK"), nil
}

// clonecdOutcome parses and applies script with clonecd on a blank image:
// the dump as sfdisk -d prints it, or clonecd's error.
func clonecdOutcome(t *testing.T, script string, mib int64) (string, error) {
	t.Helper()
	l, err := ParseLayout(strings.NewReader(script))
	if err != nil {
		return "", err
	}
	dst := testenv.Sparse(t, "dst.img", mib<<20)
	if _, err := Apply(l, dst, ApplyOptions{AllowEmpty: true}); err != nil {
		return "", err
	}
	return strings.ReplaceAll(sfdiskDump(t, dst), dst, "DISK"), nil
}

var uuidField = regexp.MustCompile(`, uuid=[0-9A-F-]{36}`)

// refusedOnPurpose are clonecd's refusals of scripts sfdisk 2.38 accepts
// (README: "Where clonecd refuses what sfdisk accepts"):
//   - a line without number that sfdisk makes primary or logical depending
//     on the disk;
//   - lines after the fourth primary partition of a dos disk without an
//     extended partition (sfdisk ignores them: "All partitions used");
//   - a second extended partition, or an extended one numbered as a
//     logical partition (sfdisk writes a broken chain);
//   - a logical partition numbered out of order, or a number given twice
//     (sfdisk renumbers logical partitions, ignores repeated primaries);
//   - a start inside another partition (sfdisk moves it to the next free
//     sector).
var refusedOnPurpose = regexp.MustCompile(`give the number|dos allows 4 primaries|without an extended partition|` +
	`a second extended partition|an extended partition must be primary|numbers logical partitions 5, 6|already defined|which is not free`)

// sameAsSfdisk compares the two outcomes of one script. Where clonecd
// refuses on purpose what sfdisk 2.38 accepts, the refusal must be the
// documented one:
//   - a layout that does not fit (sfdisk shrinks a gpt partition given
//     with a unit to the free space, and writes a dos partition of 0
//     sectors at the end of the disk);
//   - a line without number after an extended partition that sfdisk makes
//     primary or logical depending on the disk (refused: give the number).
func sameAsSfdisk(t *testing.T, script string, mib int64) {
	t.Helper()
	want, werr := sfdiskOutcome(t, script, mib)
	got, gerr := clonecdOutcome(t, script, mib)
	want, got = uuidField.ReplaceAllString(want, ""), uuidField.ReplaceAllString(got, "")
	var fe *FitError
	switch {
	case werr != nil && gerr != nil:
	case werr == nil && gerr == nil:
		if got != want {
			t.Errorf("script:\n%s\nsfdisk wrote:\n%s\nclonecd wrote:\n%s", script, want, got)
		}
	case werr == nil && errors.As(gerr, &fe) && fe.ShortMiB > 0 && sfdiskClamped(want):
	case werr == nil && refusedOnPurpose.MatchString(gerr.Error()):
	case werr == nil && strings.Contains(want, "omitting empty partition"): // sfdisk dropped a line
	case werr != nil:
		t.Errorf("script:\n%s\nsfdisk refused it (%v), clonecd wrote:\n%s", script, werr, got)
	default:
		t.Errorf("script:\n%s\nclonecd refused it (%v), sfdisk wrote:\n%s", script, gerr, want)
	}
}

// sfdiskClamped reports whether a dump shows sfdisk's answer to a
// partition that does not fit: a 0-sector dos entry, or a gpt partition
// cut at the last usable sector.
func sfdiskClamped(dump string) bool {
	if strings.Contains(dump, "size=           0,") || regexp.MustCompile(`size= *\d{10,}`).MatchString(dump) {
		return true // a 0-sector or wrapped-around entry
	}
	m := regexp.MustCompile(`last-lba: (\d+)`).FindStringSubmatch(dump)
	if m == nil {
		return false
	}
	for _, line := range strings.Split(dump, "\n") {
		var start, size uint64
		last, _ := strconv.ParseUint(m[1], 10, 64)
		if _, err := fmt.Sscanf(strings.TrimPrefix(line, "DISK"), "%d : start=%d, size=%d", new(int), &start, &size); err == nil && start+size-1+2*2048 > last {
			return true
		}
	}
	return false
}

// TestSameTableAsSfdisk: for sfdisk's old dump format (empty slots
// "start= 0, size= 0, Id= 0"), start=0, size=0, sizes with a unit below,
// at and around the 1 MiB grain, and lines without number after an
// extended partition, clonecd writes the table real sfdisk writes from the
// same script, or refuses what sfdisk refuses.
func TestSameTableAsSfdisk(t *testing.T) {
	testenv.NeedTools(t, "sfdisk")
	const dosID, gptID = "label-id: 0x01020304\n", "label-id: 01020304-0506-0708-090A-0B0C0D0E0F00\n"
	tests := []struct {
		name, script string
	}{
		{"old dump empty slots", "# partition table of /dev/sda\nunit: sectors\n" + dosID + "\n" +
			"/dev/sda1 : start=     2048, size=  100000, Id=83, bootable\n/dev/sda2 : start=        0, size=        0, Id= 0\n" +
			"/dev/sda3 : start=        0, size=        0, Id= 0\n/dev/sda4 : start=        0, size=        0, Id= 0\n"},
		{"empty slot between", "label: dos\n" + dosID + "/dev/sda1 : start=2048, size=1000, Id=83\n/dev/sda2 : start=0, size=0, Id=0\n/dev/sda3 : start=10240, size=1000, Id=83\n"},
		{"empty slot takes no number", "label: dos\n" + dosID + "start=2048, size=1000\nstart=0, size=0, Id=0\nstart=10240, size=1000\n"},
		{"empty slot commas", "label: dos\n" + dosID + "2048,1000,83\n0,0,0\n10240,1000,83\n"},
		{"empty slot units", "label: dos\n" + dosID + "start=2048, size=100K\nstart=0M, size=0M\nsize=100K\n"},
		{"empty slot gpt", "label: gpt\n" + gptID + "start=2048, size=1000\nstart=0, size=0\nstart=10240, size=1000\n"},
		{"start 0", "label: dos\n" + dosID + "start=0, size=1000, type=83\n"},
		{"start 0 no size", "label: dos\n" + dosID + "start=2048, size=1000\nstart=0, Id=0\n"},
		{"start 0 gpt", "label: gpt\n" + gptID + "start=0, size=100\n"},
		{"size 0 dos", "label: dos\n" + dosID + "start=2048, size=0, type=83\n"},
		{"size 0 dos no start", "label: dos\n" + dosID + "start=2048, size=1000\nsize=0, Id=0\n"},
		{"size 0 commas", "label: dos\n" + dosID + "2048,1000,83\n,0\n"},
		{"size 0 gpt", "label: gpt\n" + gptID + "start=2048, size=0\n"},
		{"size 0K gpt", "label: gpt\n" + gptID + "start=2048, size=0K\nsize=1M\n"},
		{"dos 100K", "label: dos\n" + dosID + "start=2048, size=100K, type=83\nsize=100K\n"},
		{"dos 1536K", "label: dos\n" + dosID + "start=2048, size=1536K\nsize=1M\n"},
		{"gpt 1536K", "label: gpt\n" + gptID + "start=2048, size=1536K\nsize=1M\n"},
		{"gpt 1024.5K", "label: gpt\n" + gptID + "start=2048, size=1024.5K\nsize=1M\n"},
		{"dos 1.5K", "label: dos\n" + dosID + "start=2048, size=1.5K\nsize=1M\n"},
		{"primary after sized extended", "label: dos\n" + dosID + "start=2048, size=100000, type=5\nstart=4096, size=1000\nsize=1000\n"},
		{"primary before extended", "label: dos\n" + dosID + "start=2048, size=1000, type=83\nstart=8192, size=100000, type=5\nsize=1000\n"},
		{"dos too big", "label: dos\n" + dosID + "size=300M\n"},
		{"gpt too big", "label: gpt\n" + gptID + "size=300M\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { sameAsSfdisk(t, tt.script, 256) })
	}
	// And scripts mixing all of it, from a fixed seed.
	r := rand.New(rand.NewPCG(1, 2))
	n := 150
	if testing.Short() {
		n = 20
	}
	for i := range n {
		script := randomScript(r)
		t.Run(fmt.Sprintf("random-%d", i), func(t *testing.T) { sameAsSfdisk(t, script, 64) })
	}
}

// randomScript makes an sfdisk script of one to five lines for a 64 MiB
// disk: name=value or comma lines, with or without node names, starts
// aligned, unaligned, 0 or missing, sizes in sectors (0 too), with a unit
// or missing, dos extended partitions and old-dump empty slots.
func randomScript(r *rand.Rand) string {
	var b strings.Builder
	dos := r.IntN(2) == 0
	if dos {
		b.WriteString("label: dos\nlabel-id: 0x0a0b0c0d\n")
	} else {
		b.WriteString("label: gpt\nlabel-id: 0A0B0C0D-0506-0708-090A-0B0C0D0E0F00\n")
	}
	units := []string{"0K", "1K", "100K", "512K", "1M", "1025K", "1536K", "2047K", "2M", "3M", "5M", "7.5M"}
	for range 1 + r.IntN(5) {
		var start, size, typ string
		switch r.IntN(10) {
		case 0: // an empty slot of an old dump
			start, size = "0", "0"
		case 1:
			start = fmt.Sprint(2048 * (1 + r.IntN(60)))
		case 2, 3:
			start = fmt.Sprint(2048 + r.IntN(120000))
		}
		if size == "" {
			switch r.IntN(10) {
			case 0:
				size = "0"
			case 1, 2, 3:
				size = fmt.Sprint(1 + r.IntN(40000))
			case 4, 5, 6:
				size = units[r.IntN(len(units))]
			}
		}
		if dos && r.IntN(6) == 0 {
			typ = "5"
		}
		node := ""
		if r.IntN(5) == 0 {
			node = fmt.Sprintf("/dev/sda%d : ", 1+r.IntN(6))
		}
		if r.IntN(3) == 0 && node == "" {
			fmt.Fprintf(&b, "%s,%s,%s\n", start, size, typ)
			continue
		}
		var f []string
		if start != "" {
			f = append(f, "start="+start)
		}
		if size != "" {
			f = append(f, "size="+size)
		}
		if typ != "" {
			f = append(f, "type="+typ)
		}
		if len(f) == 0 {
			f = append(f, "type="+map[bool]string{true: "83", false: "L"}[dos])
		}
		b.WriteString(node + strings.Join(f, ", ") + "\n")
	}
	return b.String()
}
