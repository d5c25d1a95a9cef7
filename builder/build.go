package builder

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/clonecd/clonecd/progress"
)

// Options are the inputs of `clonecd build`.
type Options struct {
	Output    string // clonecd.iso
	Image     string // node.cpio.gz; its sha256 is taken from Image+".sha256" when present (and checked)
	Layout    string // node.sfdisk (layout file); may be empty with Kickstart
	Kickstart string // ks.cfg, copied to /ks.cfg
	Kernel    string // default: Root's newest /boot/vmlinuz-*, else the build host's
	Initrd    string // prebuilt initramfs; "" builds one (package initramfs)
	Root      string // golden root: kernel, modules, firmware, programs
	Version   string // default: the CLONE_CD_VERSION file in the current directory
	Append    string // extra kernel arguments for every entry
	Nodes     string // identity table, copied to /nodes
	Server    string // network server URL, into /clonecd.conf and clone-net
	Clonecd   string // the static clonecd binary for /init (default: this one)
	NoUEFI    bool   // no UEFI El Torito entry / ESP
	NoHybrid  bool   // no isohybrid MBR
	// SecureBoot makes the UEFI loader Debian's signed chain (shim, signed
	// GRUB; the kernel must be Debian-signed): secureboot.go.
	SecureBoot bool
	Timeout    int // boot menu timeout in seconds (default 3)

	// Initramfs passes extra settings to the initramfs build.
	Initramfs InitrdOptions

	Log   io.Writer // progress lines (default os.Stderr); the meter draws only on a terminal
	Quiet bool
}

// Summary is what Build made.
type Summary struct {
	Output        string
	Size          int64 // bytes of the ISO file
	Label         string
	Version       string
	Kernel        string // the kernel file used
	KernelVersion string
	KernelSize    int64
	Initrd        InitrdSummary
	Image         int64 // bytes of node.cpio.gz
	ImageSHA256   string
	Files         int
	UEFI, Hybrid  bool
	Boot          []BootEntry
	Took          time.Duration
}

// Media file names (shared contract).
const (
	VersionFile = "CLONE_CD_VERSION"
	ImageFile   = "node.cpio.gz"
	SumFile     = "node.cpio.gz.sha256"
	LayoutFile  = "node.sfdisk"
	NodesFile   = "nodes"
	KSFile      = "ks.cfg"
	ConfFile    = "clonecd.conf"
	ESPPath     = "boot/grub/efi.img"
)

// Boot files from the build host (packages isolinux and syslinux-common).
var (
	IsolinuxBin = "/usr/lib/ISOLINUX/isolinux.bin"
	LdlinuxC32  = "/usr/lib/syslinux/modules/bios/ldlinux.c32"
)

// Build makes the clone CD.
func Build(o Options) (*Summary, error) {
	start := time.Now()
	if o.Log == nil {
		o.Log = os.Stderr
	}
	say := func(format string, a ...any) {
		if !o.Quiet {
			fmt.Fprintf(o.Log, "build: "+format+"\n", a...)
		}
	}
	if err := o.defaults(); err != nil {
		return nil, err
	}
	s := &Summary{Output: o.Output, Version: o.Version, Label: VolumeID(o.Version), Kernel: o.Kernel,
		UEFI: !o.NoUEFI, Hybrid: !o.NoHybrid}
	var err error
	if s.KernelVersion, err = KernelFileVersion(o.Kernel); err != nil {
		return nil, err
	}
	for _, p := range []string{IsolinuxBin, LdlinuxC32} {
		if _, err := os.Stat(p); err != nil {
			return nil, fmt.Errorf("BIOS boot loader: %w (install packages isolinux and syslinux-common)", err)
		}
	}
	if err := checkNodes(o.Nodes); err != nil {
		return nil, err
	}
	layout, err := o.layout(func(w string) { fmt.Fprintf(o.Log, "build: warning: %s\n", w) })
	if err != nil {
		return nil, err
	}

	outDir := filepath.Dir(o.Output)
	st, err := NewStage(outDir)
	if err != nil {
		return nil, err
	}
	defer st.Remove()
	scratch, err := os.MkdirTemp(outDir, ".clonecd-build-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(scratch)

	// node.cpio.gz and its checksum
	say("image %s: checking sha256", o.Image)
	if s.Image, err = st.Link(o.Image, ImageFile); err != nil {
		return nil, fmt.Errorf("image: %w", err)
	}
	if s.ImageSHA256, err = imageSum(o.Image, o.Log, o.Quiet); err != nil {
		return nil, err
	}
	files := map[string][]byte{
		VersionFile: []byte(o.Version + "\n"),
		SumFile:     []byte(s.ImageSHA256 + "  " + ImageFile + "\n"),
		LayoutFile:  layout,
		ConfFile:    []byte(conf(o)),
	}
	for name, src := range map[string]string{NodesFile: o.Nodes, KSFile: o.Kickstart} {
		if src != "" {
			b, err := os.ReadFile(src)
			if err != nil {
				return nil, err
			}
			files[name] = b
		}
	}

	// boot loaders and menus
	menu := Menu{Version: o.Version, Append: o.Append, Server: o.Server, Timeout: o.Timeout}
	files["isolinux/isolinux.cfg"] = []byte(menu.Isolinux())
	files["isolinux/boot.msg"] = []byte(menu.IsolinuxMessage())
	for _, p := range []string{IsolinuxBin, LdlinuxC32} {
		if _, err := st.Link(p, "isolinux/"+filepath.Base(p)); err != nil {
			return nil, err
		}
	}
	if s.KernelSize, err = st.Link(o.Kernel, KernelPath); err != nil {
		return nil, fmt.Errorf("kernel: %w", err)
	}
	if !o.NoUEFI {
		say("UEFI loader: FAT16 ESP %s (Secure Boot: %v)", ESPPath, o.SecureBoot)
		espFiles, isoFiles, err := uefiLoader(o, menu, scratch)
		if err != nil {
			return nil, err
		}
		for name, b := range isoFiles {
			files[name] = b
		}
		esp := filepath.Join(st.Dir, ESPPath)
		if err := os.MkdirAll(filepath.Dir(esp), 0o755); err != nil {
			return nil, err
		}
		if _, err := WriteESP(esp, espFiles); err != nil {
			return nil, err
		}
	}
	for name, b := range files {
		if err := st.WriteFile(name, b, 0o644); err != nil {
			return nil, err
		}
	}

	// initramfs
	if o.Initrd != "" {
		say("initramfs: using %s", o.Initrd)
		sz, err := st.Link(o.Initrd, InitrdPath)
		if err != nil {
			return nil, fmt.Errorf("initramfs: %w", err)
		}
		s.Initrd = InitrdSummary{Compressed: sz, Prebuilt: true}
	} else {
		say("initramfs: kernel %s, modules from %s", s.KernelVersion, moduleRoot(o.Root))
		p := filepath.Join(st.Dir, InitrdPath)
		if s.Initrd, err = makeInitrd(o, s.KernelVersion, p); err != nil {
			return nil, fmt.Errorf("initramfs: %w", err)
		}
	}

	// the ISO
	files2, total, err := checkTree(st.Dir)
	if err != nil {
		return nil, err
	}
	say("ISO %s: %d files, %s, label %s", o.Output, files2, progress.Bytes(total), s.Label)
	m := progress.New(o.Log, "build: writing "+filepath.Base(o.Output), total, o.Quiet)
	var last int64
	iso := ISOOptions{VolumeID: s.Label, BIOSBoot: "isolinux/isolinux.bin", BootCatalog: "isolinux/boot.cat",
		Hybrid: !o.NoHybrid, Progress: func(n int64) { m.Add(n-last, 0); last = n }}
	if !o.NoUEFI {
		iso.EFIBoot = ESPPath
	}
	info, err := WriteISO(st.Dir, o.Output, iso)
	m.Done()
	if err != nil {
		return nil, err
	}
	s.Size, s.Files, s.Boot = info.Size, info.Files, info.Boot
	s.Took = time.Since(start)
	return s, nil
}

func moduleRoot(root string) string {
	if root == "" {
		return "the build host"
	}
	return root
}

func (o *Options) defaults() error {
	if o.Output == "" {
		o.Output = "clonecd.iso"
	}
	if o.Image == "" {
		return fmt.Errorf("no image: give --image node.cpio.gz")
	}
	if o.Layout == "" && o.Kickstart == "" {
		return fmt.Errorf("no layout: give --layout node.sfdisk (or --kickstart ks.cfg)")
	}
	if o.Version == "" {
		b, err := os.ReadFile(VersionFile)
		if err != nil {
			return fmt.Errorf("no version: give --version or create %s: %w", VersionFile, err)
		}
		o.Version = strings.TrimSpace(string(b))
	}
	if o.Version == "" || strings.ContainsAny(o.Version, " \t\r\n") {
		return fmt.Errorf("bad version %q: one word such as 1.19", o.Version)
	}
	if strings.ContainsAny(o.Append, "\n\r'\"`;$\\{}") {
		return fmt.Errorf("--append %q: kernel arguments may not contain newlines, quotes, ; $ \\ or braces", o.Append)
	}
	if strings.ContainsAny(o.Server, " \t\n\r'\"`;$\\{}") {
		return fmt.Errorf("--server %q: not a URL", o.Server)
	}
	if o.Kernel == "" {
		k, err := DefaultKernel(o.Root)
		if err != nil {
			return err
		}
		o.Kernel = k
	}
	abs, err := filepath.Abs(o.Output)
	if err != nil {
		return err
	}
	o.Output = abs
	return nil
}

// layout returns the layout file's bytes, checked by the partition
// package's parser (so a bad layout fails here, not on every node).
func (o *Options) layout(warn func(string)) ([]byte, error) {
	if o.Layout == "" {
		return layoutFromKickstart(o.Kickstart, warn)
	}
	b, err := os.ReadFile(o.Layout)
	if err != nil {
		return nil, fmt.Errorf("layout: %w", err)
	}
	if err := checkLayout(o.Layout, b); err != nil {
		return nil, err
	}
	return b, nil
}

func conf(o Options) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# written by clonecd build\nversion=%s\n", o.Version)
	if o.Server != "" {
		fmt.Fprintf(&b, "server=%s\n", o.Server)
	}
	return b.String()
}

// imageSum computes node.cpio.gz's sha256 and, when a sha256sum-format
// file sits beside it, checks that they agree.
func imageSum(image string, log io.Writer, quiet bool) (string, error) {
	f, err := os.Open(image)
	if err != nil {
		return "", err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return "", err
	}
	m := progress.New(log, "build: sha256 "+filepath.Base(image), st.Size(), quiet)
	h := sha256.New()
	if _, err := io.Copy(h, m.Reader(f)); err != nil {
		return "", fmt.Errorf("reading %s: %w", image, err)
	}
	m.Done()
	sum := hex.EncodeToString(h.Sum(nil))
	side := image + ".sha256"
	b, err := os.ReadFile(side)
	if errors.Is(err, os.ErrNotExist) {
		return sum, nil
	}
	if err != nil {
		return "", err
	}
	want, err := ParseSum(b)
	if err != nil {
		return "", fmt.Errorf("%s: %w", side, err)
	}
	if want != sum {
		return "", fmt.Errorf("%s says %s but %s has sha256 %s: the image or its checksum is damaged", side, want, image, sum)
	}
	return sum, nil
}

// ParseSum reads the first checksum of a sha256sum-format file.
func ParseSum(b []byte) (string, error) {
	sc := bufio.NewScanner(bytes.NewReader(b))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Fields(line)
		sum := strings.ToLower(f[0])
		if _, err := hex.DecodeString(sum); err != nil || len(sum) != 64 {
			return "", fmt.Errorf("line %d: %q is not a sha256 checksum", n, f[0])
		}
		return sum, nil
	}
	return "", fmt.Errorf("no checksum")
}

// checkNodes checks the identity table: `MAC HOSTNAME [ADDRESS/PREFIX
// [GATEWAY]]` lines and # comments.
func checkNodes(p string) error {
	if p == "" {
		return nil
	}
	b, err := os.ReadFile(p)
	if err != nil {
		return fmt.Errorf("nodes table: %w", err)
	}
	return CheckNodes(p, b)
}

// CheckNodes validates an identity table's text; name is for messages.
func CheckNodes(name string, b []byte) error {
	sc := bufio.NewScanner(bytes.NewReader(b))
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		if len(f) < 2 || len(f) > 4 {
			return fmt.Errorf("%s:%d: want MAC HOSTNAME [ADDRESS/PREFIX [GATEWAY]], got %d fields", name, n, len(f))
		}
		if !isMAC(f[0]) {
			return fmt.Errorf("%s:%d: %q is not a MAC address (aa:bb:cc:dd:ee:ff)", name, n, f[0])
		}
		if len(f) >= 3 && !strings.Contains(f[2], "/") {
			return fmt.Errorf("%s:%d: address %q needs a /PREFIX", name, n, f[2])
		}
	}
	return sc.Err()
}

func isMAC(s string) bool {
	p := strings.FieldsFunc(s, func(r rune) bool { return r == ':' || r == '-' })
	if len(p) != 6 {
		return false
	}
	for _, x := range p {
		if len(x) != 2 {
			return false
		}
		if _, err := hex.DecodeString(x); err != nil {
			return false
		}
	}
	return true
}
