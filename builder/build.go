package builder

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/clonecd/clonecd/image"
	"github.com/clonecd/clonecd/medium"
	"github.com/clonecd/clonecd/progress"
	"github.com/clonecd/clonecd/trust"
	"github.com/clonecd/clonecd/versions"
)

// Options are the inputs of `clonecd build`.
type Options struct {
	Output string // the ISO file (default clonecd.iso); not a directory
	// Image is node.cpio.gz or node.cpio.zst: read whole (image.Check) and
	// checked against Image+".sha256" when present; the CD carries it
	// under the medium's name for its compression (by its magic).
	Image     string
	Layout    string // node.sfdisk (layout file); may be empty with Kickstart
	Kickstart string // ks.cfg, copied to /ks.cfg
	Kernel    string // default: Root's newest /boot/vmlinuz-*, else the build host's
	Initrd    string // prebuilt initramfs; "" builds one (package initramfs)
	Root      string // golden root: kernel, modules, firmware, programs
	Version   string // MAJOR.MINOR; default: the CLONE_CD_VERSION file in the current directory
	Append    string // extra kernel arguments for every entry
	Nodes     string // identity table, copied to /nodes
	Server    string // network server http(s) URL, into /clonecd.conf and clone-net
	// TLSPin is the server's TLS pin (trust.ParsePins): tls-pin= in
	// /clonecd.conf and clonecd.tls-pin= on the clone-net entry.
	TLSPin string
	// Trust are the public key files (minisign .pub, or directories of
	// them) the cloner trusts: trust.TrustDir/ID.pub in the initramfs
	// built here (refused with a prebuilt Initrd).
	Trust []string
	// Credentials are the nodes' tokens the CD carries, as
	// medium.Credentials (trust.CredentialsInitrd), loaded by every entry
	// after the initramfs; the initramfs itself, which a clone installs
	// on the node, carries none.
	Credentials []trust.Credential
	// Key signs the CD's MANIFEST (the medium's files, medium names);
	// nil: MANIFEST unsigned.
	Key      *trust.SecretKey
	Clonecd  string // the static clonecd binary for /init (default: this one)
	NoUEFI   bool   // no UEFI El Torito entry / ESP
	NoHybrid bool   // no isohybrid MBR
	Timeout  int    // boot menu timeout in seconds, 1 to MaxTimeout; 0: 3
	// SecureBoot makes the UEFI loader Debian's signed chain (shim, signed
	// GRUB; the kernel must be Debian-signed): secureboot.go.
	SecureBoot bool

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
	ImageName     string // the image's name on the CD: medium.ImageGzip or medium.ImageZstd, by its compression
	Image         int64  // bytes of the image
	ImageSHA256   string
	Files         int
	UEFI, Hybrid  bool
	Signed        string   // "signed by key ID" or "unsigned": the CD's MANIFEST
	Trusted       []string // IDs of the keys the initramfs trusts
	Credentials   int      // nodes whose tokens the CD carries
	Boot          []BootEntry
	Took          time.Duration
}

// ESPPath is the UEFI El Torito image (the FAT ESP) on the ISO.
const ESPPath = "boot/grub/efi.img"

// MaxTimeout is the longest boot menu timeout in seconds (isolinux counts
// tenths of a second up to 35996).
const MaxTimeout = 3599

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
		return nil, fmt.Errorf("kernel: %w", err)
	}
	for _, p := range []string{IsolinuxBin, LdlinuxC32} {
		if _, err := os.Stat(p); err != nil {
			return nil, fmt.Errorf("BIOS boot loader: %w (install packages isolinux and syslinux-common)", err)
		}
	}
	if err := checkNodes(o.Nodes); err != nil {
		return nil, err
	}
	trusted, ids, err := trust.InitrdKeys(o.Trust...)
	if err != nil {
		return nil, err
	}
	s.Trusted, s.Credentials = ids, len(o.Credentials)
	layout, err := o.layout(func(w string) { fmt.Fprintf(o.Log, "build: warning: %s\n", w) })
	if err != nil {
		return nil, err
	}
	// node.cpio.gz, read to its end: a random or truncated file never
	// becomes a CD
	say("image %s: reading it whole (gzip or zstd, cpio to the trailer, sha256)", o.Image)
	if s.ImageName, s.Image, s.ImageSHA256, err = checkImage(o.Image, o.Log, o.Quiet); err != nil {
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

	if size, err := st.Link(o.Image, s.ImageName); err != nil {
		return nil, fmt.Errorf("image: %w", err)
	} else if size != s.Image {
		return nil, fmt.Errorf("image %s changed while it was read (%d bytes, now %d)", o.Image, s.Image, size)
	}
	files := map[string][]byte{
		medium.Version:              []byte(o.Version + "\n"),
		medium.SumName(s.ImageName): medium.FormatSum(s.ImageSHA256, s.ImageName),
		medium.Layout:               layout,
		medium.Conf:                 []byte(conf(o)),
	}
	for name, src := range map[string]string{medium.Nodes: o.Nodes, medium.Kickstart: o.Kickstart} {
		if src != "" {
			b, err := os.ReadFile(src)
			if err != nil {
				return nil, err
			}
			files[name] = b
		}
	}

	// boot loaders and menus
	if len(o.Credentials) > 0 {
		img, err := trust.CredentialsInitrd(trust.CredentialsFile, o.Credentials...)
		if err != nil {
			return nil, err
		}
		if err := st.WriteFile(medium.Credentials, img, 0o600); err != nil {
			return nil, err
		}
	}
	menu := Menu{Version: o.Version, Append: o.Append, Server: o.Server, TLSPin: o.TLSPin, Timeout: o.Timeout, Credentials: len(o.Credentials) > 0}
	files["isolinux/isolinux.cfg"] = []byte(menu.Isolinux())
	files["isolinux/boot.msg"] = []byte(menu.IsolinuxMessage())
	for _, p := range []string{IsolinuxBin, LdlinuxC32} {
		if _, err := st.Link(p, "isolinux/"+filepath.Base(p)); err != nil {
			return nil, err
		}
	}
	if s.KernelSize, err = st.Link(o.Kernel, medium.Kernel); err != nil {
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
		sz, err := st.Link(o.Initrd, medium.Initrd)
		if err != nil {
			return nil, fmt.Errorf("initramfs: %w", err)
		}
		s.Initrd = InitrdSummary{Compressed: sz, Prebuilt: true}
	} else {
		say("initramfs: kernel %s, modules from %s", s.KernelVersion, moduleRoot(o.Root))
		p := filepath.Join(st.Dir, medium.Initrd)
		if s.Initrd, err = makeInitrd(o, s.KernelVersion, p, trusted); err != nil {
			return nil, fmt.Errorf("initramfs: %w", err)
		}
	}

	// the medium's manifest, signed with o.Key
	if s.Signed, err = writeManifest(st.Dir, o.Version, medium.File{Name: s.ImageName, Size: s.Image, SHA256: s.ImageSHA256}, o.Key); err != nil {
		return nil, err
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

// defaults fills in the defaults and checks every setting before any
// work: the output is not a directory and its directory exists, the
// version is MAJOR.MINOR, the server an http(s) URL, the timeout in range,
// the inputs exist (each error names the setting).
func (o *Options) defaults() error {
	if o.Output == "" {
		o.Output = "clonecd.iso"
	}
	if st, err := os.Stat(o.Output); err == nil && st.IsDir() {
		return fmt.Errorf("-o %s is a directory: give the ISO's file name (%s)", o.Output, filepath.Join(o.Output, "clonecd.iso"))
	}
	if dir := filepath.Dir(o.Output); dir != "" {
		if st, err := os.Stat(dir); err != nil || !st.IsDir() {
			return fmt.Errorf("-o %s: no directory %s to write it in", o.Output, dir)
		}
	}
	if o.Image == "" {
		return fmt.Errorf("no image: give --image node.cpio.gz")
	}
	if st, err := os.Stat(o.Image); err != nil {
		return fmt.Errorf("image: %w", err)
	} else if !st.Mode().IsRegular() {
		return fmt.Errorf("image %s is not a file", o.Image)
	}
	if o.Layout == "" && o.Kickstart == "" {
		return fmt.Errorf("no layout: give --layout node.sfdisk (or --kickstart ks.cfg)")
	}
	if o.Version == "" {
		b, err := os.ReadFile(medium.Version)
		if err != nil {
			return fmt.Errorf("no version: give --version or create %s: %w", medium.Version, err)
		}
		o.Version = strings.TrimSpace(string(b))
	}
	v, err := versions.ParseVersion(o.Version)
	if err != nil {
		return err
	}
	o.Version = v.String()
	if strings.ContainsAny(o.Append, "\n\r'\"`;$\\{}") {
		return fmt.Errorf("--append %q: kernel arguments may not contain newlines, quotes, ; $ \\ or braces", o.Append)
	}
	if err := checkServer(o.Server); err != nil {
		return err
	}
	if o.TLSPin != "" {
		if _, err := trust.ParsePins(o.TLSPin); err != nil {
			return fmt.Errorf("--tls-pin: %w", err)
		}
	}
	if len(o.Trust) > 0 && o.Initrd != "" {
		return fmt.Errorf("--trust with --initrd: a prebuilt initramfs is used as it is; build it with clonecd initramfs --trust")
	}
	if o.Timeout < 0 || o.Timeout > MaxTimeout {
		return fmt.Errorf("--timeout %d: want 1 to %d seconds", o.Timeout, MaxTimeout)
	}
	if o.Kernel == "" {
		k, err := DefaultKernel(o.Root)
		if err != nil {
			return err
		}
		o.Kernel = k
	}
	if _, err := os.Stat(o.Kernel); err != nil {
		return fmt.Errorf("kernel: %w", err)
	}
	abs, err := filepath.Abs(o.Output)
	if err != nil {
		return err
	}
	o.Output = abs
	return nil
}

// checkServer accepts "" and an http(s) URL with a host, as the network
// cloner fetches from it (clonecd.server=); it goes on the kernel command
// line and into clonecd.conf, so no blanks, quotes or shell characters.
func checkServer(s string) error {
	if s == "" {
		return nil
	}
	u, err := url.Parse(s)
	switch {
	case strings.ContainsAny(s, " \t\n\r'\"`;$\\{}"):
		return fmt.Errorf("--server %q: not a URL (blanks, quotes or shell characters)", s)
	case err != nil:
		return fmt.Errorf("--server %q: %w", s, err)
	case u.Scheme != "http" && u.Scheme != "https", u.Host == "":
		return fmt.Errorf("--server %q: want an http:// or https:// URL with a host (http://HOST:PORT)", s)
	case u.RawQuery != "" || u.Fragment != "" || u.User != nil:
		return fmt.Errorf("--server %q: want http://HOST:PORT[/PATH], without user, query or fragment", s)
	}
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
	if o.TLSPin != "" {
		fmt.Fprintf(&b, "tls-pin=%s\n", o.TLSPin)
	}
	return b.String()
}

// checkImage reads the whole image with image.Check (gzip's CRC and
// length or zstd's checksums, the cpio archive up to its trailer) and,
// when a sha256 file sits beside it, checks that they agree. It returns
// the image's medium name (by its compression), size and sha256. An
// uncompressed archive, or a .gz/.zst name for the other compression, is
// refused.
func checkImage(path string, log io.Writer, quiet bool) (string, int64, string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", 0, "", fmt.Errorf("image: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return "", 0, "", fmt.Errorf("image: %w", err)
	}
	m := progress.New(log, "build: checking "+filepath.Base(path), st.Size(), quiet)
	res, err := image.Check(m.Reader(f))
	m.Done()
	if err != nil {
		return "", 0, "", fmt.Errorf("image %s is not a whole clonecd image, no CD made from it: %w", path, err)
	}
	name := res.Compression.ImageName()
	if name == "" {
		return "", 0, "", fmt.Errorf("image %s is an uncompressed cpio archive: a CD carries a gzip or zstd image (clonecd pack [--compress zstd] makes one)", path)
	}
	if err := medium.CheckImageName(path, name); err != nil {
		return "", 0, "", err
	}
	side := medium.SumName(path)
	b, err := os.ReadFile(side)
	if errors.Is(err, os.ErrNotExist) {
		return name, res.Size, res.SHA256, nil
	}
	if err != nil {
		return "", 0, "", err
	}
	want, err := medium.ParseSum(b, side)
	if err != nil {
		return "", 0, "", err
	}
	if want != res.SHA256 {
		return "", 0, "", fmt.Errorf("%s says %s but %s has sha256 %s: the image or its checksum is damaged", side, want, path, res.SHA256)
	}
	return name, res.Size, res.SHA256, nil
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
