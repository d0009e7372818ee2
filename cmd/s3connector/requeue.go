package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/s3connector/s3connector/archive"
	"github.com/s3connector/s3connector/config"
	"github.com/s3connector/s3connector/connector"
)

// runRequeue lists the files of a connection's error/ or moves chosen ones
// back to its inbox (archive.Mover.Requeue), for connections of the
// configuration file.
func runRequeue(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("requeue", stderr)
	configFile := fs.String("config", "", "configuration file (required)")
	name := fs.String("connection", "", "the connection (required)")
	list := fs.Bool("list", false, "list the files in error/ with their reasons instead")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: s3connector requeue --config FILE --connection NAME (--list | ERROR_KEY...)")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return &exitError{code: 0}
		}
		return &exitError{code: 2}
	}
	if *configFile == "" || *name == "" {
		return fmt.Errorf("%w: --config and --connection are required", errUsage)
	}
	keys := fs.Args()
	if *list == (len(keys) > 0) {
		return fmt.Errorf("%w: give either --list or the error/ keys to requeue", errUsage)
	}
	cfg, err := config.Load(*configFile)
	if err != nil {
		return err
	}
	c, err := lookupConnection(cfg, *name, *configFile)
	if err != nil {
		return err
	}
	platform, err := connector.LoadPlatformConfig(ctx)
	if err != nil {
		return err
	}
	conn, err := connector.New(platform, cfg.PrincipalARN, *c)
	if err != nil {
		return err
	}
	m := &archive.Mover{S3: conn.S3(), Bucket: c.Bucket, BasePath: c.BasePath}
	if *list {
		files, err := m.ListErrors(ctx, conn.S3(), 0)
		if err != nil {
			return err
		}
		for _, f := range files {
			reason := "(no report)"
			if f.Report != nil {
				reason = f.Report.ReasonCode + ": " + f.Report.Reason
			}
			fmt.Fprintf(stdout, "%s\t%d bytes\t%s\n", f.Key, f.Size, reason)
		}
		fmt.Fprintf(stdout, "%d files in s3://%s/%serror/\n", len(files), c.Bucket, c.BasePath)
		return nil
	}
	failed := 0
	for _, k := range keys {
		// Keys may be given relative to the base path, as /status and
		// reports show them, or in full.
		if !strings.HasPrefix(k, c.BasePath) {
			k = c.BasePath + k
		}
		target, err := m.Requeue(ctx, conn.S3(), k)
		if err != nil {
			fmt.Fprintln(stderr, "s3connector:", err)
			failed++
			continue
		}
		fmt.Fprintf(stdout, "requeued %s -> %s\n", k, target)
	}
	if failed > 0 {
		return &exitError{code: 1}
	}
	return nil
}
