package clone

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/clonecd/clonecd/internal/testenv"
	"github.com/clonecd/clonecd/partition"
)

// fakeSys builds a sysfs tree: disks maps a name to files under
// sys/block/NAME (relative path → content).
func fakeSys(t *testing.T, disks map[string]map[string]string) string {
	t.Helper()
	root := t.TempDir()
	for name, files := range disks {
		dir := filepath.Join(root, "sys/devices/virtual/block", name)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for rel, content := range files {
			p := filepath.Join(dir, rel)
			os.MkdirAll(filepath.Dir(p), 0o755)
			if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		for _, l := range []string{"sys/block", "sys/class/block"} {
			os.MkdirAll(filepath.Join(root, l), 0o755)
			if err := os.Symlink(dir, filepath.Join(root, l, name)); err != nil {
				t.Fatal(err)
			}
		}
	}
	return root
}

func TestFindDisk(t *testing.T) {
	disk := func(size, removable string, extra ...string) map[string]string {
		m := map[string]string{"size": size, "removable": removable}
		for i := 0; i+1 < len(extra); i += 2 {
			m[extra[i]] = extra[i+1]
		}
		return m
	}
	tests := []struct {
		name         string
		disks        map[string]map[string]string
		spec, media  string
		want, errHas string
	}{
		{name: "one disk", disks: map[string]map[string]string{"vda": disk("8388608", "0"), "sr0": disk("1000", "1"), "loop0": disk("100", "0")}, want: "/dev/vda"},
		{name: "media disk skipped", disks: map[string]map[string]string{"sda": disk("8388608", "0"), "sdb": disk("8388608", "0")}, media: "/dev/sdb", want: "/dev/sda"},
		{name: "removable skipped", disks: map[string]map[string]string{"sda": disk("8388608", "0"), "sdb": disk("8388608", "1")}, want: "/dev/sda"},
		{name: "empty skipped", disks: map[string]map[string]string{"sda": disk("8388608", "0"), "sdb": disk("0", "0")}, want: "/dev/sda"},
		{name: "ambiguous", disks: map[string]map[string]string{"sda": disk("8388608", "0", "device/model", "QEMU HARDDISK"), "vda": disk("8388608", "0", "serial", "S1")}, errHas: "2 candidate disks, refusing to guess: sda 4.0 GiB (QEMU HARDDISK); vda 4.0 GiB (serial S1)"},
		{name: "none", disks: map[string]map[string]string{"sr0": disk("100", "1")}, errHas: "no target disk found"},
		{name: "by name", disks: map[string]map[string]string{"sda": disk("1", "0"), "vda": disk("1", "0")}, spec: "vda", want: "/dev/vda"},
		{name: "by path", disks: map[string]map[string]string{"sda": disk("1", "0"), "vda": disk("1", "0")}, spec: "/dev/sda", want: "/dev/sda"},
		{name: "by virtio serial", disks: map[string]map[string]string{"vda": disk("1", "0", "serial", "NODE7"), "vdb": disk("1", "0", "serial", "OTHER")}, spec: "NODE7", want: "/dev/vda"},
		{name: "by scsi serial", disks: map[string]map[string]string{"sda": disk("1", "0", "device/serial", "  WD-123 \n"), "sdb": disk("1", "0")}, spec: "WD-123", want: "/dev/sda"},
		{name: "by vpd_pg80", disks: map[string]map[string]string{"sda": disk("1", "0", "device/vpd_pg80", "\x00\x80\x00\x06ABC123"), "sdb": disk("1", "0")}, spec: "ABC123", want: "/dev/sda"},
		{name: "unknown", disks: map[string]map[string]string{"sda": disk("1", "0")}, spec: "sdz", errHas: `disk "sdz": no such disk or serial (disks: sda)`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			root := fakeSys(t, tc.disks)
			got, err := FindDisk(root, tc.spec, tc.media)
			if tc.errHas != "" {
				if err == nil || !strings.Contains(err.Error(), tc.errHas) {
					t.Fatalf("err = %v, want it to contain %q", err, tc.errHas)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("FindDisk = %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

func TestFindDiskByID(t *testing.T) {
	root := fakeSys(t, map[string]map[string]string{"sda": {"size": "1"}, "sdb": {"size": "1"}})
	os.MkdirAll(filepath.Join(root, "dev/disk/by-id"), 0o755)
	os.WriteFile(filepath.Join(root, "dev/sdb"), nil, 0o644)
	os.Symlink("../../sdb", filepath.Join(root, "dev/disk/by-id/ata-QEMU_HARDDISK_QM0002"))
	got, err := FindDisk(root, "/dev/disk/by-id/ata-QEMU_HARDDISK_QM0002", "")
	if err != nil || got != "/dev/sdb" {
		t.Fatalf("got %q, %v", got, err)
	}
}

func TestTune(t *testing.T) {
	tests := []struct {
		name  string
		queue map[string]string
		want  []string
		files map[string]string
	}{
		{"ssd", map[string]string{"queue/read_ahead_kb": "128", "queue/scheduler": "[mq-deadline] none", "queue/rotational": "0", "queue/write_cache": "write back"},
			[]string{"read-ahead was 128 KiB", "read-ahead: set to 4096", "write cache write back", "scheduler was mq-deadline", "scheduler: set to none"},
			map[string]string{"queue/read_ahead_kb": "4096", "queue/scheduler": "none"}},
		{"spinning", map[string]string{"queue/read_ahead_kb": "8192", "queue/scheduler": "mq-deadline kyber [bfq] none", "queue/rotational": "1"},
			[]string{"read-ahead 8192 KiB, kept", "scheduler was bfq", "scheduler: set to mq-deadline"},
			map[string]string{"queue/read_ahead_kb": "8192", "queue/scheduler": "mq-deadline"}},
		{"kept", map[string]string{"queue/read_ahead_kb": "4096", "queue/scheduler": "[none]", "queue/rotational": "1"},
			[]string{"read-ahead 4096 KiB, kept", "scheduler none (mq-deadline not available), kept"}, nil},
		{"no queue", map[string]string{"size": "1"}, []string{"warning: read-ahead: open"}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			root := fakeSys(t, map[string]map[string]string{"sda": tc.queue})
			got, changed := tuneQueue(root, "sda", false)
			if len(got) != len(tc.want) {
				t.Fatalf("tuneQueue = %q, want %q", got, tc.want)
			}
			for i := range got {
				if !strings.HasPrefix(got[i], tc.want[i]) {
					t.Errorf("line %d = %q, want %q", i, got[i], tc.want[i])
				}
			}
			for f, want := range tc.files {
				b, _ := os.ReadFile(filepath.Join(root, "sys/block/sda", f))
				if string(b) != want {
					t.Errorf("%s = %q, want %q", f, b, want)
				}
			}
			// Outside the cloner the run puts them back (C10).
			r := &run{log: io.Discard, tuned: changed}
			r.restoreTune()
			for f := range tc.files {
				b, _ := os.ReadFile(filepath.Join(root, "sys/block/sda", f))
				cur, _ := parseScheduler(tc.queue[f])
				if f != "queue/scheduler" {
					cur = tc.queue[f]
				}
				if string(b) != cur {
					t.Errorf("after the run %s = %q, want it put back to %q", f, b, cur)
				}
			}
		})
	}
}

func TestParseNodes(t *testing.T) {
	tests := []struct {
		in     string
		want   []Node
		errHas string
	}{
		{"# table\n52:54:00:12:34:56 node01\n\n52:54:00:12:34:57 node02 10.0.0.2/24 10.0.0.1 # rack 1\n", []Node{
			{MAC: "52:54:00:12:34:56", Hostname: "node01", Line: 2},
			{MAC: "52:54:00:12:34:57", Hostname: "node02", Address: "10.0.0.2/24", Gateway: "10.0.0.1", Line: 4}}, ""},
		{"52-54-00-AB-CD-EF n1\n", []Node{{MAC: "52:54:00:ab:cd:ef", Hostname: "n1", Line: 1}}, ""},
		{"52:54:00:12:34:56\n", nil, "line 1: want MAC HOSTNAME"},
		{"zz node\n", nil, "line 1: address zz: invalid MAC"},
		{"52:54:00:12:34:56 bad_name\n", nil, "only letters, digits"},
		{"52:54:00:12:34:56 n 10.0.0.2\n", nil, "address \"10.0.0.2\""},
		{"52:54:00:12:34:56 n 10.0.0.2/24 gw\n", nil, "gateway \"gw\""},
	}
	for _, tc := range tests {
		got, err := ParseNodes(strings.NewReader(tc.in))
		if tc.errHas != "" {
			if err == nil || !strings.Contains(err.Error(), tc.errHas) {
				t.Errorf("ParseNodes(%q) err = %v, want %q", tc.in, err, tc.errHas)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("ParseNodes(%q) = %+v, %v; want %+v", tc.in, got, err, tc.want)
		}
	}
}

func FuzzParseNodes(f *testing.F) {
	f.Add("52:54:00:12:34:56 node01 10.0.0.2/24 10.0.0.1\n")
	f.Fuzz(func(t *testing.T, s string) {
		nodes, err := ParseNodes(strings.NewReader(s))
		if err != nil {
			return
		}
		for _, n := range nodes {
			if checkHostname(n.Hostname) != nil || n.MAC == "" {
				t.Fatalf("accepted bad node %+v", n)
			}
		}
	})
}

func TestChooseHostname(t *testing.T) {
	nodes := []Node{{MAC: "52:54:00:00:00:02", Hostname: "n2", Line: 3}}
	tests := []struct {
		given, dhcp string
		macs        []string
		want        string
	}{
		{"given", "dh", []string{"52:54:00:00:00:02"}, "given"},
		{"", "dh", []string{"52:54:00:00:00:01", "52:54:00:00:00:02"}, "n2"},
		{"", "dh", []string{"52:54:00:00:00:01"}, "dh"},
		{"", "", []string{"52:54:00:00:00:01"}, "node-525400000001"},
	}
	for _, tc := range tests {
		if got, _ := ChooseHostname(tc.given, nodes, tc.macs, tc.dhcp); got != tc.want {
			t.Errorf("ChooseHostname(%q, %v, %q) = %q, want %q", tc.given, tc.macs, tc.dhcp, got, tc.want)
		}
	}
	if got, _ := ChooseHostname("", nil, nil, ""); !strings.HasPrefix(got, "node-") || checkHostname(got) != nil {
		t.Errorf("random hostname %q", got)
	}
}

func TestSetHosts(t *testing.T) {
	tests := []struct{ in, want string }{
		{"127.0.0.1\tlocalhost\n127.0.1.1\tgolden\n::1 localhost ip6-localhost\n", "127.0.0.1\tlocalhost\n127.0.1.1\tnode7\n::1 localhost ip6-localhost\n"},
		{"127.0.0.1 localhost\n::1 localhost\n", "127.0.0.1 localhost\n127.0.1.1\tnode7\n::1 localhost\n"},
		{"", "127.0.0.1\tlocalhost\n127.0.1.1\tnode7\n"},
		{"10.0.0.1 master\n", "10.0.0.1 master\n127.0.1.1\tnode7\n"},
	}
	for _, tc := range tests {
		if got := SetHosts(tc.in, "node7"); got != tc.want {
			t.Errorf("SetHosts(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestFstab(t *testing.T) {
	parts := []partition.Part{
		{Number: 1, FS: "vfat", Mount: "/boot/efi"},
		{Number: 2, FS: "swap"},
		{Number: 3, FS: "ext4", Mount: "/"},
		{Number: 4, FS: "xfs", Mount: "/data"},
		{Number: 5}, // BIOS boot: no filesystem
	}
	info := map[int]*partition.FSInfo{1: {UUID: "AB12-CD34"}, 2: {UUID: "s-u-u"}, 3: {UUID: "r-u-u"}, 4: {UUID: "d-u-u"}}
	old := "# old\nUUID=old / ext4 defaults 0 1\n/dev/sda1 none swap sw 0 0\nproc /proc proc defaults 0 0\nmaster:/home /home nfs defaults 0 0\nLABEL=x /data ext4 defaults 0 2\n"
	want := `# /etc/fstab written by clonecd for this node's new filesystems
# <file system> <mount point> <type> <options> <dump> <pass>
UUID=s-u-u none swap sw 0 0
UUID=r-u-u / ext4 errors=remount-ro 0 1
UUID=d-u-u /data xfs defaults 0 0
UUID=AB12-CD34 /boot/efi vfat umask=0077 0 1
proc /proc proc defaults 0 0
master:/home /home nfs defaults 0 0
`
	if got := Fstab(old, parts, info); got != want {
		t.Errorf("Fstab =\n%s\nwant\n%s", got, want)
	}
}

func TestSplitWords(t *testing.T) {
	tests := []struct {
		in   string
		want []string
		err  bool
	}{
		{"", nil, false},
		{"-O ^metadata_csum", []string{"-O", "^metadata_csum"}, false},
		{`-E "stride=8, stripe_width=16" -m 1`, []string{"-E", "stride=8, stripe_width=16", "-m", "1"}, false},
		{`-L 'a b' x\ y ""`, []string{"-L", "a b", "x y", ""}, false},
		{`"open`, nil, true},
	}
	for _, tc := range tests {
		got, err := splitWords(tc.in)
		if (err != nil) != tc.err || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("splitWords(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

// TestMkfs makes each filesystem kind on a file with the real tools (and
// the Go swap header) and reads it back with blkid.
func TestMkfs(t *testing.T) {
	testenv.NeedTools(t, "blkid", "mke2fs", "mkswap", "mkfs.vfat", "mkfs.xfs")
	tests := []struct {
		p      partition.Part
		goSwap bool
		goFAT  bool
		want   string
	}{
		{p: partition.Part{Number: 1, FS: "ext4", FSLabel: "root", Mkfs: "-O ^metadata_csum -m 1"}, want: `TYPE="ext4"`},
		{p: partition.Part{Number: 2, FS: "swap", FSLabel: "swap0"}, want: `TYPE="swap"`},
		{p: partition.Part{Number: 3, FS: "swap", FSLabel: "goswap"}, goSwap: true, want: `TYPE="swap"`},
		{p: partition.Part{Number: 4, FS: "vfat", FSLabel: "ESP"}, want: `TYPE="vfat"`},
		{p: partition.Part{Number: 6, FS: "vfat", FSLabel: "GOESP"}, goFAT: true, want: `TYPE="vfat"`},
		{p: partition.Part{Number: 5, FS: "xfs", FSLabel: "data"}, want: `TYPE="xfs"`},
	}
	for _, tc := range tests {
		t.Run(tc.p.FS+tc.p.FSLabel, func(t *testing.T) {
			img := testenv.Sparse(t, "fs.img", 320<<20)
			switch {
			case tc.goSwap:
				if err := WriteSwapHeader(img, tc.p.FSLabel); err != nil {
					t.Fatal(err)
				}
			case tc.goFAT:
				if err := MakeFAT16(img, tc.p.FSLabel); err != nil {
					t.Fatal(err)
				}
				if out, err := testenv.Output("fsck.vfat", "-n", img); err != nil {
					t.Errorf("fsck.vfat: %v\n%s", err, out)
				}
			default:
				args, err := MkfsCommand(tc.p, img)
				if err != nil {
					t.Fatal(err)
				}
				testenv.Run(t, args[0], args[1:]...)
			}
			out := testenv.Run(t, "blkid", "-p", img)
			if !strings.Contains(out, tc.want) || !strings.Contains(out, `LABEL="`+tc.p.FSLabel+`"`) {
				t.Fatalf("blkid: %s; want %s and label %s", out, tc.want, tc.p.FSLabel)
			}
			if tc.p.FS == "ext4" {
				if out := testenv.Run(t, "dumpe2fs", "-h", img); strings.Contains(out, "metadata_csum") {
					t.Errorf("mkfs options not applied: %s", out)
				}
			}
			if tc.goSwap {
				if out := testenv.Run(t, "swaplabel", img); !strings.Contains(out, "UUID:") {
					t.Errorf("swaplabel: %s", out)
				}
			}
		})
	}
	if _, err := MkfsCommand(partition.Part{Number: 9, FS: "btrfs"}, "/dev/null"); err == nil || !strings.Contains(err.Error(), `filesystem "btrfs" is not supported`) {
		t.Errorf("btrfs: %v", err)
	}
	if _, err := MkfsCommand(partition.Part{Number: 9, FS: "ext4", Mkfs: `"x`}, "/dev/null"); err == nil {
		t.Errorf("bad quoting accepted")
	}
}

func TestTailBuffer(t *testing.T) {
	tb := newTailBuffer(3)
	for i := 0; i < 5; i++ {
		tb.Write([]byte("line " + string(rune('0'+i)) + "\n"))
	}
	tb.Write([]byte("partial"))
	got := tb.Lines(3)
	if !reflect.DeepEqual(got, []string{"line 3", "line 4", "partial"}) {
		t.Errorf("Lines = %q", got)
	}
	var b bytes.Buffer
	b.WriteString("a\nb\nc\n")
	p := filepath.Join(t.TempDir(), "log")
	os.WriteFile(p, b.Bytes(), 0o644)
	if got := LogTail(p, 2); !reflect.DeepEqual(got, []string{"b", "c"}) {
		t.Errorf("LogTail = %q", got)
	}
}

// TestRunRefuses: outside the cloner (not PID 1) an empty target is never
// filled in by picking a disk (C12), and bad settings stop the run before
// any step.
func TestRunRefuses(t *testing.T) {
	media := os.DirFS(t.TempDir())
	for _, tc := range []struct {
		name string
		cfg  Config
		want string
	}{
		{"no target", Config{Media: media}, "no target disk: outside the clone CD's cloner a disk is never picked automatically; name it (--target DISK|IMAGE)"},
		{"no media", Config{Target: "x.img"}, "no clone media"},
		{"bad break", Config{Media: media, Target: "x.img", Break: "bogus"}, `unknown break step "bogus" (steps: setup disk tune check partition mkfs unpack identity bootloader finish)`},
	} {
		if err := Run(context.Background(), tc.cfg); err == nil || err.Error() != tc.want {
			t.Errorf("%s: Run = %v; want %q", tc.name, err, tc.want)
		}
	}
}

// TestMediaDir: C02, a --media that does not exist says so.
func TestMediaDir(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "node.cpio.gz")
	os.WriteFile(file, nil, 0o644)
	for _, tc := range []struct{ dir, want string }{
		{filepath.Join(dir, "nomedia"), "media " + filepath.Join(dir, "nomedia") + " does not exist"},
		{file, "media " + file + " is not a directory"},
		{dir, ""},
	} {
		_, err := MediaDir(tc.dir)
		if got := fmt.Sprint(err); tc.want == "" && err != nil || tc.want != "" && !strings.HasPrefix(got, tc.want) {
			t.Errorf("MediaDir(%s) = %v; want %q", tc.dir, err, tc.want)
		}
	}
}
