package main

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/s3connector/s3connector/config"
	"github.com/s3connector/s3connector/connector"
)

func runValidate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("validate", stderr)
	configFile := fs.String("config", "", "configuration file (required)")
	name := fs.String("connection", "", "validate only this connection (default: every connection that is not disabled)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *configFile == "" {
		return fmt.Errorf("%w: --config is required", errUsage)
	}
	cfg, err := config.Load(*configFile)
	if err != nil {
		return err
	}
	var conns []config.Connection
	if *name != "" {
		c, err := lookupConnection(cfg, *name, *configFile)
		if err != nil {
			return err
		}
		conns = append(conns, *c)
	} else {
		for _, c := range cfg.Connections {
			if c.Status != config.StatusDisabled {
				conns = append(conns, c)
			}
		}
		if len(conns) == 0 {
			return fmt.Errorf("%s: every connection is disabled; name one with --connection", *configFile)
		}
	}
	platform, err := connector.LoadPlatformConfig(ctx)
	if err != nil {
		return err
	}
	failed := 0
	for i, c := range conns {
		if i > 0 {
			fmt.Fprintln(stdout)
		}
		if !validateOne(ctx, platform, cfg.PrincipalARN, c, stdout) {
			failed++
		}
	}
	if failed > 0 {
		return &exitError{code: 1}
	}
	return nil
}

// validateOne prints one line per check, then the success line or the
// troubleshooting advice, and reports whether the connection is valid.
func validateOne(ctx context.Context, platform aws.Config, principal string, c config.Connection, w io.Writer) bool {
	fmt.Fprintf(w, "Validating connection %q: s3://%s/%s in %s as %s\n", c.Name, c.Bucket, c.BasePath, c.Region, c.RoleARN())
	conn, err := connector.New(platform, principal, c)
	if err != nil {
		fmt.Fprintf(w, "  FAIL  %v\n", err)
		printAdvice(w, connector.Advise(principal, c, err))
		return false
	}
	report, err := conn.Validate(ctx, connector.WithPlatform(platform))
	for _, check := range report.Checks {
		// One line per check, its state first (ok, FAIL or SKIP); a failed
		// check's error and a skipped check's reason on the next line.
		fmt.Fprintf(w, "  %-4s  %-30s %s\n", check.State(), check.Name, check.Detail)
		switch check.State() {
		case connector.CheckFailed:
			fmt.Fprintf(w, "        %v\n", check.Err)
		case connector.CheckSkipped:
			fmt.Fprintf(w, "        skipped: %s\n", check.Skipped)
		}
	}
	if err != nil {
		printAdvice(w, conn.AdviceFor(err))
		return false
	}
	fmt.Fprintln(w, report.SuccessLine())
	return true
}

// lookupConnection finds a connection named on the command line.
func lookupConnection(cfg *config.Config, name, configFile string) (*config.Connection, error) {
	c, ok := cfg.Connection(name)
	if !ok {
		return nil, fmt.Errorf("%w: no connection named %q in %s", errUsage, name, configFile)
	}
	return c, nil
}

func printAdvice(w io.Writer, a connector.Advice) {
	fmt.Fprintf(w, "Validation failed: %s\nCheck the following:\n", a.Headline)
	for _, c := range a.Checks {
		// A check may carry a policy block over several lines: indent them
		// under the bullet.
		fmt.Fprintf(w, "  * %s\n", strings.ReplaceAll(c, "\n", "\n      "))
	}
}
