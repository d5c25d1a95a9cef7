package cli

import (
	"fmt"
	"math"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/spf13/pflag"

	"github.com/clonecd/clonecd/fleet"
	"github.com/clonecd/clonecd/image"
	"github.com/clonecd/clonecd/versions"
)

// The flag types below check their value when the command line is
// parsed, so a bad value fails before a command starts (exit 2), and the
// message names the flag: invalid argument "0" for "-j, --jobs" flag:
// want 1-256. Their zero default prints no "(default ...)": the usage
// text says what an unset flag means.

// intFlag is an int flag that refuses values outside [min, max].
type intFlag struct {
	p        *int
	min, max int
}

func (f *intFlag) String() string { return strconv.Itoa(*f.p) }
func (f *intFlag) Type() string   { return "int" }
func (f *intFlag) Set(s string) error {
	n, err := strconv.Atoi(s)
	if err != nil || n < f.min || n > f.max {
		return fmt.Errorf("want %d-%d", f.min, f.max)
	}
	*f.p = n
	return nil
}

// intVarP defines an int flag limited to [min, max].
func intVarP(fs *pflag.FlagSet, p *int, name, short string, value, min, max int, usage string) {
	*p = value
	fs.VarP(&intFlag{p, min, max}, name, short, usage)
}

// durationFlag is a duration flag that refuses values below min.
type durationFlag struct {
	p   *time.Duration
	min time.Duration
}

func (f *durationFlag) String() string { return f.p.String() }
func (f *durationFlag) Type() string   { return "duration" }
func (f *durationFlag) Set(s string) error {
	d, err := time.ParseDuration(s)
	if err != nil || d < f.min {
		if f.min > 0 {
			return fmt.Errorf("want a duration of at least %s, like 90s or 30m", f.min)
		}
		return fmt.Errorf("want a duration like 90s or 30m, not negative")
	}
	*f.p = d
	return nil
}

func durationVar(fs *pflag.FlagSet, p *time.Duration, name string, value, min time.Duration, usage string) {
	*p = value
	fs.Var(&durationFlag{p, min}, name, usage)
}

// autoDuration is a duration flag (>= 0) whose default "auto" is stored
// as -1.
type autoDuration time.Duration

func (d *autoDuration) String() string {
	if *d < 0 {
		return "auto"
	}
	return time.Duration(*d).String()
}
func (d *autoDuration) Type() string { return "duration|auto" }
func (d *autoDuration) Set(s string) error {
	if s == "auto" {
		*d = -1
		return nil
	}
	v, err := time.ParseDuration(s)
	if err != nil || v < 0 {
		return fmt.Errorf("want a duration like 5s, or auto")
	}
	*d = autoDuration(v)
	return nil
}

// rateFlag is a byte rate, a whole number with an optional k, M or G
// (1024-based, as curl's --limit-rate); 0 means no limit.
type rateFlag int64

func (r *rateFlag) String() string { return strconv.FormatInt(int64(*r), 10) }
func (r *rateFlag) Type() string   { return "bytes/s" }
func (r *rateFlag) Set(s string) error {
	mult := int64(1)
	num := s
	if n := len(s); n > 0 {
		switch unicode.ToLower(rune(s[n-1])) {
		case 'k':
			mult, num = 1<<10, s[:n-1]
		case 'm':
			mult, num = 1<<20, s[:n-1]
		case 'g':
			mult, num = 1<<30, s[:n-1]
		}
	}
	v, err := strconv.ParseInt(num, 10, 64)
	if err != nil || v < 0 || v > math.MaxInt64/mult {
		return fmt.Errorf("want bytes per second, 0 or more, like 500k or 10M")
	}
	*r = rateFlag(v * mult)
	return nil
}

// versionFlag is a clone image version, MAJOR.MINOR, stored as written
// canonically ("1.19"); unset is "".
type versionFlag string

func (v *versionFlag) String() string { return string(*v) }
func (v *versionFlag) Type() string   { return "MAJOR.MINOR" }
func (v *versionFlag) Set(s string) error {
	p, err := parseVersion(s)
	if err != nil {
		return err
	}
	*v = versionFlag(p.String())
	return nil
}

// parseVersion is versions.ParseVersion with the expected form always
// said (its errors name the faulty part, "minor: ...").
func parseVersion(s string) (versions.Version, error) {
	v, err := versions.ParseVersion(s)
	if err != nil && !strings.Contains(err.Error(), "MAJOR.MINOR") {
		err = fmt.Errorf("%w (want MAJOR.MINOR, e.g. 1.19)", err)
	}
	return v, err
}

// urlFlag is an http or https URL with a host (a clonecd serve); unset
// is "".
type urlFlag string

func (u *urlFlag) String() string { return string(*u) }
func (u *urlFlag) Type() string   { return "URL" }
func (u *urlFlag) Set(s string) error {
	if err := checkServerURL(s); err != nil {
		return err
	}
	*u = urlFlag(strings.TrimRight(s, "/"))
	return nil
}

// checkServerURL accepts http(s)://HOST[:PORT][/PATH], nothing else.
func checkServerURL(s string) error {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil ||
		u.RawQuery != "" || u.Fragment != "" || strings.ContainsFunc(s, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) {
		return fmt.Errorf("want an http:// or https:// URL like http://10.0.0.1:8080")
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return fmt.Errorf("port %q: want 1-65535", p)
		}
	}
	return nil
}

// listenFlag is serve's HOST:PORT. Every interface must be said
// explicitly (0.0.0.0:PORT or [::]:PORT): ":PORT" is refused.
type listenFlag string

func (l *listenFlag) String() string { return string(*l) }
func (l *listenFlag) Type() string   { return "HOST:PORT" }
func (l *listenFlag) Set(s string) error {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return fmt.Errorf("want HOST:PORT like 10.0.0.1:8080")
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return fmt.Errorf("port %q: want 1-65535 (0: any free port)", port)
	}
	if host == "" {
		return fmt.Errorf("no host: give the address the nodes reach, like 10.0.0.1:%s; 0.0.0.0:%s listens on every interface", port, port)
	}
	*l = listenFlag(s)
	return nil
}

// nodeFlag is a node's host name: letters, digits, '-', '.', '_', not
// starting with '-' or '.' (it ends up in ssh command lines and paths).
type nodeFlag string

func (n *nodeFlag) String() string { return string(*n) }
func (n *nodeFlag) Type() string   { return "NAME" }
func (n *nodeFlag) Set(s string) error {
	if err := checkNodeName(s); err != nil {
		return err
	}
	*n = nodeFlag(s)
	return nil
}

func checkNodeName(s string) error { return fleet.ValidName(s) }

// oneOfFlag is a string flag with a fixed set of values.
type oneOfFlag struct {
	p    *string
	from []string
}

func (f *oneOfFlag) String() string { return *f.p }
func (f *oneOfFlag) Type() string   { return strings.Join(f.from, "|") }
func (f *oneOfFlag) Set(s string) error {
	for _, v := range f.from {
		if s == v {
			*f.p = s
			return nil
		}
	}
	return fmt.Errorf("want one of: %s", strings.Join(f.from, ", "))
}

func oneOfVar(fs *pflag.FlagSet, p *string, name, value string, from []string, usage string) {
	*p = value
	fs.Var(&oneOfFlag{p, from}, name, usage)
}

// patternsFlag is a repeatable rsync-style pattern flag; each pattern is
// compiled when given.
type patternsFlag []string

func (p *patternsFlag) String() string { return strings.Join(*p, ",") }
func (p *patternsFlag) Type() string   { return "PATTERN" }
func (p *patternsFlag) Set(s string) error {
	if _, err := image.ParsePattern(s); err != nil {
		return err
	}
	*p = append(*p, s)
	return nil
}

// listFlag is a repeatable, comma-separable list (--add-module a,b).
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }
func (l *listFlag) Type() string   { return "LIST" }
func (l *listFlag) Set(s string) error {
	for _, x := range strings.Split(s, ",") {
		if x = strings.TrimSpace(x); x != "" {
			*l = append(*l, x)
		}
	}
	return nil
}
