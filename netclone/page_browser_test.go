package netclone

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/clonecd/clonecd/internal/browser"
	"github.com/clonecd/clonecd/internal/testenv"
	"github.com/clonecd/clonecd/trust"
)

// serveLogged runs the real `clonecd serve` on a free loopback port with
// args (plain HTTP: the browser does not know the store's certificate)
// and returns its URL and its output.
func serveLogged(t *testing.T, dir string, args ...string) (string, *testenv.SyncBuffer) {
	t.Helper()
	addr := freePort(t)
	cmd := exec.Command(testenv.Clonecd(t), append([]string{"serve", "--dir", dir, "--listen", addr, "--plain-http"}, args...)...)
	out := &testenv.SyncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			t.Logf("clonecd serve:\n%s", out.String())
		}
	})
	waitFor(t, 20*time.Second, func() bool { return strings.Contains(out.String(), "at most") })
	return "http://" + addr, out
}

// page drives one tab of a headless Chromium for a test.
type page struct {
	t   *testing.T
	ctx context.Context
}

func (p page) open(url string) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, 20*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, chromedp.Navigate(url)); err != nil {
		p.t.Fatalf("opening %s: %v", url, err)
	}
}

// wait waits until the JavaScript expression js is true.
func (p page) wait(what, js string) {
	p.t.Helper()
	defer func(start time.Time) { p.t.Logf("%s: %s", what, time.Since(start).Round(time.Millisecond)) }(time.Now())
	if err := browser.WaitFor(p.ctx, what, js, 15*time.Second); err != nil {
		got, _ := browser.Eval[string](p.ctx, `document.body ? document.body.innerText.slice(0, 3000) : ""`)
		browser.Save(p.t, p.ctx, "failed-"+strings.ReplaceAll(p.t.Name(), "/", "-")+".png")
		p.t.Fatalf("%v\npage text:\n%s", err, got)
	}
}

func (p page) eval(js string) string {
	p.t.Helper()
	s, err := browser.Eval[string](p.ctx, js)
	if err != nil {
		p.t.Fatalf("%s: %v", js, err)
	}
	return s
}

func (p page) click(sel string) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, 10*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(sel))); err != nil {
		p.t.Fatalf("clicking %s: %v", sel, err)
	}
}

func (p page) typeInto(sel, text string) {
	p.t.Helper()
	p.eval(fmt.Sprintf(`document.querySelector(%q).value = '', ''`, sel))
	if text != "" {
		ctx, cancel := context.WithTimeout(p.ctx, 10*time.Second)
		defer cancel()
		if err := chromedp.Do(ctx, chromedp.SendKeys(chromedp.CSS(sel), text)); err != nil {
			p.t.Fatalf("typing into %s: %v", sel, err)
		}
	} else { // no key, no input event: send one
		p.eval(fmt.Sprintf(`document.querySelector(%q).dispatchEvent(new Event('input')), ''`, sel))
	}
}

// row is the JavaScript for node's row in the fleet table.
func row(node string) string { return fmt.Sprintf(`document.querySelector('tr[data-node=%q]')`, node) }

// TestFleetPageInBrowser: the real `clonecd serve` and a headless
// Chromium. A node reporting through the real Reporter shows its bar
// move (10%, then 60%); a failed node shows its error and its log, as
// text even where they look like HTML; a node's page shows its log as
// it grows and its history; the nodeset and state filters hide rows;
// the read-only page has no actions, the admin page promotes and rolls
// back after a confirmation; ?poll=1 updates without the event stream.
// Screenshots are saved in the test artifacts (browser.ArtifactsDir).
func TestFleetPageInBrowser(t *testing.T) {
	dir, _, _ := store(t, 64<<10)
	if _, err := openStore(t, dir).Promote("1.20", false); err != nil { // the store's history starts
		t.Fatal(err)
	}
	url, serveLog := serveLogged(t, dir)
	secret, err := trust.LoadSecret(dir) // made by serve's first start
	if err != nil {
		t.Fatal(err)
	}
	credential := func(user string) trust.Credential {
		c, err := secret.Credential(user)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	p := page{t, browser.New(t)}
	adm := credential(trust.AdminUser)
	if err := browser.Authorize(p.ctx, adm.User, adm.Token); err != nil {
		t.Fatal(err)
	}

	p.open(url + "/")
	p.wait("the event stream", `document.querySelector('#conn').dataset.state === 'live'`)
	p.wait("the versions", `document.querySelectorAll('#version-rows tr').length === 2`)
	if got := p.eval(`document.querySelector('#current').textContent`); got != "current 1.20" {
		t.Errorf("header says %q; want current 1.20", got)
	}
	if n := p.eval(`String(document.querySelectorAll('#node-actions, button[data-action], #sel-all').length)`); n != "0" {
		t.Errorf("the read-only page has %s action controls", n)
	}

	// A version's image served: its row says so, the other's does not.
	req, _ := http.NewRequest(http.MethodGet, url+"/v/1.19/node.cpio.gz", nil)
	req.SetBasicAuth(adm.User, adm.Token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	served := func(v string) string {
		return `document.querySelector('#version-rows tr[data-version="` + v + `"] td.served').textContent`
	}
	p.wait("the bytes served per version", served("1.19")+` === '64.0 KiB' && `+served("1.20")+` === '–'`)

	// s001 clones: its bar moves.
	r := NewReporter(url, "s001")
	r.Access = Access{Credential: credential("s001")}
	r.Version = "1.20"
	r.Begin()
	r.Step("partition")
	r.Step("unpack")
	r.Progress(10<<20, 100<<20)
	p.wait("s001 at 10%", row("s001")+`?.querySelector('.bar').getAttribute('aria-valuenow') === '10'`)
	r.lastSent = time.Time{} // the next progress report goes at once
	r.Progress(60<<20, 100<<20)
	p.wait("s001 at 60%", row("s001")+`.querySelector('.bar').getAttribute('aria-valuenow') === '60'`)
	if got := p.eval(row("s001") + `.querySelector('.bar .label').textContent`); got != "60%" {
		t.Errorf("s001's bar says %q; want 60%%", got)
	}
	if got := p.eval(row("s001") + `.querySelector('.state').textContent`); got != "cloning" {
		t.Errorf("s001's state %q; want cloning", got)
	}

	// s002 fails; its error and log look like HTML and must stay text.
	logFile := filepath.Join(t.TempDir(), "clone.log")
	os.WriteFile(logFile, []byte("partition ok\n<script>document.title='pwned'</script>\nunpack: write /dev/sda2: no space left\n"), 0o644)
	f := NewReporter(url, "s002")
	f.Access = Access{Credential: credential("s002")}
	f.Version, f.LogFile = "1.20", logFile
	f.Begin()
	f.Step("unpack")
	f.Done(stepError{"unpack", errors.New("disk <b>full</b> on /dev/sda2")})
	p.wait("s002 failed", row("s002")+`?.dataset.state === 'failed'`)
	if got := p.eval(row("s002") + `.querySelector('td.err').textContent`); got != "disk <b>full</b> on /dev/sda2" {
		t.Errorf("s002's error cell says %q", got)
	}
	if n := p.eval(`String(document.querySelectorAll('td.err b, #log script').length)`); n != "0" {
		t.Errorf("a node's error became markup (%s elements)", n)
	}
	if href := p.eval(row("s002") + `.querySelector('td.log a').getAttribute('href')`); href != "/node/s002#log" {
		t.Errorf("s002's log link %q", href)
	}
	browser.Save(t, p.ctx, "fleet-page.png")

	// Filters: a nodeset, then a state.
	p.typeInto("#f-nodes", "s[002-003]")
	p.wait("the nodeset filter", row("s001")+`.hidden && !`+row("s002")+`.hidden`)
	p.typeInto("#f-nodes", "s[001-")
	p.wait("the nodeset error", `document.querySelector('#f-error').textContent.includes('s[001-')`)
	p.typeInto("#f-nodes", "")
	p.click(`button.count[data-state="failed"]`)
	p.wait("the state filter", row("s001")+`.hidden && !`+row("s002")+`.hidden`)
	if got := p.eval(`location.search`); got != "?state=failed" {
		t.Errorf("the filter is not in the URL: %q", got)
	}

	// s002's page: its error, its log as it grows, its history.
	p.open(url + "/node/s002")
	p.wait("s002's log", `document.querySelector('#log').textContent.includes('no space left')`)
	if got := p.eval(`document.querySelector('#n-error').textContent`); got != "disk <b>full</b> on /dev/sda2" {
		t.Errorf("s002's page: error %q", got)
	}
	if got := p.eval(`document.title`); got != "s002 · clonecd" {
		t.Errorf("the log's script ran: title %q", got)
	}
	p.wait("s002's history", `document.querySelector('#history-rows tr')?.dataset.result === 'failed'`)
	browser.Save(t, p.ctx, "node-failed.png")
	os.WriteFile(logFile, []byte("retrying\n"), 0o644)
	f.Attempt = 2
	f.Begin() // a new attempt: a new log
	f.Step("partition")
	p.wait("s002's new log", `document.querySelector('#log').textContent === 'retrying\n'`)
	os.WriteFile(logFile, []byte("retrying\npartition ok, unpacking\n"), 0o644)
	f.Step("unpack") // the cloner uploads its log at each step
	p.wait("s002's log growing", `document.querySelector('#log').textContent === 'retrying\npartition ok, unpacking\n'`)
	f.Done(nil)
	p.wait("s002 done in its history", `document.querySelectorAll('#history-rows tr').length === 2 && document.querySelector('#history-rows tr').dataset.result === 'done'`)

	// The admin page: promote 1.19, then roll back, each confirmed.
	p.open(url + "/admin/")
	p.wait("the admin page", `document.querySelectorAll('#version-rows tr').length === 2 && document.querySelector('#conn').dataset.state === 'live'`)
	p.click(`tr[data-version="1.19"] button[data-action="Promote…"]`)
	p.wait("the confirmation", `document.querySelector('#confirm').open`)
	if got := p.eval(`document.querySelector('#confirm-title').textContent`); got != "Make 1.19 current?" {
		t.Errorf("confirmation %q", got)
	}
	p.click("#confirm-ok")
	p.wait("1.19 current", `document.querySelector('tr[data-version="1.19"]').dataset.status === 'current' && document.querySelector('#current').textContent === 'current 1.19'`)
	if cur, err := openStore(t, dir).Current(); err != nil || cur.Version != "1.19" {
		t.Fatalf("after promote on the page, current is %v, %v", cur, err)
	}
	p.click(`tr[data-version="1.19"] button[data-action="Rollback…"]`)
	p.wait("the confirmation", `document.querySelector('#confirm').open`)
	p.typeInto("#confirm-reason", "hangs at boot")
	p.click("#confirm-cancel") // changed our mind: nothing happens
	time.Sleep(300 * time.Millisecond)
	if cur, _ := openStore(t, dir).Current(); cur.Version != "1.19" {
		t.Fatalf("a cancelled rollback rolled back")
	}
	p.click(`tr[data-version="1.19"] button[data-action="Rollback…"]`)
	p.wait("the confirmation", `document.querySelector('#confirm').open`)
	p.typeInto("#confirm-reason", "hangs at boot")
	p.click("#confirm-ok")
	p.wait("1.19 bad", `document.querySelector('tr[data-version="1.19"]').dataset.status === 'bad' && document.querySelector('tr[data-version="1.20"]').dataset.status === 'current'`)
	if e, err := openStore(t, dir).Get("1.19"); err != nil || !e.Bad || e.BadReason != "hangs at boot" {
		t.Fatalf("1.19 after rollback on the page: %+v, %v", e, err)
	}
	p.wait("the toast", `document.querySelector('#toast').textContent === 'marked 1.19 bad; current version is now 1.20'`)
	browser.Save(t, p.ctx, "fleet-admin.png")

	// Without the event stream, the page polls.
	p.open(url + "/?poll=1")
	p.wait("polling", `document.querySelector('#conn').dataset.state === 'polling' && `+row("s001")+` !== null`)
	r.lastSent = time.Time{}
	r.Progress(90<<20, 100<<20)
	p.wait("s001 at 90% by polling", row("s001")+`.querySelector('.bar').getAttribute('aria-valuenow') === '90'`)

	// The log has a line per request and per event.
	for _, want := range []string{
		"msg=request method=GET path=/api/events status=200",
		"msg=node node=s001 state=cloning op=clone step=unpack version=1.20",
		"msg=node node=s002 state=failed op=clone step=unpack version=1.20 error=",
		"msg=action action=promote by=admin",
		"msg=version event=current version=1.19 was=1.20",
		"msg=version event=bad version=1.19 reason=\"hangs at boot\"",
	} {
		if !strings.Contains(serveLog.String(), want) {
			t.Errorf("serve's log lacks %q", want)
		}
	}
	if n := strings.Count(serveLog.String(), "msg=request method=POST path=/api/nodes/s001 node=s001 status=200"); n < 4 {
		t.Errorf("serve logged %d of s001's reports; want a line each", n)
	}
}
