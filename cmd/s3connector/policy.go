package main

import (
	"fmt"
	"io"

	"github.com/s3connector/s3connector/config"
	"github.com/s3connector/s3connector/connector"
)

func runPolicy(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("policy", stderr)
	configFile := fs.String("config", "", "configuration file (required)")
	name := fs.String("connection", "", "connection name (required)")
	format := fs.String("format", "json", "output format: json (the IAM documents) or text (a step-by-step setup guide)")
	document := fs.String("document", "", "print only one raw IAM document: trust, permissions or kms")
	if err := parseFlags(fs, args); err != nil {
		return err
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
