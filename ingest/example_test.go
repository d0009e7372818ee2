package ingest_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/s3connector/s3connector/config"
	"github.com/s3connector/s3connector/connector"
	"github.com/s3connector/s3connector/connector/miniotest"
	"github.com/s3connector/s3connector/ingest"
	"github.com/s3connector/s3connector/ingest/ingesttest"
)

// lineCounter is a custom sink: it counts the lines of every file and
// rejects files with fewer than minLines lines as bad content.
type lineCounter struct {
	minLines int
	total    atomic.Int64
}

func (l *lineCounter) Import(_ context.Context, f ingest.File, body io.Reader) error {
	lines := 0
	sc := bufio.NewScanner(body)
	for sc.Scan() {
		lines++
	}
	if err := sc.Err(); err != nil {
		return err // reading failed: transient, retried next run
	}
	if lines < l.minLines {
		// Bad content: the file goes to error/ with a report.
		return ingest.Permanent(fmt.Errorf("%s has %d lines, want at least %d", f.RelKey, lines, l.minLines))
	}
	l.total.Add(int64(lines))
	return nil
}

// A Go program plugs in its own importer: register a type with a factory,
// name it in the configuration (its settings go under importer.options),
// and run the connection. Here against a local MinIO.
func Example_customImporter() {
	var sink *lineCounter
	ingest.Register("linecount", func(cfg config.Importer, _ ingest.Deps) (ingest.Importer, error) {
		min, ok := cfg.Options["min_lines"].(int)
		if !ok {
			return nil, errors.New("importer.options.min_lines: is required (an integer)")
		}
		sink = &lineCounter{minLines: min}
		return sink, nil
	})

	ctx := context.Background()
	srv, err := miniotest.Start(ctx)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer srv.Close()
	srv.CreateBucket(ctx, "example-imports")
	srv.Put(ctx, "example-imports", "inbox/orders.csv", []byte("id,total\n1,10\n2,20\n"))
	srv.Put(ctx, "example-imports", "inbox/2026/customers.csv", []byte("id,name\n1,Ada\n"))
	srv.Put(ctx, "example-imports", "inbox/empty.csv", nil)

	cfg, err := config.Parse([]byte(`
principal_arn: arn:aws:iam::049579744830:root
connections:
  - name: example
    status: active
    account_id: "123456789012"
    bucket: example-imports
    region: ap-southeast-2
    base_path: inbox/
    external_id: example-external-id-0000000000000000
    endpoint: ` + srv.Endpoint + `
    sts_endpoint: ` + srv.Endpoint + `
    importer:
      type: linecount
      options:
        min_lines: 1
`))
	if err != nil {
		fmt.Println(err)
		return
	}
	c := cfg.Connections[0]

	// The platform identity (on AWS: the default credential chain) is a
	// MinIO user holding the permissions policy generated for the role.
	policy, _ := json.Marshal(connector.PermissionsPolicyFor(c))
	if err := srv.AddUser(ctx, "example-platform", "example-platform-secret", policy); err != nil {
		fmt.Println(err)
		return
	}
	platform := aws.Config{
		Region:      miniotest.Region,
		Credentials: credentials.NewStaticCredentialsProvider("example-platform", "example-platform-secret", ""),
		HTTPClient:  awshttp.NewBuildableClient(),
	}
	conn, err := connector.New(platform, cfg.PrincipalARN, c)
	if err != nil {
		fmt.Println(err)
		return
	}
	imp, err := ingest.New(c.Importer, ingest.Deps{})
	if err != nil {
		fmt.Println(err)
		return
	}
	runner, err := ingest.NewRunner(conn, ingest.Options{Importer: imp})
	if err != nil {
		fmt.Println(err)
		return
	}
	runCtx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	s := runner.Run(runCtx)
	fmt.Printf("listed %d, archived %d, errored %d, left %d\n", s.Listed, s.Archived, s.Errored, s.Retry)
	fmt.Println("lines imported:", sink.total.Load())
	// Output:
	// listed 3, archived 2, errored 1, left 0
	// lines imported: 5
}

// An importer's author runs the conformance suite on it (see package
// ingesttest): lineCounter keeps nothing to look at, and an empty file is
// bad content for it.
func TestConformanceLineCounter(t *testing.T) {
	ingesttest.Run(t, func(*testing.T) ingesttest.Harness { return lineCounterHarness{} })
}

type lineCounterHarness struct{}

func (lineCounterHarness) New(*testing.T) (ingest.Importer, error) {
	return &lineCounter{minLines: 1}, nil
}

func (lineCounterHarness) Delivered(*testing.T, ingest.File) ([]byte, bool) { return nil, false }

func (lineCounterHarness) Features() ingesttest.Features {
	return ingesttest.Features{NoDeliveries: true, EmptyIsBad: true}
}
