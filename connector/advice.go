package connector

import (
	"errors"
	"fmt"

	"github.com/s3connector/s3connector/config"
)

// Advice is the troubleshooting guidance for a failed validation: a headline
// and the things to check, taken from the setup guide's troubleshooting
// section and filled in with this connection's values. It never contains a
// credential or the External ID.
type Advice struct {
	Headline string
	Checks   []string
}

// AdviceFor returns the advice for a validation failure of this connection.
func (c *Connection) AdviceFor(err error) Advice { return Advise(c.principal, c.cfg, err) }

// Advise returns the advice for err, an error of Validate or New, for the
// connection cfg whose trust policy names principal.
func Advise(principal string, cfg config.Connection, err error) Advice {
	var ve *ValidationError
	class := FailureOther
	if errors.As(err, &ve) {
		class = ve.Class
	} else if errors.Is(err, ErrInvalidExternalID) {
		class = FailureExternalID
	}
	switch class {
	case FailureAssumeRole:
		return Advice{
			Headline: `"Access denied" or "Not authorised to perform sts:AssumeRole": the connector cannot assume your IAM role.`,
			Checks: []string{
				fmt.Sprintf("The role name is exactly %s (case-sensitive) in account %s, i.e. %s.", cfg.RoleName, cfg.AccountID, cfg.RoleARN()),
				fmt.Sprintf("The trust policy Principal is %s.", principal),
				"The External ID in the trust policy matches this connection's external_id exactly: copy it from `s3connector policy` output to avoid whitespace issues.",
				"The platform's own AWS credentials are valid (the default credential chain: environment, IRSA, instance role).",
			},
		}
	case FailureS3Access:
		return Advice{
			Headline: "Role assumption succeeds but S3 operations fail: the connector reaches your account but cannot access the bucket.",
			Checks: []string{
				fmt.Sprintf("The permissions policy %s-access (from `s3connector policy`) is attached to the role %s.", cfg.RoleName, cfg.RoleName),
				fmt.Sprintf("The bucket policy of %s does not contain an explicit Deny that overrides the IAM permissions.", cfg.Bucket),
				fmt.Sprintf("If the bucket uses SSE-KMS encryption, the KMS key policy grants kms:Decrypt, kms:DescribeKey and kms:GenerateDataKey to %s.", cfg.RoleARN()),
			},
		}
	case FailureBucketRegion:
		checks := []string{
			fmt.Sprintf("Double-check the bucket name %q: it is case-sensitive and must not contain spaces.", cfg.Bucket),
			fmt.Sprintf("Verify the region %s matches the actual region of your bucket.", cfg.Region),
			fmt.Sprintf("Confirm the bucket exists in the same AWS account (%s) as the IAM role.", cfg.AccountID),
		}
		var re *RegionError
		if errors.As(err, &re) && re.Actual != "" {
			checks[1] = fmt.Sprintf("The bucket answered from region %s, but the connection is configured for %s: set region: %s.", re.Actual, cfg.Region, re.Actual)
		}
		return Advice{Headline: `"Bucket does not exist in region"`, Checks: checks}
	case FailureExternalID:
		return Advice{
			Headline: `"Invalid External ID" or "External ID mismatch"`,
			Checks: []string{
				"Copy the External ID for this connection directly from `s3connector policy` (or `s3connector connection new`) output.",
				"Check for any extra spaces or line breaks that may have been introduced when pasting, in the config and in the role's trust policy.",
			},
		}
	}
	return Advice{
		Headline: "The check did not complete: this is not a permissions problem we recognise.",
		Checks: []string{
			"Check network access from the daemon to the S3 and STS endpoints (proxies, firewalls, endpoint settings).",
			"If AWS is throttling requests, retry in a few minutes.",
		},
	}
}
