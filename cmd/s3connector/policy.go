package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/s3connector/s3connector/config"
	"github.com/s3connector/s3connector/connector"
)

func runPolicy(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("policy", stderr)
	configFile := fs.String("config", "", "configuration file (required)")
	name := fs.String("connection", "", "connection name (required)")
	format := fs.String("format", "json", "output format: json (the IAM documents) or text (a step-by-step setup guide)")
	document := fs.String("document", "", "print only one raw IAM document: trust, permissions or kms")
	platform := fs.Bool("platform", false, "print the identity policy the platform principal itself should carry (sts:AssumeRole only on "+config.RoleNamePrefix+"* roles, only with an External ID); --config is then optional")
	partition := fs.String("partition", "", "with --platform: the AWS partition (aws, aws-cn, aws-us-gov, ...); default: that of the connections in --config, else aws")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *platform {
		return runPlatformPolicy(*configFile, *partition, stdout, stderr)
	}
	if *configFile == "" || *name == "" {
		return fmt.Errorf("%w: --config and --connection are required", errUsage)
	}
	if *format != "json" && *format != "text" {
		return fmt.Errorf("%w: --format must be json or text, got %q", errUsage, *format)
	}
	cfg, err := config.Load(*configFile)
	if err != nil {
		return err
	}
	c, err := lookupConnection(cfg, *name, *configFile)
	if err != nil {
		return err
	}
	if c.ExternalID == "" {
		return fmt.Errorf("connection %q has no external_id: generate one with `s3connector connection new --name %s` and add it to %s", c.Name, c.Name, *configFile)
	}
	p := connector.PoliciesFor(cfg.PrincipalARN, *c)
	switch {
	case *document != "":
		return p.WriteDocument(stdout, *document)
	case *format == "text":
		return p.WriteText(stdout, fmt.Sprintf("s3connector validate --config %s --connection %s", *configFile, c.Name))
	}
	return p.WriteJSON(stdout)
}

// runPlatformPolicy prints the platform principal's identity policy. With a
// config file the partition comes from its connections (one partition: a
// principal cannot assume roles in another), and connections whose role name
// the policy does not cover are named on stderr.
func runPlatformPolicy(configFile, partition string, stdout, stderr io.Writer) error {
	if configFile != "" {
		cfg, err := config.Load(configFile)
		if err != nil {
			return err
		}
		for _, c := range cfg.Connections {
			p := config.Partition(c.Region)
			switch {
			case partition == "":
				partition = p
			case p != partition:
				return fmt.Errorf("connection %q is in partition %s, not %s: a principal assumes roles only in its own partition; print one policy per partition with --partition", c.Name, p, partition)
			}
			if !strings.HasPrefix(c.RoleName, config.RoleNamePrefix) {
				fmt.Fprintf(stderr, "warning: connection %q uses role %s, which this policy does not cover (role names must start with %q)\n", c.Name, c.RoleName, config.RoleNamePrefix)
			}
		}
	}
	return connector.WritePlatformPolicy(stdout, partition)
}
