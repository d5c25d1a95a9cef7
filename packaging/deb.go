package packaging

import (
	"bytes"
	"compress/gzip"
	"context"
	"debug/buildinfo"
	"embed"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/goreleaser/nfpm/v2"
	"github.com/goreleaser/nfpm/v2/deb"

	"github.com/clonecd/clonecd/internal/atomicfile"
)

//go:embed nfpm.yaml files
var embedded embed.FS

// Name is the package's name; UnitName its systemd unit.
const (
	Name     = "clonecd"
	UnitName = "clonecd-serve.service"
)

// DefaultMaintainer is the Maintainer field when $DEBFULLNAME and
// $DEBEMAIL are not set.
const DefaultMaintainer = "clonecd maintainers <maintainers@clonecd.invalid>"

// Options says what to package and where.
type Options struct {
	// Binary is the static clonecd to package. It runs on this machine
	// at build time: --version, completion bash|zsh|fish and man.
	Binary string
	// OutDir receives clonecd_VERSION_ARCH.deb.
	OutDir string
	// Revision is the Debian revision ("" = "1").
	Revision string
	// Date is the changelog's date and every file's mtime. Zero:
	// $SOURCE_DATE_EPOCH, else now.
	Date time.Time
	// Maintainer for the control file and the changelog ("" =
	// $DEBFULLNAME <$DEBEMAIL>, else DefaultMaintainer).
	Maintainer string
	// GoRoot and ModCache are where the licenses of the Go standard
	// library and of the linked modules are read ("" = go env).
	GoRoot, ModCache string
}

// Result describes a built package.
type Result struct {
	Path    string // OutDir/clonecd_VERSION_ARCH.deb
	Version string // the Debian version, "1.0-1"
	Arch    string // the Debian architecture, "amd64"
	Tool    string // what the binary's --version says, "1.0"
}

// Build makes the Debian package of o.Binary.
func Build(ctx context.Context, o Options) (Result, error) {
	var res Result
	bin, err := filepath.Abs(o.Binary)
	if err != nil {
		return res, err
	}
	if res.Tool, err = ToolVersion(ctx, bin); err != nil {
		return res, err
	}
	upstream, err := UpstreamVersion(res.Tool)
	if err != nil {
		return res, fmt.Errorf("%s: %w", bin, err)
	}
	if o.Revision == "" {
		o.Revision = "1"
	}
	if res.Version, err = DebVersion(res.Tool, o.Revision); err != nil {
		return res, err
	}
	if res.Arch, err = DebArch(bin); err != nil {
		return res, err
	}
	if o.Date.IsZero() {
		if o.Date, err = sourceDate(); err != nil {
			return res, err
		}
	}
	o.Date = o.Date.UTC().Truncate(time.Second)
	if o.Maintainer == "" {
		o.Maintainer = maintainer()
	}
	if o.GoRoot == "" || o.ModCache == "" {
		if o.GoRoot, o.ModCache, err = goEnv(ctx, o.GoRoot, o.ModCache); err != nil {
			return res, err
		}
	}

	stage, err := os.MkdirTemp("", "clonecd-deb-")
	if err != nil {
		return res, err
	}
	defer os.RemoveAll(stage)
	if err := stageFiles(ctx, bin, stage, res, o); err != nil {
		return res, err
	}

	vars := map[string]string{
		"STAGE": stage, "BINARY": bin, "UPSTREAM": upstream, "REVISION": o.Revision,
		"ARCH": res.Arch, "MAINTAINER": o.Maintainer,
	}
	cfgText, err := embedded.ReadFile("nfpm.yaml")
	if err != nil {
		return res, err
	}
	cfg, err := nfpm.ParseWithEnvMapping(bytes.NewReader(cfgText), func(k string) string { return vars[k] })
	if err != nil {
		return res, fmt.Errorf("nfpm.yaml: %w", err)
	}
	info, err := cfg.Get("deb")
	if err != nil {
		return res, fmt.Errorf("nfpm.yaml: %w", err)
	}
	// nfpm does not expand the scripts' paths.
	for _, p := range []*string{&info.Scripts.PreInstall, &info.Scripts.PostInstall, &info.Scripts.PreRemove, &info.Scripts.PostRemove} {
		*p = os.Expand(*p, func(k string) string { return vars[k] })
	}
	info.MTime = o.Date
	info = nfpm.WithDefaults(info)
	if err := nfpm.Validate(info); err != nil {
		return res, fmt.Errorf("nfpm.yaml: %w", err)
	}

	if err := os.MkdirAll(o.OutDir, 0o755); err != nil {
		return res, err
	}
	res.Path = filepath.Join(o.OutDir, fmt.Sprintf("%s_%s_%s.deb", Name, res.Version, res.Arch))
	f, err := atomicfile.Create(res.Path, 0o644)
	if err != nil {
		return res, err
	}
	defer f.Cleanup()
	if err := deb.Default.Package(info, f); err != nil {
		return res, fmt.Errorf("%s: %w", res.Path, err)
	}
	if err := f.Commit(); err != nil {
		return res, err
	}
	return res, nil
}

// stageFiles writes what the package ships besides the binary into stage:
// files/ (the unit, the conffile, scripts, docs), completion/, man/ and
// doc/.
func stageFiles(ctx context.Context, bin, stage string, res Result, o Options) error {
	err := fs.WalkDir(embedded, "files", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := embedded.ReadFile(p)
		if err != nil {
			return err
		}
		return writeFile(filepath.Join(stage, p), b)
	})
	if err != nil {
		return err
	}
	for shell, name := range map[string]string{"bash": "clonecd", "zsh": "_clonecd", "fish": "clonecd.fish"} {
		out, err := runTool(ctx, bin, "completion", shell)
		if err != nil {
			return err
		}
		if err := writeFile(filepath.Join(stage, "completion", name), out); err != nil {
			return err
		}
	}
	if err := manPages(ctx, bin, stage); err != nil {
		return err
	}
	cr, err := Copyright(bin, o.GoRoot, o.ModCache)
	if err != nil {
		return err
	}
	if err := writeFile(filepath.Join(stage, "doc", "copyright"), cr); err != nil {
		return err
	}
	return writeFile(filepath.Join(stage, "doc", "changelog.Debian.gz"), gz(Changelog(res.Version, res.Tool, o.Maintainer, o.Date)))
}

// manPages runs `clonecd man` and gzips every page it wrote.
func manPages(ctx context.Context, bin, stage string) error {
	src := filepath.Join(stage, "man-src")
	if _, err := runTool(ctx, bin, "man", "-o", src); err != nil {
		return err
	}
	pages, err := filepath.Glob(filepath.Join(src, "*.1"))
	if err != nil {
		return err
	}
	if len(pages) == 0 {
		return fmt.Errorf("%s man -o %s wrote no page", bin, src)
	}
	for _, p := range pages {
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if err := writeFile(filepath.Join(stage, "man", filepath.Base(p)+".gz"), gz(b)); err != nil {
			return err
		}
	}
	return nil
}

// Changelog is the package's changelog.Debian entry.
func Changelog(version, tool, maintainer string, date time.Time) []byte {
	return fmt.Appendf(nil, "%s (%s) unstable; urgency=medium\n\n  * clonecd %s, packaged by make deb.\n\n -- %s  %s\n",
		Name, version, tool, maintainer, date.Format(time.RFC1123Z))
}

// gz compresses at the best level with no name or time in the header, so
// the same input always gives the same bytes (lintian wants man pages and
// changelogs at maximum compression).
func gz(b []byte) []byte {
	var buf bytes.Buffer
	w, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	w.Write(b)
	w.Close()
	return buf.Bytes()
}

func writeFile(p string, b []byte) error {
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	return os.WriteFile(p, b, 0o644)
}

// runTool runs the binary being packaged and returns its standard output.
func runTool(ctx context.Context, bin string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w: %s", bin, strings.Join(args, " "), err, bytes.TrimSpace(stderr.Bytes()))
	}
	return out, nil
}

// ToolVersion returns the version the binary prints with --version
// ("clonecd 1.0" -> "1.0").
func ToolVersion(ctx context.Context, bin string) (string, error) {
	out, err := runTool(ctx, bin, "--version")
	if err != nil {
		return "", err
	}
	f := strings.Fields(string(out))
	if len(f) < 2 || f[0] != Name {
		return "", fmt.Errorf("%s --version: %q is not \"clonecd VERSION\"", bin, bytes.TrimSpace(out))
	}
	return f[1], nil
}

// debArches maps GOARCH to Debian's architecture names.
var debArches = map[string]string{
	"amd64": "amd64", "arm64": "arm64", "386": "i386", "ppc64le": "ppc64el",
	"riscv64": "riscv64", "s390x": "s390x", "loong64": "loong64",
}

// DebArch returns the Debian architecture of a Go binary (from its
// GOARCH build setting).
func DebArch(bin string) (string, error) {
	bi, err := buildinfo.ReadFile(bin)
	if err != nil {
		return "", fmt.Errorf("%s: reading its Go build information: %w", bin, err)
	}
	for _, s := range bi.Settings {
		if s.Key == "GOARCH" {
			if a, ok := debArches[s.Value]; ok {
				return a, nil
			}
			return "", fmt.Errorf("%s: GOARCH %s has no Debian architecture here", bin, s.Value)
		}
	}
	return "", fmt.Errorf("%s: no GOARCH in its build information", bin)
}

// sourceDate is $SOURCE_DATE_EPOCH (reproducible builds), else now.
func sourceDate() (time.Time, error) {
	s := os.Getenv("SOURCE_DATE_EPOCH")
	if s == "" {
		return time.Now(), nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return time.Time{}, fmt.Errorf("SOURCE_DATE_EPOCH=%q: not seconds since 1970", s)
	}
	return time.Unix(n, 0), nil
}

func maintainer() string {
	name, mail := os.Getenv("DEBFULLNAME"), os.Getenv("DEBEMAIL")
	if name != "" && mail != "" {
		return name + " <" + mail + ">"
	}
	return DefaultMaintainer
}

// goEnv fills in GOROOT and GOMODCACHE from `go env` where not given.
func goEnv(ctx context.Context, goroot, modCache string) (string, string, error) {
	out, err := exec.CommandContext(ctx, "go", "env", "GOROOT", "GOMODCACHE").Output()
	if err != nil {
		return "", "", fmt.Errorf("go env GOROOT GOMODCACHE (the licenses of what the binary links): %w", err)
	}
	l := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(l) != 2 {
		return "", "", fmt.Errorf("go env GOROOT GOMODCACHE: %q", out)
	}
	if goroot == "" {
		goroot = l[0]
	}
	if modCache == "" {
		modCache = l[1]
	}
	return goroot, modCache, nil
}
