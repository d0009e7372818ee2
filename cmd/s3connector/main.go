// Command s3connector is the "bring your own S3 bucket" ingestion connector.
//
//	s3connector connection new --name NAME [--account-id ID --bucket B --region R --base-path P]
//	s3connector policy   --config FILE --connection NAME [--format json|text] [--document trust|permissions|kms]
//	s3connector policy   --platform [--partition P | --config FILE]
//	s3connector validate --config FILE [--connection NAME]
//	s3connector run      --config FILE [--once [--connection NAME]]
//	s3connector requeue  --config FILE --connection NAME (--list | ERROR_KEY...)
//	s3connector version
//
// This package only wires: flags, output and exit codes. The work is done by
// the config and connector packages.
package main

import (
	_ "time/tzdata" // CRON_TZ schedules on images without zoneinfo

	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"syscall"
)

// Set by the build (-ldflags "-X main.version=... -X main.commit=...").
var (
	version = "dev"
	commit  = "unknown"
)

// exitError carries a non-zero exit code to main. Its message, if any, has
// already been printed.
type exitError struct{ code int }

func (e *exitError) Error() string { return fmt.Sprintf("exit status %d", e.code) }

// errUsage marks command-line mistakes (exit code 2).
var errUsage = errors.New("usage")

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(exitCode(err, os.Stderr))
}

func exitCode(err error, stderr io.Writer) int {
	var ee *exitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ee):
		return ee.code
	case errors.Is(err, errUsage):
		fmt.Fprintln(stderr, "s3connector:", err)
		return 2
	}
	fmt.Fprintln(stderr, "s3connector:", err)
	return 1
}

const usage = `s3connector — bring-your-own-S3-bucket ingestion connector

Usage:
  s3connector connection new --name NAME [--account-id ID] [--bucket B] [--region R] [--base-path P] [--principal-arn ARN | --config FILE]
      Print a ready YAML connection block with a freshly generated External ID,
      followed by the IAM role setup steps for the customer.
  s3connector policy --config FILE --connection NAME [--format json|text] [--document trust|permissions|kms]
      Print the IAM role name, trust policy and permissions policy of a connection.
  s3connector policy --platform [--partition P | --config FILE]
      Print the identity policy the platform principal itself should carry.
  s3connector validate --config FILE [--connection NAME]
      Test connections: assume the role, find the bucket, list, write/read/delete a marker.
  s3connector run --config FILE [--once [--connection NAME]]
      The daemon: every active connection on its schedule; /metrics, /healthz and
      /readyz on the listen address. With --once: one pass, a summary line per
      connection, exit 0 when every listed file was moved, 1 otherwise.
  s3connector requeue --config FILE --connection NAME (--list | ERROR_KEY...)
      List the files in a connection's error/ with their reasons, or move the given
      ones back to the inbox (copy, then conditional delete; never over a waiting file).
  s3connector version
      Print version, commit and Go version.

Run 's3connector COMMAND -h' for a command's flags.
`

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return fmt.Errorf("%w: no command given", errUsage)
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "connection":
		if len(rest) == 0 || rest[0] != "new" {
			return fmt.Errorf("%w: 'connection' takes the subcommand 'new'", errUsage)
		}
		return runConnectionNew(rest[1:], stdout, stderr)
	case "policy":
		return runPolicy(rest, stdout, stderr)
	case "validate":
		return runValidate(ctx, rest, stdout, stderr)
	case "run":
		return runRun(ctx, rest, stdout, stderr)
	case "requeue":
		return runRequeue(ctx, rest, stdout, stderr)
	case "version":
		fmt.Fprintf(stdout, "s3connector %s (commit %s, %s)\n", version, commit, runtime.Version())
		return nil
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprint(stderr, usage)
	return fmt.Errorf("%w: unknown command %q", errUsage, cmd)
}

// newFlagSet returns a FlagSet whose parse errors are usage errors.
func newFlagSet(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("s3connector "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}

func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return &exitError{code: 0}
		}
		return &exitError{code: 2}
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: unexpected argument %q", errUsage, fs.Arg(0))
	}
	return nil
}
