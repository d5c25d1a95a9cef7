// Package browser drives a real, headless Chromium (Debian's chromium,
// installed by scripts/deps.sh) from tests with chromedp: the fleet
// page's tests click and read it, and any test can save a screenshot of
// a URL as a test artifact (Screenshot: the e2e reclone test's shot of
// the fleet page).
//
// Chromium starts with --headless --no-sandbox --disable-gpu
// --disable-background-networking --disable-component-update
// --disable-sync --no-first-run and a profile under the test's temporary
// directory: it reaches nothing but the URLs a test gives it. Only tests
// import this package, so chromedp is not in the clonecd binary.
//
// Screenshots go to ArtifactsDir: $CLONECD_ARTIFACTS, else build/artifacts
// under the repository, made if needed; they are kept after the test so
// that a run (make test) can be looked at afterwards.
package browser
