package web_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/chromedp/chromedp"
	"go.uber.org/zap/zaptest"

	"github.com/s3connector/s3connector/admin"
	"github.com/s3connector/s3connector/config"
	"github.com/s3connector/s3connector/connector"
	"github.com/s3connector/s3connector/connector/miniotest"
	"github.com/s3connector/s3connector/internal/proctest"
	"github.com/s3connector/s3connector/store"
	"github.com/s3connector/s3connector/web"
)

func TestMain(m *testing.M) {
	code := m.Run()
	closeBrowser()
	miniotest.CloseShared()
	proctest.Cleanup()
	os.Exit(code)
}

const principalARN = "arn:aws:iam::049579744830:root"

// ---- The browser --------------------------------------------------------

// chromiumPath finds Debian's chromium (which `make tools` installs), or
// another Chrome on PATH.
func chromiumPath() string {
	if p := os.Getenv("S3CONNECTOR_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// One browser per test binary, a tab per test.
var (
	browserMu     sync.Mutex
	browserCtx    context.Context
	browserCancel []context.CancelFunc
	browserDir    string
)

func closeBrowser() {
	browserMu.Lock()
	defer browserMu.Unlock()
	for i := len(browserCancel) - 1; i >= 0; i-- {
		browserCancel[i]()
	}
	browserCancel = nil
	if browserDir != "" {
		// Chromium's helpers can write in the profile for a moment after
		// the browser exits.
		for range 50 {
			if err := os.RemoveAll(browserDir); err == nil {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
}

// tab opens a new tab of the shared headless Chromium. Without Chromium the
// test is skipped, unless CI is set: in CI the browser test must run.
func tab(t *testing.T) context.Context {
	t.Helper()
	path := chromiumPath()
	if path == "" {
		const hint = "no Chromium found (chromium, chromium-browser, google-chrome or $S3CONNECTOR_CHROMIUM): run `make tools`, which installs Debian's chromium package"
		if os.Getenv("CI") != "" {
			t.Fatal(hint + " (CI is set: the browser test must run)")
		}
		t.Skip(hint)
	}
	browserMu.Lock()
	defer browserMu.Unlock()
	if browserCtx == nil {
		dir, err := os.MkdirTemp("", "s3connector-chromium-")
		if err != nil {
			t.Fatal(err)
		}
		browserDir = dir
		alloc, cancel := chromedp.NewExecAllocator(context.Background(),
			chromedp.ExecPath(path),
			chromedp.Flag("headless", true),
			chromedp.Flag("no-sandbox", true),
			chromedp.Flag("disable-gpu", true),
			chromedp.Flag("disable-quic", true),
			chromedp.NoFirstRun,
			chromedp.NoDefaultBrowserCheck,
			chromedp.Flag("disable-background-networking", true),
			chromedp.Flag("disable-component-update", true),
			chromedp.Flag("disable-sync", true),
			chromedp.Flag("disable-dev-shm-usage", true),
			chromedp.Flag("no-proxy-server", true),
			chromedp.Flag("hide-scrollbars", true),
			chromedp.Flag("mute-audio", true),
			chromedp.UserDataDir(dir),
			chromedp.WindowSize(1280, 900),
		)
		browserCancel = append(browserCancel, cancel)
		ctx, cancel := chromedp.NewContext(alloc)
		browserCancel = append(browserCancel, cancel)
		// Start the browser without a deadline: it lives for the binary.
		if err := chromedp.Do(ctx); err != nil {
			closeBrowser()
			t.Fatalf("start %s: %v", path, err)
		}
		browserCtx = ctx
	}
	ctx, cancel := chromedp.NewContext(browserCtx)
	t.Cleanup(cancel)
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("open a tab: %v", err)
	}
	return ctx
}

// console collects the tab's console messages; problems are exceptions,
// errors and CSP reports.
type console struct {
	mu   sync.Mutex
	msgs []chromedp.ConsoleMessage
	done chan struct{}
}

func watchConsole(t *testing.T, ctx context.Context) *console {
	c := &console{done: make(chan struct{})}
	ctx, cancel := context.WithCancel(ctx)
	msgs := chromedp.Console(ctx)
	go func() {
		defer close(c.done)
		for m, err := range msgs {
			if err != nil {
				return
			}
			c.mu.Lock()
			c.msgs = append(c.msgs, m)
			c.mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		cancel()
		<-c.done
	})
	return c
}

func (c *console) problems() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for _, m := range c.msgs {
		if m.IsException() || m.Type == chromedp.ConsoleError || strings.Contains(m.Text, "Content Security Policy") || strings.Contains(m.Text, "Trusted Type") {
			// A refused request (400 of the bad form, 409 of an activate)
			// is the page's business, shown to the user; the browser logs
			// every non-2xx fetch as a network error.
			if m.Source == "network" && strings.Contains(m.Text, "status of 4") {
				continue
			}
			out = append(out, m.String())
		}
	}
	return out
}

// page drives one tab: each step waits for the page to show what the user
// should see, and fails the test (with a screenshot and the page's text) when
// it does not come.
type page struct {
	t       *testing.T
	ctx     context.Context
	dir     string
	n       int
	console *console
}

func newPage(t *testing.T, ctx context.Context) *page {
	dir := os.Getenv("S3CONNECTOR_SCREENSHOTS")
	if dir == "" {
		dir = t.TempDir()
	} else {
		dir = filepath.Join(dir, t.Name())
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return &page{t: t, ctx: ctx, dir: dir, console: watchConsole(t, ctx)}
}

const stepTimeout = 30 * time.Second

// do runs actions with the step timeout.
func (p *page) do(what string, actions ...chromedp.Action[chromedp.Void]) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, stepTimeout)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		p.fail("%s: %v", what, err)
	}
}

// eval evaluates a JavaScript expression (DevTools runs it outside the
// page's CSP) and decodes its JSON value.
func eval[T any](p *page, expr string) T {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, stepTimeout)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		p.fail("evaluate %s: %v", expr, err)
	}
	return v
}

// waitFor polls a JavaScript condition until it is true.
func (p *page) waitFor(what, cond string) {
	p.t.Helper()
	deadline := time.Now().Add(stepTimeout)
	for {
		ctx, cancel := context.WithTimeout(p.ctx, 5*time.Second)
		ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool]("!!("+cond+")"))
		cancel()
		if err == nil && ok {
			return
		}
		if time.Now().After(deadline) {
			p.fail("step not reached: %s (waited %s for %s; last error %v)", what, stepTimeout, cond, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (p *page) text(sel string) string {
	p.t.Helper()
	return eval[string](p, fmt.Sprintf("(document.querySelector(%q) || {}).textContent || ''", sel))
}

// shot saves a full-page screenshot as NN-name.png and logs its path.
func (p *page) shot(name string) string {
	p.t.Helper()
	p.n++
	ctx, cancel := context.WithTimeout(p.ctx, stepTimeout)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		p.t.Fatalf("screenshot %s: %v", name, err)
	}
	path := filepath.Join(p.dir, fmt.Sprintf("%02d-%s.png", p.n, name))
	if err := os.WriteFile(path, png, 0o644); err != nil {
		p.t.Fatal(err)
	}
	p.t.Logf("screenshot: %s", path)
	return path
}

func (p *page) fail(format string, args ...any) {
	p.t.Helper()
	msg := fmt.Sprintf(format, args...)
	ctx, cancel := context.WithTimeout(p.ctx, 10*time.Second)
	defer cancel()
	if png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100)); err == nil {
		path := filepath.Join(p.dir, "failure.png")
		if os.WriteFile(path, png, 0o644) == nil {
			msg += "\nscreenshot: " + path
		}
	}
	if body, err := chromedp.Run(ctx, chromedp.Evaluate[string]("document.body.innerText")); err == nil {
		msg += "\npage text:\n" + body
	}
	if probs := p.console.problems(); len(probs) > 0 {
		msg += "\nconsole:\n" + strings.Join(probs, "\n")
	}
	p.t.Fatal(msg)
}

func (p *page) click(sel string) {
	p.t.Helper()
	p.do("click "+sel, chromedp.Click(chromedp.CSS(sel), chromedp.NodeVisible))
}

// typeInto replaces the value of an input by typing, as a user would (each
// key an input event).
func (p *page) typeInto(sel, value string) {
	p.t.Helper()
	// Select all and delete, as a user would (an input event with "").
	p.do("clear "+sel, chromedp.WaitVisible(chromedp.CSS(sel)))
	eval[bool](p, fmt.Sprintf("(() => { const e = document.querySelector(%q); e.focus(); e.select(); return document.execCommand('delete'); })()", sel))
	p.do("type into "+sel, chromedp.SendKeys(chromedp.CSS(sel), value, chromedp.NodeVisible))
}

// selectOption chooses a value of a drop-down and fires its change event.
func (p *page) selectOption(sel, value string) {
	p.t.Helper()
	// SetValue fires input and change, as choosing with the mouse does.
	p.do("select "+value+" in "+sel, chromedp.SetValue(chromedp.CSS(sel), value, chromedp.NodeVisible))
}

func (p *page) disabled(sel string) bool {
	p.t.Helper()
	return eval[bool](p, fmt.Sprintf("document.querySelector(%q).disabled", sel))
}

func (p *page) visible(sel string) string {
	return fmt.Sprintf("(() => { const e = document.querySelector(%q); return !!e && e.checkVisibility(); })()", sel)
}

// ---- The daemon's API and page on one server -----------------------------

// platform is the admin.Validator of the test: admin.ConnectorValidator
// (the checks of `s3connector validate`) with a platform identity the test
// switches. MinIO plays the customer's role with the platform user's own
// policy, so "the customer creates the role with the page's policy" is "a
// MinIO user with that policy becomes the platform identity".
type platform struct {
	mu sync.Mutex
	v  admin.ConnectorValidator
}

func (p *platform) Validate(ctx context.Context, c config.Connection) (*connector.Report, error) {
	p.mu.Lock()
	v := p.v
	p.mu.Unlock()
	return v.Validate(ctx, c)
}

func (p *platform) use(user, secret string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.v = admin.ConnectorValidator{PrincipalARN: principalARN, Platform: aws.Config{
		Region:      miniotest.Region,
		Credentials: credentials.NewStaticCredentialsProvider(user, secret, ""),
		HTTPClient:  awshttp.NewBuildableClient(),
	}}
}

type daemon struct {
	url   string
	token string
	store *store.Bolt
	minio *miniotest.Server
	val   *platform
}

// startDaemon serves the admin API and the page on one loopback server, as
// the daemon's admin listener does: the API under /api/v1 (a real bbolt
// store in t.TempDir(), validation with connector's checks against MinIO,
// connections' endpoints from the operator template) and web.Handler at /.
func startDaemon(t *testing.T) *daemon {
	t.Helper()
	srv := miniotest.Shared(t)
	st, err := store.Open(filepath.Join(t.TempDir(), "connections.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	var raw [24]byte
	if _, err := rand.Read(raw[:]); err != nil {
		t.Fatal(err)
	}
	d := &daemon{token: hex.EncodeToString(raw[:]), store: st, minio: srv, val: &platform{}}
	api, err := admin.New(admin.Options{
		Store:        st,
		Validator:    d.val,
		PrincipalARN: principalARN,
		Template: config.Connection{
			Schedule: "@every 1m", Workers: 2,
			Importer: config.Importer{Type: config.ImporterDiscard},
			Endpoint: srv.Endpoint, STSEndpoint: srv.Endpoint,
		},
		Tokens: admin.NewTokens(map[string]string{"browser-test": d.token}),
		Logger: zaptest.NewLogger(t),
		// The wizard validates twice in a few seconds.
		ValidationInterval: time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle(admin.Prefix+"/", api.Handler())
	mux.Handle("/", web.Handler())
	hs := httptest.NewServer(mux)
	t.Cleanup(hs.Close)
	d.url = hs.URL
	return d
}

// ---- The tests ----------------------------------------------------------

// TestWizardInBrowser walks the seeds' wizard in headless Chromium against
// the admin API, the store and MinIO: sign in, Create New, Connection Type,
// S3 Bucket with the field errors of a bad account ID and a base path
// starting with "/" (as typed, then the server's), IAM Role (Continue only
// once the steps are confirmed), Validate before the customer's policy
// exists (Validation Failed, Activate disabled, Revalidate), the MinIO user
// created with the permissions policy the page shows, Revalidate (Validation
// Successful, the files-found line), Activate, Active in the list, Disable.
// A screenshot of each step is saved (paths in the log; set
// S3CONNECTOR_SCREENSHOTS=dir to keep them).
func TestWizardInBrowser(t *testing.T) {
	ctx := tab(t)
	d := startDaemon(t)
	bg := context.Background()
	const bucket = "web-wizard"
	if err := d.minio.CreateBucket(bg, bucket); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"imports/a.csv", "imports/b.csv", "elsewhere/c.csv"} {
		if err := d.minio.Put(bg, bucket, k, []byte("id,amount\n1,2\n")); err != nil {
			t.Fatal(err)
		}
	}
	// Before the customer sets up the role, the identity reaches another
	// bucket only.
	if err := d.minio.AddUser(bg, "web-before", "web-before-secret", []byte(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["s3:ListBucket"],"Resource":["arn:aws:s3:::some-other-bucket"]}]}`)); err != nil {
		t.Fatal(err)
	}
	d.val.use("web-before", "web-before-secret")

	p := newPage(t, ctx)

	// Sign in: a wrong token is refused, the right one opens the list.
	p.do("open the page", chromedp.Navigate(d.url+"/"))
	p.waitFor("the token form", p.visible("#token"))
	p.shot("sign-in")
	p.typeInto("#token", "not-the-token-0123456789abcdef0123")
	p.click("#token-form button[type=submit]")
	p.waitFor("the wrong token refused", `document.querySelector('#token-error').textContent.includes('invalid token')`)
	p.typeInto("#token", d.token)
	p.click("#token-form button[type=submit]")
	p.waitFor("Manage Connections, empty", p.visible("#list-empty"))
	if eval[string](p, "location.href") != d.url+"/" {
		t.Errorf("the URL changed: %s", eval[string](p, "location.href"))
	}
	if c := eval[string](p, "document.cookie"); c != "" {
		t.Errorf("cookies: %q", c)
	}
	p.shot("manage-connections-empty")

	// Step 1: Connection Type.
	p.click("#create-new")
	p.waitFor("step 1, Connection Type", p.visible("#step-type"))
	if !p.disabled("#type-continue") {
		t.Error("Continue is enabled before a type is chosen")
	}
	p.click("#type-aws-s3")
	p.waitFor("Choose AWS S3 Type", p.visible("#type-own-bucket"))
	p.click("#type-own-bucket")
	p.waitFor("Continue enabled", "!document.querySelector('#type-continue').disabled")
	p.shot("connection-type")
	p.click("#type-continue")

	// Step 2: S3 Bucket, with the rules as the user types.
	p.waitFor("step 2, S3 Bucket", p.visible("#f-name"))
	p.typeInto("#f-name", "acme")
	p.typeInto("#f-account_id", "12345")
	p.typeInto("#f-bucket", bucket)
	p.selectOption("#f-region", miniotest.Region)
	p.typeInto("#f-base_path", "/imports")
	p.waitFor("the account ID's error as typed", `document.querySelector('#err-account_id').dataset.source === 'client'`)
	if got := p.text("#err-account_id"); !strings.Contains(got, `must be exactly 12 digits, got "12345"`) {
		t.Errorf("account ID as typed: %q", got)
	}
	if got := p.text("#err-base_path"); !strings.Contains(got, `must not start with "/"`) {
		t.Errorf("base path as typed: %q", got)
	}
	if got := p.text("#err-name") + p.text("#err-bucket"); got != "" {
		t.Errorf("errors on valid fields: %q", got)
	}
	p.shot("s3-bucket-typing")
	// Save & Continue: the server checks again, and its messages (in
	// config's words) are shown next to their fields.
	p.click("#bucket-save")
	p.waitFor("the server's field errors", `document.querySelector('#err-account_id').dataset.source === 'server' && document.querySelector('#err-base_path').dataset.source === 'server'`)
	if got := p.text("#err-account_id"); !strings.Contains(got, `must be exactly 12 digits, got "12345"`) {
		t.Errorf("the server's account ID error: %q", got)
	}
	if got := p.text("#err-base_path"); !strings.Contains(got, `must not start with "/", got "/imports"`) {
		t.Errorf("the server's base path error: %q", got)
	}
	if eval[string](p, "document.activeElement.id") != "f-account_id" {
		t.Errorf("focus on %q, want the first field in error", eval[string](p, "document.activeElement.id"))
	}
	p.shot("s3-bucket-server-errors")
	if cs, err := d.store.List(bg); err != nil || len(cs) != 0 {
		t.Fatalf("an invalid form stored %v (%v)", cs, err)
	}
	p.typeInto("#f-account_id", "123456789012")
	p.typeInto("#f-base_path", "imports")
	p.waitFor("the errors cleared as typed", `document.querySelector('#err-account_id').textContent === '' && document.querySelector('#err-base_path').textContent === ''`)
	p.click("#bucket-save")

	// Step 3: IAM Role.
	p.waitFor("step 3, IAM Role", p.visible("#step-iam")+" && document.querySelector('#iam-role-name').value !== ''")
	stored, err := d.store.Get(bg, "acme")
	if err != nil {
		t.Fatal(err)
	}
	if got := eval[string](p, "document.querySelector('#iam-role-name').value"); got != stored.RoleName {
		t.Errorf("role name %q, stored %q", got, stored.RoleName)
	}
	if got := p.text("label[for=iam-role-name]"); !strings.Contains(got, "system-generated, do not modify") {
		t.Errorf("role name label %q", got)
	}
	if got := eval[string](p, "document.querySelector('#iam-external-id').value"); got != stored.ExternalID {
		t.Errorf("External ID shown %q, stored %q", got, stored.ExternalID)
	}
	trust := p.text("#iam-trust")
	if !strings.Contains(trust, stored.ExternalID) || !strings.Contains(trust, principalARN) {
		t.Errorf("trust policy lacks the External ID or the principal:\n%s", trust)
	}
	if !eval[bool](p, "document.querySelector('#iam-kms').hidden") {
		t.Error("the KMS statement is shown for a bucket without a KMS key")
	}
	permissions := p.text("#iam-permissions")
	if !json.Valid([]byte(permissions)) || !strings.Contains(permissions, "arn:aws:s3:::"+bucket+"/imports/") {
		t.Fatalf("permissions policy as shown:\n%s", permissions)
	}
	if !p.disabled("#iam-continue") {
		t.Error("Continue is enabled before the steps are confirmed")
	}
	p.shot("iam-role")
	p.do("phone viewport", chromedp.EmulateViewport(390, 844))
	p.shot("iam-role-phone")
	p.do("laptop viewport", chromedp.EmulateViewport(1280, 900))

	// Back to S3 Bucket: the saved values, the name fixed; an edit goes
	// to the server (PATCH) and its field error comes back the same way.
	p.click("#iam-back")
	p.waitFor("step 2 again, filled in", p.visible("#f-account_id")+" && document.querySelector('#f-account_id').value === '123456789012'")
	if !p.disabled("#f-name") {
		t.Error("the name of a saved connection can be edited")
	}
	p.typeInto("#f-account_id", "1234-5678-9012")
	p.click("#bucket-save")
	p.waitFor("the server's error on the edit", `document.querySelector('#err-account_id').dataset.source === 'server'`)
	if got := p.text("#err-account_id"); !strings.Contains(got, "write it without dashes or spaces") {
		t.Errorf("the edit's account ID error: %q", got)
	}
	p.typeInto("#f-account_id", "123456789012")
	p.click("#bucket-save")
	p.waitFor("step 3 again", p.visible("#step-iam")+" && document.querySelector('#iam-role-name').value !== ''")
	if again := p.text("#iam-permissions"); again != permissions {
		t.Errorf("the permissions policy changed without a change:\n%s", again)
	}
	if !p.disabled("#iam-continue") {
		t.Error("Continue is enabled again without the confirmation")
	}
	p.click("#iam-confirm")
	p.waitFor("Continue enabled by the checkbox", "!document.querySelector('#iam-continue').disabled")
	p.click("#iam-continue")

	// Step 4: Validate, before the customer's policy exists.
	p.waitFor("step 4, Validate", p.visible("#step-validate"))
	if !p.disabled("#activate") {
		t.Error("Activate Connection is enabled before validation")
	}
	p.click("#validate")
	p.waitFor("the validation's outcome", p.visible("#validation-outcome"))
	if got := p.text("#validation-message"); got != admin.MessageValidationFailed {
		t.Fatalf("first validation: %q, want %q", got, admin.MessageValidationFailed)
	}
	if got := p.text("#failed-check"); got == "" {
		t.Error("no failed check shown")
	}
	if got := p.text("#advice"); !strings.Contains(got, "Role assumption succeeds but S3 operations fail") {
		t.Errorf("advice: %q", got)
	}
	if !p.disabled("#activate") {
		t.Error("Activate Connection is enabled after a failed validation")
	}
	if got := p.text("#validate"); got != "Revalidate" {
		t.Errorf("validate button %q, want Revalidate", got)
	}
	p.shot("validation-failed")

	// The customer creates the role with the page's own permissions policy.
	if err := d.minio.AddUser(bg, "web-after", "web-after-secret", []byte(permissions)); err != nil {
		t.Fatal(err)
	}
	d.val.use("web-after", "web-after-secret")
	p.click("#validate")
	p.waitFor("a passing validation", `(document.querySelector('#validation-outcome') || {dataset: {}}).dataset.passed === 'true'`)
	if got := p.text("#validation-message"); got != admin.MessageValidationSuccessful {
		t.Errorf("revalidation: %q", got)
	}
	if got := p.text("#success-line"); got != "Connection successful. Found 2 files in bucket." {
		t.Errorf("success line %q", got)
	}
	p.waitFor("Activate Connection enabled", "!document.querySelector('#activate').disabled")
	p.shot("validation-successful")

	// Activate: Draft → Active, shown in the list.
	p.click("#activate")
	p.waitFor("Manage Connections with acme", p.visible(`#connections tr[data-name="acme"]`))
	if got := eval[string](p, `document.querySelector('#connections tr[data-name="acme"]').dataset.status`); got != "active" {
		t.Errorf("listed as %q", got)
	}
	if got := p.text(`#connections tr[data-name="acme"] .badge`); got != "Active" {
		t.Errorf("status badge %q", got)
	}
	if c, err := d.store.Get(bg, "acme"); err != nil || c.Status != store.StatusActive {
		t.Errorf("stored %v (%v)", c.Status, err)
	}
	p.shot("manage-connections-active")
	p.do("phone viewport", chromedp.EmulateViewport(390, 844))
	p.shot("manage-connections-phone")
	p.do("laptop viewport", chromedp.EmulateViewport(1280, 900))

	// Disable from the list.
	p.click(`#connections tr[data-name="acme"] button[aria-label="Disable acme"]`)
	p.waitFor("acme disabled", `(document.querySelector('#connections tr[data-name="acme"]') || {dataset: {}}).dataset.status === 'disabled'`)
	p.shot("manage-connections-disabled")
	if c, err := d.store.Get(bg, "acme"); err != nil || c.Status != store.StatusDisabled {
		t.Errorf("stored %v (%v)", c.Status, err)
	}
	ts, err := d.store.Transitions(bg, "acme")
	if err != nil {
		t.Fatal(err)
	}
	var path []string
	for _, tr := range ts {
		path = append(path, string(tr.To)+" by "+tr.By)
	}
	if got := strings.Join(path, ", "); !strings.Contains(got, "active by browser-test") || !strings.HasSuffix(got, "disabled by browser-test") {
		t.Errorf("transitions: %s", got)
	}
	if probs := p.console.problems(); len(probs) > 0 {
		t.Errorf("console problems:\n%s", strings.Join(probs, "\n"))
	}
}

// TestPageEscapesData puts markup where a user or a bucket could: a
// connection name cannot hold it, so the test stores a connection whose
// base path and a validation result carry it and checks that the list shows
// them as text, with no element made from them.
func TestPageEscapesData(t *testing.T) {
	ctx := tab(t)
	d := startDaemon(t)
	bg := context.Background()
	const evil = `<img src=x id=injected>&amp;"'`
	if _, err := d.store.Create(bg, "escaped", store.Settings{AccountID: "123456789012", Bucket: "escape-test", Region: miniotest.Region, BasePath: "in/" + evil + "/"}, "test"); err != nil {
		t.Fatal(err)
	}
	if _, err := d.store.Update(bg, "escaped", "test", func(c *store.Connection) error {
		return c.RecordValidation(store.Validation{Fingerprint: c.Fingerprint(), At: time.Now(), Passed: false, Result: "list prefix: " + evil})
	}); err != nil {
		t.Fatal(err)
	}
	p := newPage(t, ctx)
	p.do("open the page", chromedp.Navigate(d.url+"/"))
	p.waitFor("the token form", p.visible("#token"))
	p.typeInto("#token", d.token)
	p.click("#token-form button[type=submit]")
	p.waitFor("the list", p.visible(`#connections tr[data-name="escaped"]`))
	row := p.text(`#connections tr[data-name="escaped"]`)
	if !strings.Contains(row, "in/"+evil+"/") || !strings.Contains(row, "list prefix: "+evil) {
		t.Errorf("row text %q lacks the values as text", row)
	}
	if eval[bool](p, "!!document.querySelector('#injected, img')") {
		t.Error("markup from the data became an element")
	}
	p.shot("escaped-list")
	p.click(`#connections tr[data-name="escaped"] button[aria-label="Continue setup escaped"]`)
	p.waitFor("its IAM step", p.visible("#step-iam")+" && document.querySelector('#iam-permissions').textContent !== ''")
	if got := p.text("#iam-location"); got != "s3://escape-test/in/"+evil+"/" {
		t.Errorf("location %q", got)
	}
	if got := p.text("#iam-permissions"); !strings.Contains(got, `in/<img src=x id=injected>&amp;\"'/*`) {
		t.Errorf("permissions policy lacks the base path as text:\n%s", got)
	}
	if eval[bool](p, "!!document.querySelector('#injected, img')") {
		t.Error("markup from the data became an element in the IAM step")
	}
	p.shot("escaped-iam")
	if probs := p.console.problems(); len(probs) > 0 {
		t.Errorf("console problems:\n%s", strings.Join(probs, "\n"))
	}
}

// TestRulesMatchConfig runs the page's as-you-type rules (rules.js) in the
// browser on a table of values and requires config's validators, which the
// server uses, to give the same verdict in the same words.
func TestRulesMatchConfig(t *testing.T) {
	ctx := tab(t)
	hs := httptest.NewServer(web.Handler())
	t.Cleanup(hs.Close)
	p := newPage(t, ctx)
	p.do("open the page", chromedp.Navigate(hs.URL+"/"))
	p.waitFor("rules.js loaded", "typeof S3CRules === 'object'")

	type tc struct {
		Field string `json:"f"`
		Value string `json:"v"`
	}
	values := map[string][]string{
		"name": {"", "acme", "ACME", "a_b", "-acme", "acme-", "a", strings.Repeat("a", 52), strings.Repeat("a", 53), "acme-2", "a b"},
		"account_id": {"", "123456789012", "12345", "1234567890123", "1234-5678-9012", "1234 5678 9012", "abcdefghijkl",
			"12345678901a", " 123456789012"},
		"bucket": {"", "acme-imports", "ab", strings.Repeat("a", 64), "Acme", "acme imports", "s3://acme", "acme/folder",
			"arn:aws:s3:::acme", "acme_imports", "-acme", "acme-", "ac..me", "ac.-me", "ac-.me", "192.168.1.1", "xn--acme",
			"sthree-acme", "amzn-s3-demo-acme", "acme-s3alias", "acme--ol-s3", "acme.mrap", "acme--x-s3", "acme--table-s3",
			"my.bucket.name", "acme\timports"},
		"base_path": {"", "imports", "imports/", "/imports", "a/../b", "..", ".", "./a", "a/./b", "a/.b", "in*", "in?",
			"in$x", "in{x}", "a}", "in\x01", "tab\there", "a\x7f", strings.Repeat("a", 511), strings.Repeat("a", 512),
			strings.Repeat("é", 256), "imports/2026/march/", `back\slash`, `quo"te`},
	}
	goRules := map[string]func(string) error{
		"name":       config.ValidateName,
		"account_id": config.ValidateAccountID,
		"bucket":     config.ValidateBucket,
		"base_path":  config.ValidateBasePath,
	}
	var cases []tc
	for f, vs := range values {
		for _, v := range vs {
			cases = append(cases, tc{f, v})
		}
	}
	in, err := json.Marshal(cases)
	if err != nil {
		t.Fatal(err)
	}
	got := eval[[]string](p, "JSON.parse("+jsString(string(in))+").map(c => S3CRules[c.f](c.v))")
	if len(got) != len(cases) {
		t.Fatalf("%d answers for %d cases", len(got), len(cases))
	}
	for i, c := range cases {
		want := ""
		if err := goRules[c.Field](c.Value); err != nil {
			want = err.Error()
		}
		if got[i] != want {
			t.Errorf("%s %q: page says %q, config says %q", c.Field, c.Value, got[i], want)
		}
	}
}

// jsString quotes s as a JavaScript string literal.
func jsString(s string) string {
	b, err := json.Marshal(s)
	if err != nil {
		panic(err)
	}
	return string(b)
}
