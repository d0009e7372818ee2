package web_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/s3connector/s3connector/admin"
	"github.com/s3connector/s3connector/connector/miniotest"
	"github.com/s3connector/s3connector/internal/proctest"
)

// daemonBinary is the built cmd/s3connector.
func daemonBinary(t *testing.T) string { return proctest.Daemon(t) }

func freeLoopback(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// TestWizardAgainstTheDaemon walks the wizard in headless Chromium against
// the BUILT s3connector binary (`s3connector run` with a data_dir and an
// admin section whose template has a dir importer on a 1 s schedule and
// MinIO's endpoints) instead of TestWizardInBrowser's in-process admin API:
// the page, the API, the store, the validation with the daemon's own
// platform identity (static keys in its environment, for a MinIO user that
// does not exist until the customer "creates the role" with the page's
// permissions policy) and the supervisor are the daemon's. What it adds is
// the end of issue 11 item 5: after Activate, the daemon picks the
// connection up and ingests — files uploaded to the inbox are archived in
// the bucket and land in the dir importer's directory — and the reloaded
// list shows the connection Active with a last run. The daemon must exit 0
// on SIGTERM. Screenshots of the key steps are saved (paths in the log; set
// S3CONNECTOR_SCREENSHOTS=dir to keep them).
func TestWizardAgainstTheDaemon(t *testing.T) {
	ctx := tab(t)
	bin := daemonBinary(t)
	srv := miniotest.Shared(t)
	bg := context.Background()

	bucket := "web-daemon-" + time.Now().Format("150405") + "-" + strings.ToLower(randHex(t, 3))
	if err := srv.CreateBucket(bg, bucket); err != nil {
		t.Fatal(err)
	}
	files := map[string]string{"a.csv": "id,amount\n1,2\n", "b.csv": "id,amount\n3,4\n"}
	for name, body := range files {
		if err := srv.Put(bg, bucket, "imports/"+name, []byte(body)); err != nil {
			t.Fatal(err)
		}
	}

	// The daemon's configuration, as storedConfig in cmd/s3connector.
	token := randHex(t, 24)
	tmp := t.TempDir()
	tokenFile := filepath.Join(tmp, "ops-token")
	if err := os.WriteFile(tokenFile, []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	dataDir := filepath.Join(tmp, "data")
	importDir := filepath.Join(tmp, "imported")
	if err := os.MkdirAll(importDir, 0o755); err != nil {
		t.Fatal(err)
	}
	listen, adminAddr := freeLoopback(t), freeLoopback(t)
	yaml := `principal_arn: ` + principalARN + `
listen: ` + listen + `
data_dir: ` + dataDir + `
admin:
  listen: ` + adminAddr + `
  token_files: [` + tokenFile + `]
  template:
    schedule: "@every 1s"
    workers: 2
    importer:
      type: dir
      path: ` + importDir + `
    endpoint: ` + srv.Endpoint + `
    sts_endpoint: ` + srv.Endpoint + `
`
	cfg := filepath.Join(tmp, "config.yaml")
	if err := os.WriteFile(cfg, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}

	// The platform identity: a MinIO user that does not exist yet.
	user := "web-daemon-" + randHex(t, 4)
	secret := user + "-secret"
	cmd := exec.Command(bin, "run", "--config", cfg)
	cmd.Env = append(os.Environ(),
		"AWS_ACCESS_KEY_ID="+user,
		"AWS_SECRET_ACCESS_KEY="+secret,
		"AWS_SESSION_TOKEN=",
		"AWS_REGION="+miniotest.Region,
		"AWS_PROFILE=",
		"AWS_CONFIG_FILE="+os.DevNull,
		"AWS_SHARED_CREDENTIALS_FILE="+os.DevNull,
		"AWS_EC2_METADATA_DISABLED=true",
	)
	log := &proctest.Buffer{}
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			t.Logf("daemon log:\n%s", log.String())
		}
	})

	base := "http://" + adminAddr
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(base + "/")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		select {
		case err := <-exited:
			stopped = true
			t.Fatalf("the daemon exited: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("the admin listener %s did not answer: %v", adminAddr, err)
		}
		time.Sleep(100 * time.Millisecond)
	}

	p := newPage(t, ctx)
	signIn := func() {
		p.waitFor("the token form", p.visible("#token"))
		p.typeInto("#token", token)
		p.click("#token-form button[type=submit]")
	}

	// Sign in on the daemon's own listener.
	p.do("open the page", chromedp.Navigate(base+"/"))
	signIn()
	p.waitFor("Manage Connections, empty", p.visible("#list-empty"))
	p.shot("daemon-manage-connections-empty")

	// Step 1: Connection Type.
	p.click("#create-new")
	p.waitFor("step 1, Connection Type", p.visible("#step-type"))
	p.click("#type-aws-s3")
	p.waitFor("Choose AWS S3 Type", p.visible("#type-own-bucket"))
	p.click("#type-own-bucket")
	p.waitFor("Continue enabled", "!document.querySelector('#type-continue').disabled")
	p.click("#type-continue")

	// Step 2: S3 Bucket, valid fields.
	p.waitFor("step 2, S3 Bucket", p.visible("#f-name"))
	p.typeInto("#f-name", "acme")
	p.typeInto("#f-account_id", "123456789012")
	p.typeInto("#f-bucket", bucket)
	p.selectOption("#f-region", miniotest.Region)
	p.typeInto("#f-base_path", "imports")
	p.shot("daemon-s3-bucket")
	p.click("#bucket-save")

	// Step 3: IAM Role; the permissions policy as the page shows it.
	p.waitFor("step 3, IAM Role", p.visible("#step-iam")+" && document.querySelector('#iam-role-name').value !== '' && document.querySelector('#iam-permissions').textContent !== ''")
	permissions := p.text("#iam-permissions")
	if !strings.Contains(permissions, "arn:aws:s3:::"+bucket+"/imports/") {
		t.Fatalf("permissions policy as shown:\n%s", permissions)
	}
	p.shot("daemon-iam-role")
	p.click("#iam-confirm")
	p.waitFor("Continue enabled by the checkbox", "!document.querySelector('#iam-continue').disabled")
	p.click("#iam-continue")

	// Step 4: Validate, before the platform user exists.
	p.waitFor("step 4, Validate", p.visible("#step-validate"))
	p.click("#validate")
	p.waitFor("the validation's outcome", p.visible("#validation-outcome"))
	firstValidation := time.Now()
	if got := p.text("#validation-message"); got != admin.MessageValidationFailed {
		t.Fatalf("first validation: %q, want %q", got, admin.MessageValidationFailed)
	}
	if !p.disabled("#activate") {
		t.Error("Activate Connection is enabled after a failed validation")
	}
	p.shot("daemon-validation-failed")

	// The customer creates the role with the page's own policy.
	if err := srv.AddUser(bg, user, secret, []byte(permissions)); err != nil {
		t.Fatal(err)
	}
	// The daemon allows one validation per connection every 10 s.
	time.Sleep(time.Until(firstValidation.Add(admin.DefaultValidationInterval + time.Second)))
	for attempt := 0; ; attempt++ {
		p.click("#validate")
		p.waitFor("the revalidation's answer", `document.querySelector('#validate-result #validation-outcome[data-passed="true"]') || document.querySelector('#validate-result .banner.error')`)
		if eval[bool](p, `!!document.querySelector('#validate-result #validation-outcome[data-passed="true"]')`) {
			break
		}
		if attempt >= 5 {
			p.fail("revalidation refused: %s", p.text("#validate-result"))
		}
		time.Sleep(3 * time.Second)
	}
	if got := p.text("#validation-message"); got != admin.MessageValidationSuccessful {
		t.Errorf("revalidation: %q", got)
	}
	if got := p.text("#success-line"); got != "Connection successful. Found 2 files in bucket." {
		t.Errorf("success line %q", got)
	}
	p.waitFor("Activate Connection enabled", "!document.querySelector('#activate').disabled")
	p.shot("daemon-validation-successful")

	// Activate: the list shows it Active.
	p.click("#activate")
	p.waitFor("Manage Connections with acme, active", `(document.querySelector('#connections tr[data-name="acme"]') || {dataset: {}}).dataset.status === 'active'`)
	if got := p.text(`#connections tr[data-name="acme"] .badge`); got != "Active" {
		t.Errorf("status badge %q", got)
	}
	p.shot("daemon-manage-connections-active")

	// The daemon ingests: two more files, then all four archived and in
	// the importer's directory.
	more := map[string]string{"c.csv": "id,amount\n5,6\n", "d.csv": "id,amount\n7,8\n"}
	for name, body := range more {
		if err := srv.Put(bg, bucket, "imports/"+name, []byte(body)); err != nil {
			t.Fatal(err)
		}
		files[name] = body
	}
	archived := func() []string {
		keys, err := srv.Keys(bg, bucket, "imports/archive/")
		if err != nil {
			t.Fatal(err)
		}
		var csv []string
		for _, k := range keys {
			if strings.HasSuffix(k, ".csv") {
				csv = append(csv, k)
			}
		}
		return csv
	}
	imported := func() bool {
		for name, body := range files {
			got, err := os.ReadFile(filepath.Join(importDir, "acme", name))
			if err != nil || string(got) != body {
				return false
			}
		}
		return true
	}
	deadline = time.Now().Add(30 * time.Second)
	for len(archived()) < len(files) || !imported() {
		if time.Now().After(deadline) {
			inbox, _ := srv.Keys(bg, bucket, "imports/")
			t.Fatalf("after 30 s: archived %v, bucket %v", archived(), inbox)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if got := archived(); len(got) != 4 {
		t.Errorf("archived %v, want 4 files", got)
	}

	// Reload the list: Active, with a last run.
	p.do("reload the page", chromedp.Reload())
	p.waitFor("the list or the token form", p.visible("#token")+" || "+p.visible(`#connections tr[data-name="acme"]`))
	if eval[bool](p, p.visible("#token")) {
		signIn()
	}
	p.waitFor("acme with a last run", `(() => { const r = document.querySelector('#connections tr[data-name="acme"]'); return !!r && r.dataset.status === 'active' && !!r.querySelector('td[data-label="Last Run"] .ok'); })()`)
	if got := p.text(`#connections tr[data-name="acme"] .badge`); got != "Active" {
		t.Errorf("status badge after the runs %q", got)
	}
	if got := p.text(`#connections tr[data-name="acme"] td[data-label="Last Run"]`); !strings.Contains(got, "OK") {
		t.Errorf("last run %q", got)
	}
	p.shot("daemon-manage-connections-ingested")
	if probs := p.console.problems(); len(probs) > 0 {
		t.Errorf("console problems:\n%s", strings.Join(probs, "\n"))
	}

	// SIGTERM: the daemon exits 0.
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		stopped = true
		if err != nil {
			t.Errorf("daemon exit after SIGTERM: %v", err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("the daemon did not exit within 60 s of SIGTERM")
	}
}

func randHex(t *testing.T, n int) string {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}
