// Command s3connector-demo runs s3connector end to end on the local default:
// it starts a MinIO server (S3, STS, SSE-KMS) on a free loopback port, creates
// the demo bucket from testdata/demo/inbox, creates a platform user whose only
// policy is the permissions policy s3connector generates, then runs
// `s3connector policy` and `s3connector validate` on testdata/demo/config.yaml,
// activates the connection and runs `s3connector run --once` with the dir
// importer, and shows where every file went: imported files in a local
// directory and archive/, the one malformed key in error/ with its report.
//
// Run it with `make demo`, which builds the tools and the binary first.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
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
	demoDir := fset.String("dir", "testdata/demo", "demo config and inbox files")
	keep := fset.Bool("keep", false, "keep MinIO running until interrupted")
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

	externalID, err := connector.NewExternalID()
	if err != nil {
		return err
	}
	configFile := filepath.Join(*demoDir, "config.yaml")
	work, err := os.MkdirTemp("", "s3connector-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	importDir := filepath.Join(work, "imported")
	env := append(os.Environ(),
		"DEMO_EXTERNAL_ID="+externalID,
		"DEMO_S3_ENDPOINT="+srv.Endpoint,
		"DEMO_IMPORT_DIR="+importDir,
	)

	step(out, "s3connector policy --connection acme --format text  (what the customer pastes into AWS)")
	if err := s3connector(ctx, out, env, *binary, "policy", "--config", configFile, "--connection", "acme", "--format", "text"); err != nil {
		return err
	}

	step(out, "Creating the platform user with exactly the generated permissions policy")
	var policy bytes.Buffer
	if err := s3connector(ctx, &policy, env, *binary, "policy", "--config", configFile, "--connection", "acme", "--document", "permissions"); err != nil {
		return err
	}
	const user, secret = "platform", "platform-demo-secret"
	if err := srv.AddUser(ctx, user, secret, policy.Bytes()); err != nil {
		return err
	}

	step(out, "s3connector validate --connection acme  (assumes the role through MinIO's STS)")
	env = append(env,
		"AWS_ACCESS_KEY_ID="+user,
		"AWS_SECRET_ACCESS_KEY="+secret,
		"AWS_REGION="+miniotest.Region,
		"AWS_CONFIG_FILE="+os.DevNull,
		"AWS_SHARED_CREDENTIALS_FILE="+os.DevNull,
		"AWS_EC2_METADATA_DISABLED=true",
	)
	if err := s3connector(ctx, out, env, *binary, "validate", "--config", configFile, "--connection", "acme"); err != nil {
		return err
	}

	step(out, "Validation passed: status draft -> active")
	draft, err := os.ReadFile(configFile)
	if err != nil {
		return err
	}
	active := strings.Replace(string(draft), "status: draft", "status: active", 1)
	activeConfig := filepath.Join(work, "config.yaml")
	if err := os.WriteFile(activeConfig, []byte(active), 0o600); err != nil {
		return err
	}

	step(out, "s3connector run --once  (dir importer into "+importDir+")")
	if err := s3connector(ctx, out, env, *binary, "run", "--config", activeConfig, "--once"); err != nil {
		return err
	}

	step(out, "Where every file went")
	if err := showBucket(ctx, out, srv); err != nil {
		return err
	}
	if err := showDir(out, importDir); err != nil {
		return err
	}

	if *keep {
		fmt.Fprintf(out, "\nMinIO keeps running at %s (root user %s); press Ctrl-C to stop.\n", srv.Endpoint, srv.RootUser)
		<-ctx.Done()
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

// s3connector runs the binary; a non-zero exit is an error.
func s3connector(ctx context.Context, out io.Writer, env []string, binary string, args ...string) error {
	cmd := exec.CommandContext(ctx, binary, args...)
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = out, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("s3connector %s: %w", strings.Join(args, " "), err)
	}
	return nil
}
