// Command s3connector-demo runs s3connector end to end on the local default:
// it starts a MinIO server (S3, STS, SSE-KMS) on a free loopback port, creates
// the demo bucket from testdata/demo/inbox, creates a platform user whose only
// policy is the permissions policy s3connector generates, then runs
// `s3connector policy` and `s3connector validate` on testdata/demo/config.yaml.
//
// Run it with `make demo`, which builds the tools and the binary first.
package main

import (
	"bytes"
	"context"
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

	externalID, err := connector.NewExternalID()
	if err != nil {
		return err
	}
	configFile := filepath.Join(*demoDir, "config.yaml")
	env := append(os.Environ(),
		"DEMO_EXTERNAL_ID="+externalID,
		"DEMO_S3_ENDPOINT="+srv.Endpoint,
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

	if *keep {
		fmt.Fprintf(out, "\nMinIO keeps running at %s (root user %s); press Ctrl-C to stop.\n", srv.Endpoint, srv.RootUser)
		<-ctx.Done()
	}
	return nil
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
