package connector

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go"
)

// ErrTrustPolicyOpen: STS let the platform assume the customer's role with an
// External ID that is not the connection's, so the trust policy does not
// require the sts:ExternalId condition.
var ErrTrustPolicyOpen = errors.New("the role can be assumed with a wrong External ID: its trust policy does not require this connection's sts:ExternalId")

// ValidateOption configures Validate.
type ValidateOption func(*validateOptions)

type validateOptions struct {
	platform *aws.Config
	// anySTSEndpoint runs the trust check whatever the STS endpoint. Only
	// tests set it, to run the check against a recording STS on loopback
	// that answers as AWS would.
	anySTSEndpoint bool
	// countLimit is where the list check stops counting (WithCountLimit);
	// 0: CountCap.
	countLimit int
}

// WithCountLimit makes Validate's list check stop counting waiting files
// at limit (at least 1) instead of CountCap. The daemon, which validates
// before it schedules a connection and needs no count, passes a page's
// worth: on an inbox of millions ten LIST pages delay the first run by
// seconds.
func WithCountLimit(limit int) ValidateOption {
	return func(o *validateOptions) { o.countLimit = max(limit, 1) }
}

// WithPlatform gives Validate the platform identity (the aws.Config passed
// to New), which the trust-policy check needs to call STS itself with a
// wrong External ID. Without it that check is reported as skipped.
func WithPlatform(platform aws.Config) ValidateOption {
	return func(o *validateOptions) { o.platform = &platform }
}

// skippedCheck is what a check returns when it did not run; Validate records
// it as CheckResult.Skipped, which does not fail the report.
type skippedCheck struct{ reason string }

func (s *skippedCheck) Error() string { return "skipped: " + s.reason }

// trustCheckSessionPolicy is the inline session policy of the wrong-ID
// attempt. If STS grants the attempt (the very case the check exists to
// catch), the resulting session's permissions are the intersection of the
// role's policies and this one, i.e. nothing (AssumeRole API reference,
// Policy parameter: "The resulting session's permissions are the
// intersection of the role's identity-based policy and the session
// policies"). The credentials are never used anyway.
const trustCheckSessionPolicy = `{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":"*","Resource":"*"}]}`

// trustCheckSeconds is the shortest session STS grants (15 minutes), for the
// same reason.
const trustCheckSeconds = 900

// checkTrustPolicy tries to assume the role with a random External ID that
// is not the connection's, and requires STS to refuse it with AccessDenied.
//
// Every customer's role trusts the same platform principal; what tells one
// customer's connection from another's is the External ID. "The primary
// function of the external ID is to address and prevent the confused deputy
// problem" (IAM User Guide, "The confused deputy problem",
// https://docs.aws.amazon.com/IAM/latest/UserGuide/confused-deputy.html):
// without the sts:ExternalId condition in the trust policy any other
// customer of the platform could name this role in their own connection and
// the connector would assume it for them. Assuming the role with the right
// ID proves only that the ID is accepted, not that it is required; this
// check proves the second.
//
// The check runs only against AWS STS. S3-compatible STS servers (MinIO,
// which accepts but ignores ExternalId and RoleArn) grant any ID, so on them
// a granted wrong ID proves nothing: the check is skipped with that reason.
//
// Anything but AccessDenied or credentials (throttling after the SDK's own
// retries, network trouble, an unexpected error code such as
// InvalidClientTokenId) fails the check as FailureOther: the connection
// would otherwise be activated without the property being shown, and the
// caller (a person rerunning validate, the daemon's backoff) retries.
func (c *Connection) checkTrustPolicy(ctx context.Context, o validateOptions) (string, error) {
	if o.platform == nil {
		return "", &skippedCheck{"the platform identity was not passed to Validate (connector.WithPlatform)"}
	}
	client := c.trustCheckSTS(*o.platform)
	if reason := notAWSSTS(aws.ToString(client.Options().BaseEndpoint)); reason != "" && !o.anySTSEndpoint {
		return "", &skippedCheck{reason}
	}
	wrongID, err := NewExternalID()
	if err != nil {
		return "", err
	}
	if wrongID == c.cfg.ExternalID {
		return "", errors.New("generated the connection's own External ID as the wrong one; run validation again")
	}
	_, err = client.AssumeRole(ctx, &sts.AssumeRoleInput{
		RoleArn:         aws.String(c.cfg.RoleARN()),
		RoleSessionName: aws.String(trustCheckSessionName(c.cfg.Name)),
		ExternalId:      aws.String(wrongID),
		DurationSeconds: aws.Int32(trustCheckSeconds),
		Policy:          aws.String(trustCheckSessionPolicy),
	})
	if err == nil {
		return "", fmt.Errorf("assume role %s with a random wrong External ID: STS granted it: %w", c.cfg.RoleARN(), ErrTrustPolicyOpen)
	}
	if isAccessDenied(err) {
		return "a random wrong External ID is refused (AccessDenied)", nil
	}
	return "", fmt.Errorf("assume role %s with a random wrong External ID: STS answered neither AccessDenied nor credentials, so whether the trust policy requires the External ID is unknown: %w", c.cfg.RoleARN(), Classify(err, c.cfg.Region))
}

// isAccessDenied reports whether STS refused the AssumeRole itself. Only the
// code AccessDenied counts: InvalidClientTokenId or ExpiredToken (which
// Classify also calls access denied) say the platform's own credentials
// failed, which proves nothing about the trust policy.
func isAccessDenied(err error) bool {
	var apiErr smithy.APIError
	return errors.As(err, &apiErr) && apiErr.ErrorCode() == "AccessDenied"
}

// trustCheckSTS is an STS client signed with the platform identity and
// configured as New configures the connection's own: no redirect followed
// (newHTTPClient: a wrong-ID AssumeRole is no more to be sent to another host
// than the real one), the platform's region, else the bucket's; the
// connection's sts_endpoint when it has one.
func (c *Connection) trustCheckSTS(platform aws.Config) *sts.Client {
	return sts.NewFromConfig(platform, func(o *sts.Options) {
		o.HTTPClient = newHTTPClient(platform.HTTPClient, 1)
		o.APIOptions = append(o.APIOptions, addRedirectError)
		if o.Region == "" {
			o.Region = c.cfg.Region
		}
		if c.cfg.STSEndpoint != "" {
			o.BaseEndpoint = aws.String(c.cfg.STSEndpoint)
		}
	})
}

// notAWSSTS returns why an STS endpoint is not AWS's, or "" when it is: no
// endpoint override (the SDK resolves AWS's regional endpoint), or a host
// under an AWS domain (regional, FIPS and VPC endpoint names such as
// sts.ap-southeast-2.amazonaws.com or vpce-...sts.eu-west-1.vpce.amazonaws.com).
func notAWSSTS(endpoint string) string {
	if endpoint == "" {
		return ""
	}
	host := endpoint
	if u, err := url.Parse(endpoint); err == nil && u.Hostname() != "" {
		host = u.Hostname()
	}
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	for _, domain := range []string{"amazonaws.com", "amazonaws.com.cn", "api.aws"} {
		if host == domain || strings.HasSuffix(host, "."+domain) {
			return ""
		}
	}
	return "sts_endpoint " + host + " is not AWS STS: S3-compatible STS servers such as MinIO accept but ignore ExternalId, so a wrong one being granted proves nothing"
}

// trustCheckSessionName names the wrong-ID attempt in the customer's
// CloudTrail, apart from the connection's real sessions.
func trustCheckSessionName(connection string) string {
	name := "s3connector-trustcheck-" + connection
	if len(name) > 64 {
		name = name[:64]
	}
	return name
}
