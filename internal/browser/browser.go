package browser

import (
	"context"
	"encoding/base64"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/clonecd/clonecd/internal/testenv"
)

// Find returns the path of Chromium, or "" when none is installed.
func Find() string {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// Size of the browser's window, in CSS pixels.
const (
	Width  = 1400
	Height = 900
)

// New starts a headless Chromium for the test and returns the context
// chromedp.Run drives it with (one tab). The browser is stopped when the
// test ends. Without Chromium the test is skipped (failed under
// CLONECD_STRICT=1).
func New(t testing.TB) context.Context {
	t.Helper()
	bin := Find()
	if bin == "" {
		testenv.Missing(t, "chromium (run `make deps`)")
	}
	var out strings.Builder
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(bin),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("disable-extensions", true),
		// the tests' servers have self-signed certificates (clonecd
		// serve's): the pin is what clients check, a browser cannot
		chromedp.Flag("ignore-certificate-errors", true),
		chromedp.UserDataDir(filepath.Join(t.TempDir(), "chromium")),
		chromedp.WindowSize(Width, Height),
		chromedp.CombinedOutput(&out),
	)
	ctx, cancel := chromedp.NewContext(alloc)
	t.Cleanup(func() {
		cancel()
		cancelAlloc()
	})
	// The first Do starts the browser, tied to the context it is given:
	// ctx itself, not one with a timeout.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("starting %s: %v\n%s", bin, err, out.String())
	}
	return ctx
}

// ArtifactsDir is where tests keep what a person looks at afterwards
// (screenshots): $CLONECD_ARTIFACTS, else build/artifacts under the
// repository. It is made if needed.
func ArtifactsDir(t testing.TB) string {
	t.Helper()
	dir := os.Getenv("CLONECD_ARTIFACTS")
	if dir == "" {
		dir = filepath.Join(testenv.RepoRoot(), "build", "artifacts")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatalf("artifacts directory: %v", err)
	}
	return dir
}

// Save writes a PNG of the whole page in ctx's tab to ArtifactsDir/name
// and returns its path.
func Save(t testing.TB, ctx context.Context, name string) string {
	t.Helper()
	sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	png, err := chromedp.Run(sctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	p := filepath.Join(ArtifactsDir(t), name)
	if err := os.WriteFile(p, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", p)
	return p
}

// Screenshot opens url in a new headless Chromium as user (HTTP Basic
// with token; "" for none), waits until the CSS selector ready is
// visible ("": the body) and the page has settled, and saves a PNG of the
// whole page as ArtifactsDir/name; it returns the file's path. For the
// fleet page, ready `#conn[data-state="live"]` waits until the page
// follows the server's events. Errors are returned, not fatal: a
// screenshot is an artifact, taken in the middle of longer tests.
func Screenshot(t testing.TB, url, name, ready, user, token string) (string, error) {
	t.Helper()
	ctx := New(t)
	if user != "" {
		if err := Authorize(ctx, user, token); err != nil {
			return "", err
		}
	}
	if ready == "" {
		ready = "body"
	}
	wctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	if err := chromedp.Do(wctx, chromedp.Navigate(url), chromedp.WaitVisible(chromedp.CSS(ready)), chromedp.Sleep(500*time.Millisecond)); err != nil {
		return "", fmt.Errorf("opening %s (waiting for %s): %w", url, ready, err)
	}
	return Save(t, ctx, name), nil
}

// Authorize makes every request of ctx's tab carry user's credential
// (HTTP Basic, as clonecd serve wants on every route), the fleet page's
// event stream included.
func Authorize(ctx context.Context, user, token string) error {
	auth := "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+token))
	if _, err := chromedp.Call(ctx, network.Enable, network.EnableParams{}); err != nil {
		return err
	}
	_, err := chromedp.Call(ctx, network.SetExtraHTTPHeaders, network.SetExtraHTTPHeadersParams{Headers: network.Headers{"Authorization": auth}})
	return err
}

// WaitFor waits until the JavaScript expression js is true (a truthy
// value) in ctx's page, at most timeout; the error says what was awaited.
func WaitFor(ctx context.Context, what, js string, timeout time.Duration) error {
	_, err := chromedp.Run(ctx, chromedp.Poll[chromedp.Void](js,
		chromedp.WithPollingTimeout(timeout), chromedp.WithPollingInterval(100*time.Millisecond)))
	if err != nil {
		return fmt.Errorf("waiting %s for %s: %w", timeout, what, err)
	}
	return nil
}

// Eval evaluates the JavaScript expression js in ctx's page.
func Eval[T any](ctx context.Context, js string) (T, error) {
	return chromedp.Run(ctx, chromedp.Evaluate[T](js))
}
