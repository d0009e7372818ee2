// Command s3connector-demo shows the connection wizard end to end without a
// browser: it starts a MinIO server (S3, STS, SSE-KMS) on a free loopback
// port, creates the demo bucket from testdata/demo/inbox, starts the daemon
// (`s3connector run`) with a data_dir and an admin API token and no
// connection in its configuration file, then drives the admin API with
// plain HTTP calls, printing each: create the connection (the seeds' S3
// Bucket step), read its IAM setup, validate before the customer's policy
// exists (Validation Failed), create the MinIO user with exactly the
// printed permissions policy (MinIO plays the customer's role), validate
// again ("Connection successful. Found N files in bucket."), activate, and
// watch the daemon archive the files; the one malformed key ends in error/,
// listed with its report through the API. It ends with the wizard page's
// URL and a command to open it.
//
// Run it with `make demo` (which builds only MinIO, mc and the binary), or
// `make demo DEMO_FLAGS=-keep` to keep everything running for the page.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/s3connector/s3connector/connector"
	"github.com/s3connector/s3connector/connector/miniotest"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "s3connector-demo:", err)
		os.Exit(1)
	}
}

const (
	bucket   = "customer-data-imports"
	basePath = "imports/"
)

func run(ctx context.Context, args []string, out io.Writer) error {
	fset := flag.NewFlagSet("s3connector-demo", flag.ContinueOnError)
	binary := fset.String("binary", "bin/s3connector", "s3connector binary to run")
	demoDir := fset.String("dir", "testdata/demo", "demo inbox files")
	keep := fset.Bool("keep", false, "keep the daemon and MinIO running until interrupted, for the page")
	if err := fset.Parse(args); err != nil {
		return err
	}

	step(out, "Starting MinIO (S3 + STS + SSE-KMS) on a free loopback port")
	startCtx, cancel := context.WithTimeout(ctx, 90*time.Second)
	srv, err := miniotest.Start(startCtx)
	cancel()
	if err != nil {
		return err
	}
	defer srv.Close()
	fmt.Fprintf(out, "MinIO at %s, region %s\n", srv.Endpoint, miniotest.Region)

	step(out, "Creating bucket "+bucket+" (default encryption SSE-KMS) with the demo inbox under "+basePath)
	if err := srv.CreateBucket(ctx, bucket); err != nil {
		return err
	}
	if err := srv.EnableKMS(ctx, bucket); err != nil {
		return err
	}
	inbox := filepath.Join(*demoDir, "inbox")
	err = filepath.WalkDir(inbox, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(inbox, path)
		body, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		key := basePath + filepath.ToSlash(rel)
		fmt.Fprintf(out, "  s3://%s/%s (%d bytes)\n", bucket, key, len(body))
		return srv.Put(ctx, bucket, key, body)
	})
	if err != nil {
		return err
	}
	// A key written by a Windows tool, with a backslash: no safe local path
	// corresponds to it, so the dir importer rejects it (permanent error).
	malformed, err := os.ReadFile(filepath.Join(*demoDir, "windows-export.csv"))
	if err != nil {
		return err
	}
	const malformedKey = basePath + `orders\2026-11-03.csv`
	fmt.Fprintf(out, "  s3://%s/%s (%d bytes; a malformed key)\n", bucket, malformedKey, len(malformed))
	if err := srv.Put(ctx, bucket, malformedKey, malformed); err != nil {
		return err
	}

	work, err := os.MkdirTemp("", "s3connector-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	importDir := filepath.Join(work, "imported")
	token, err := connector.NewExternalID() // 32 random characters from crypto/rand
	if err != nil {
		return err
	}
	token = "demo-" + token
	tokenFile := filepath.Join(work, "admin-token")
	if err := os.WriteFile(tokenFile, []byte(token+"\n"), 0o600); err != nil {
		return err
	}
	metricsAddr, err := freeAddr()
	if err != nil {
		return err
	}
	adminAddr, err := freeAddr()
	if err != nil {
		return err
	}
	configFile := filepath.Join(work, "config.yaml")
	cfg := `principal_arn: arn:aws:iam::049579744830:root
listen: ` + metricsAddr + `
data_dir: ` + filepath.Join(work, "data") + `
admin:
  listen: ` + adminAddr + `
  token_files: [` + tokenFile + `]
  template:                 # what every connection created through the API gets
    schedule: "@every 2s"
    workers: 4
    importer: {type: dir, path: ` + importDir + `}
    endpoint: ` + srv.Endpoint + `
    sts_endpoint: ` + srv.Endpoint + `
`
	if err := os.WriteFile(configFile, []byte(cfg), 0o600); err != nil {
		return err
	}
	step(out, "The daemon's configuration: no connection in the file, a data_dir and the admin API")
	fmt.Fprint(out, cfg)

	// The platform's identity; MinIO has no such user yet: the customer
	// has not set up the role.
	const user, secret = "platform", "platform-demo-secret"
	env := append(os.Environ(),
		"AWS_ACCESS_KEY_ID="+user,
		"AWS_SECRET_ACCESS_KEY="+secret,
		"AWS_SESSION_TOKEN=",
		"AWS_PROFILE=",
		"AWS_REGION="+miniotest.Region,
		"AWS_CONFIG_FILE="+os.DevNull,
		"AWS_SHARED_CREDENTIALS_FILE="+os.DevNull,
		"AWS_EC2_METADATA_DISABLED=true",
	)
	logFile := filepath.Join(work, "daemon.log")
	if *keep {
		logFile = filepath.Join(os.TempDir(), "s3connector-demo-daemon.log")
	}
	step(out, "s3connector run --config "+configFile+"  (log: "+logFile+")")
	daemon, err := startDaemon(*binary, configFile, logFile, env)
	if err != nil {
		return err
	}
	defer daemon.stop()
	api := &client{out: out, base: "http://" + adminAddr, token: token}
	if err := api.waitReady(ctx, 30*time.Second); err != nil {
		return fmt.Errorf("%w; daemon log:\n%s", err, daemon.logTail())
	}
	fmt.Fprintf(out, "admin API and wizard page at http://%s/ (token in %s)\n", adminAddr, tokenFile)

	step(out, "Step 2, S3 Bucket: create the connection (a draft; the server generates the External ID and role name)")
	var conn struct {
		Name, Status, RoleName string
	}
	if err := api.do(ctx, "POST", "/api/v1/connections", fmt.Sprintf(`{"name":"acme","account_id":"123456789012","bucket":%q,"region":%q,"base_path":%q}`, bucket, miniotest.Region, basePath), 201, &conn); err != nil {
		return err
	}

	step(out, "Step 3, IAM Role: what the customer creates in AWS")
	var iam struct {
		RoleName     string          `json:"role_name"`
		RoleARN      string          `json:"role_arn"`
		ExternalID   string          `json:"external_id"`
		Trust        json.RawMessage `json:"trust_policy"`
		Permissions  json.RawMessage `json:"permissions_policy"`
		Instructions string          `json:"instructions"`
	}
	if err := api.do(ctx, "GET", "/api/v1/connections/acme/iam", "", 200, &iam); err != nil {
		return err
	}
	fmt.Fprintf(out, "role name (system-generated, do not modify): %s\nrole ARN: %s\n", iam.RoleName, iam.RoleARN)
	fmt.Fprintf(out, "trust policy:\n%s\npermissions policy:\n%s\n", indent(iam.Trust), indent(iam.Permissions))

	step(out, "Step 4, Validate, before the customer has set up the role")
	var res validation
	if err := api.do(ctx, "POST", "/api/v1/connections/acme/validate", "", 200, &res); err != nil {
		return err
	}
	res.print(out)
	if res.Passed {
		return fmt.Errorf("validation passed before the policy existed")
	}
	fmt.Fprintln(out, "Activate is refused until a validation passes:")
	if err := api.do(ctx, "POST", "/api/v1/connections/acme/activate", "", 409, nil); err != nil {
		return err
	}

	step(out, "The customer sets up the role: MinIO user "+user+" with exactly the permissions policy above")
	if err := srv.AddUser(ctx, user, secret, iam.Permissions); err != nil {
		return err
	}

	step(out, "Revalidate (after the 10 s between two validations of one connection)")
	for {
		res = validation{}
		code, err := api.call(ctx, "POST", "/api/v1/connections/acme/validate", "", &res)
		if err != nil {
			return err
		}
		if code != http.StatusTooManyRequests {
			if code != 200 {
				return fmt.Errorf("validate: status %d", code)
			}
			break
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(2 * time.Second):
		}
	}
	res.print(out)
	if !res.Passed {
		return fmt.Errorf("validation failed with the generated policy")
	}

	step(out, "Activate Connection: Draft -> Active; the daemon schedules it")
	if err := api.do(ctx, "POST", "/api/v1/connections/acme/activate", "", 200, &conn); err != nil {
		return err
	}

	step(out, "The daemon ingests: every good file archived, the malformed key in error/")
	deadline := time.Now().Add(60 * time.Second)
	for {
		keys, err := srv.Keys(ctx, bucket, basePath)
		if err != nil {
			return err
		}
		waiting := 0
		for _, k := range keys {
			rel := strings.TrimPrefix(k, basePath)
			if !strings.HasPrefix(rel, "archive/") && !strings.HasPrefix(rel, "error/") {
				waiting++
			}
		}
		if waiting == 0 {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d files still in the inbox after 60 s; daemon log:\n%s", waiting, daemon.logTail())
		}
		time.Sleep(500 * time.Millisecond)
	}
	if err := showBucket(ctx, out, srv); err != nil {
		return err
	}
	if err := showDir(out, importDir); err != nil {
		return err
	}
	step(out, "Manage Connections: the list")
	if err := api.do(ctx, "GET", "/api/v1/connections", "", 200, nil); err != nil {
		return err
	}
	step(out, "The files in error/ with their reports (POST .../requeue {\"keys\":[...]} puts them back)")
	if err := api.do(ctx, "GET", "/api/v1/connections/acme/errors", "", 200, nil); err != nil {
		return err
	}

	url := "http://" + adminAddr + "/"
	step(out, "The wizard page")
	fmt.Fprintf(out, "URL:   %s\ntoken: the page asks for it: TOKEN=$(cat %s)\nopen:  xdg-open %s   (macOS: open %s)\n", url, tokenFile, url, url)
	if *keep {
		fmt.Fprintf(out, "\nThe daemon and MinIO (%s, root user %s) keep running; press Ctrl-C to stop.\n", srv.Endpoint, srv.RootUser)
		<-ctx.Done()
	} else {
		fmt.Fprintln(out, "\nThe demo stops the daemon now; run `make demo DEMO_FLAGS=-keep` to keep it running and open the page.")
	}
	return nil
}

// showBucket lists the bucket under the base path, folder by folder, with
// each error report's reason.
func showBucket(ctx context.Context, out io.Writer, srv *miniotest.Server) error {
	keys, err := srv.Keys(ctx, bucket, basePath)
	if err != nil {
		return err
	}
	groups := map[string][]string{}
	for _, k := range keys {
		rel := strings.TrimPrefix(k, basePath)
		switch {
		case strings.HasPrefix(rel, "archive/"):
			groups["archive"] = append(groups["archive"], k)
		case strings.HasPrefix(rel, "error/"):
			groups["error"] = append(groups["error"], k)
		default:
			groups["inbox"] = append(groups["inbox"], k)
		}
	}
	for _, g := range []struct{ name, title string }{
		{"inbox", "Still in the inbox (retried next run)"},
		{"archive", "Archived (imported, then moved)"},
		{"error", "In error/ (rejected by the importer, with a report)"},
	} {
		files := 0 // error reports are listed under their file, not counted
		for _, k := range groups[g.name] {
			if !strings.HasSuffix(k, ".error.json") {
				files++
			}
		}
		fmt.Fprintf(out, "%s: %d\n", g.title, files)
		for _, k := range groups[g.name] {
			fmt.Fprintf(out, "  s3://%s/%s\n", bucket, k)
			if strings.HasSuffix(k, ".error.json") {
				var rep struct {
					Reason string `json:"reason"`
				}
				o, err := srv.Root().GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(k)})
				if err != nil {
					return err
				}
				err = json.NewDecoder(o.Body).Decode(&rep)
				o.Body.Close()
				if err != nil {
					return fmt.Errorf("report %s: %w", k, err)
				}
				fmt.Fprintf(out, "      reason: %s\n", rep.Reason)
			}
		}
	}
	return nil
}

// showDir lists what the dir importer wrote.
func showDir(out io.Writer, dir string) error {
	fmt.Fprintf(out, "Imported into %s:\n", dir)
	return filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		fmt.Fprintf(out, "  %s (%d bytes)\n", filepath.ToSlash(rel), info.Size())
		return nil
	})
}

func step(out io.Writer, title string) {
	fmt.Fprintf(out, "\n==> %s\n", title)
}

// validation is the part of a validate answer the demo prints.
type validation struct {
	Passed      bool   `json:"passed"`
	Message     string `json:"message"`
	Summary     string `json:"summary"`
	SuccessLine string `json:"success_line"`
	FailedCheck string `json:"failed_check"`
	CanActivate bool   `json:"can_activate"`
	Checks      []struct {
		Name, State, Detail, Error string
	} `json:"checks"`
	Advice *struct {
		Headline string   `json:"headline"`
		Checks   []string `json:"checks"`
	} `json:"advice"`
}

func (v validation) print(out io.Writer) {
	fmt.Fprintf(out, "%s: %s\n", v.Message, v.Summary)
	for _, c := range v.Checks {
		fmt.Fprintf(out, "  [%s] %s %s\n", c.State, c.Name, c.Error)
	}
	if v.SuccessLine != "" {
		fmt.Fprintln(out, v.SuccessLine)
	}
	if v.Advice != nil {
		fmt.Fprintf(out, "advice: %s\n", v.Advice.Headline)
		for _, c := range v.Advice.Checks {
			fmt.Fprintf(out, "  - %s\n", c)
		}
	}
	fmt.Fprintf(out, "Activate Connection enabled: %v\n", v.CanActivate)
}

func indent(raw json.RawMessage) string {
	var b bytes.Buffer
	if err := json.Indent(&b, raw, "  ", "  "); err != nil {
		return string(raw)
	}
	return "  " + b.String()
}

func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}
