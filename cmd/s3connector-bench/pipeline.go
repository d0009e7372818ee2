package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/s3connector/s3connector/connector/miniotest"
)

// The platform identity of the pipeline's process: a MinIO user allowed
// everything on the bench buckets (see newBench).
const platformUser, platformSecret = "bench-platform", "bench-platform-secret"

// writeConfig writes the configuration `s3connector run --once` reads for
// case c: one active connection with the discard importer and the product's
// defaults otherwise (log level info, JSON).
func writeConfig(dir string, c *benchCase, externalID string) (string, error) {
	yaml := `principal_arn: arn:aws:iam::049579744830:root
connections:
  - name: ` + c.connName + `
    status: active
    account_id: "123456789012"
    bucket: ` + c.set.bucket + `
    region: ` + miniotest.Region + `
    base_path: ` + basePath + `
    role_name: s3connector-bench
    external_id: ` + externalID + `
    endpoint: ` + c.endpoint + `
    sts_endpoint: ` + c.endpoint + `
    schedule: "@every 1h"
    workers: ` + strconv.Itoa(c.workers) + `
    importer:
      type: discard
`
	path := filepath.Join(dir, c.connName+".yaml")
	return path, os.WriteFile(path, []byte(yaml), 0o600)
}

// summaryRE reads `run --once`'s summary line: archived count and the run's
// duration (Summary.Duration: lease, state records, listing and every file;
// not the process start nor the role assumption).
var summaryRE = regexp.MustCompile(`: listed (\d+), imported (\d+), archived (\d+), errored (\d+), left for retry (\d+), .+ in (\S+) \(run [0-9a-f]+\)`)

// pipelineRun runs `s3connector run --once` over c's inbox in a process of
// its own and returns the files it archived, the run's duration and the
// process's resource usage (CPU over its whole life, peak RSS).
func pipelineRun(ctx context.Context, binary string, c *benchCase, extraEnv ...string) (files int, elapsed time.Duration, ru *syscall.Rusage, err error) {
	cmd := exec.CommandContext(ctx, binary, "run", "--once", "--config", c.configFile)
	var env []string
	for _, kv := range os.Environ() {
		// The platform identity comes from the environment, as in
		// production; AWS_CA_BUNDLE and the rest stay as they are.
		if k, _, _ := strings.Cut(kv, "="); k == "AWS_PROFILE" || k == "AWS_SESSION_TOKEN" || k == "AWS_ACCESS_KEY_ID" || k == "AWS_SECRET_ACCESS_KEY" || k == "AWS_REGION" {
			continue
		}
		env = append(env, kv)
	}
	cmd.Env = append(env, "AWS_ACCESS_KEY_ID="+platformUser, "AWS_SECRET_ACCESS_KEY="+platformSecret, "AWS_REGION="+miniotest.Region,
		"AWS_CONFIG_FILE="+os.DevNull, "AWS_SHARED_CREDENTIALS_FILE="+os.DevNull, "AWS_EC2_METADATA_DISABLED=true")
	cmd.Env = append(cmd.Env, extraEnv...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	runErr := cmd.Run()
	if cmd.ProcessState != nil {
		ru, _ = cmd.ProcessState.SysUsage().(*syscall.Rusage)
	}
	if runErr != nil {
		return 0, 0, ru, fmt.Errorf("s3connector run --once: %w\nstdout: %s\nstderr (tail): %s", runErr, stdout.String(), tail(stderr.String(), 2000))
	}
	m := summaryRE.FindStringSubmatch(stdout.String())
	if m == nil {
		return 0, 0, ru, fmt.Errorf("no summary line in the output of s3connector run --once: %q", stdout.String())
	}
	files, _ = strconv.Atoi(m[3])
	elapsed, err = time.ParseDuration(m[6])
	if err != nil {
		return 0, 0, ru, fmt.Errorf("summary line %q: %w", m[0], err)
	}
	if ru == nil {
		return 0, 0, nil, errors.New("no resource usage of the pipeline's process")
	}
	return files, elapsed, ru, nil
}

func tail(s string, n int) string {
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}

// buildBinary builds cmd/s3connector into dir, as `make build` does.
func buildBinary(ctx context.Context, dir string) (string, error) {
	out := filepath.Join(dir, "s3connector")
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-o", out, "./cmd/s3connector")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/s3connector: %w\n%s", err, b)
	}
	return out, nil
}
