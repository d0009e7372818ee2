package main

import (
	"fmt"
	"io"
	"strings"
	"text/template"

	"github.com/s3connector/s3connector/config"
	"github.com/s3connector/s3connector/connector"
)

// Placeholders for values not given on the command line; config validation
// rejects them, so a forgotten one cannot go unnoticed.
const (
	placeholderAccount = "YOUR_AWS_ACCOUNT_ID"
	placeholderBucket  = "YOUR_BUCKET_NAME"
	placeholderRegion  = "YOUR_BUCKET_REGION"
)

var connectionTemplate = template.Must(template.New("connection").Parse(`# New connection {{printf "%q" .Name}}: add this block under "connections:" in your
# configuration file. The External ID was generated just now and is unique
# to this connection: keep it exactly as printed (no spaces or line breaks),
# or move it to an environment variable and write external_id: ${VAR}.
# The connection starts as a draft; set status: active once
# "s3connector validate" succeeds.
  - name: {{.Name}}
    status: draft
    account_id: "{{.AccountID}}"
    bucket: {{.Bucket}}
    region: {{.Region}}
{{- if .BasePath}}
    base_path: {{printf "%q" .BasePath}}
{{- end}}
    role_name: {{.RoleName}}
    external_id: {{.ExternalID}}
    schedule: "{{.Schedule}}"
    workers: {{.Workers}}
    importer: {type: discard}   # choose the importer for this connection

`))

func runConnectionNew(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("connection new", stderr)
	name := fs.String("name", "", "connection name, [a-z0-9-] (required)")
	accountID := fs.String("account-id", "", "customer's 12-digit AWS account id")
	bucket := fs.String("bucket", "", "customer's bucket name")
	region := fs.String("region", "", "AWS region of the bucket, e.g. ap-southeast-2")
	basePath := fs.String("base-path", "", "optional folder within the bucket, e.g. imports/")
	principal := fs.String("principal-arn", "", "platform principal shown in the trust policy (default: principal_arn from --config)")
	configFile := fs.String("config", "", "configuration file to read principal_arn from")
	if err := parseFlags(fs, args); err != nil {
		return err
	}

	var problems []string
	check := func(flag, value string, validate func(string) error) {
		if value == "" {
			return
		}
		if err := validate(value); err != nil {
			problems = append(problems, fmt.Sprintf("--%s: %v", flag, err))
		}
	}
	if *name == "" {
		problems = append(problems, "--name: required")
	}
	check("name", *name, config.ValidateName)
	check("account-id", *accountID, config.ValidateAccountID)
	check("bucket", *bucket, config.ValidateBucket)
	check("region", *region, config.ValidateRegion)
	check("base-path", *basePath, config.ValidateBasePath)
	if *principal == "" && *configFile != "" {
		cfg, err := config.Load(*configFile)
		if err != nil {
			return err
		}
		*principal = cfg.PrincipalARN
	}
	if *principal == "" {
		problems = append(problems, "--principal-arn: required (or --config with principal_arn): it is the platform principal the trust policy allows")
	}
	if len(problems) > 0 {
		return fmt.Errorf("%w: %s", errUsage, strings.Join(problems, "\n  "))
	}

	externalID, err := connector.NewExternalID()
	if err != nil {
		return fmt.Errorf("generate external id: %w", err)
	}
	c := config.Connection{
		Name:       *name,
		Status:     config.StatusDraft,
		AccountID:  orDefault(*accountID, placeholderAccount),
		Bucket:     orDefault(*bucket, placeholderBucket),
		Region:     orDefault(*region, placeholderRegion),
		BasePath:   config.NormalizeBasePath(*basePath),
		RoleName:   config.RoleNamePrefix + *name,
		ExternalID: externalID,
		Schedule:   config.DefaultSchedule,
		Workers:    config.DefaultWorkers,
	}
	if err := connectionTemplate.Execute(stdout, c); err != nil {
		return err
	}
	if *accountID == "" || *bucket == "" || *region == "" {
		fmt.Fprintf(stdout, "# Fill in the %s placeholders before use.\n\n", strings.Join(missing(*accountID, *bucket, *region), ", "))
	}
	cfgArg := *configFile
	if cfgArg == "" {
		cfgArg = "CONFIG.yaml"
	}
	err = connector.PoliciesFor(*principal, c).WriteText(stdout, fmt.Sprintf("s3connector validate --config %s --connection %s", cfgArg, c.Name))
	if err != nil {
		return fmt.Errorf("write the IAM setup steps: %w", err)
	}
	return nil
}

func orDefault(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

func missing(accountID, bucket, region string) []string {
	var m []string
	if accountID == "" {
		m = append(m, placeholderAccount)
	}
	if bucket == "" {
		m = append(m, placeholderBucket)
	}
	if region == "" {
		m = append(m, placeholderRegion)
	}
	return m
}
