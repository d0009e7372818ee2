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

// trustConditionBlock is the Condition of the trust policy's statement (as
// TrustPolicy writes it), with a placeholder instead of the External ID,
// which advice never carries.
const trustConditionBlock = `"Condition": {
  "StringEquals": {
    "sts:ExternalId": "<external_id of this connection>"
  }
}`

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
		checks := []string{
			fmt.Sprintf("The permissions policy %s-access (from `s3connector policy`) is attached to the role %s.", cfg.RoleName, cfg.RoleName),
			fmt.Sprintf("The bucket policy of %s does not contain an explicit Deny that overrides the IAM permissions.", cfg.Bucket),
			fmt.Sprintf("If the bucket uses SSE-KMS encryption, the KMS key policy grants kms:Decrypt, kms:DescribeKey and kms:GenerateDataKey to %s.", cfg.RoleARN()),
		}
		objects := "arn:" + config.Partition(cfg.Region) + ":s3:::" + cfg.Bucket + "/" + cfg.BasePath
		switch step, _ := MarkerStep(err); step {
		case MarkerPut:
			checks = append(checks, fmt.Sprintf("Writing the validation marker, which is tagged as copied files are, needs s3:PutObject on %s* and s3:PutObjectTagging on %s%s*.", objects, objects, ArchiveFolder))
		case MarkerGet:
			checks = append(checks, fmt.Sprintf("Reading it back needs s3:GetObject on %s*.", objects))
		case MarkerDelete:
			// "conditional deletes with a specific ETag value require both
			// s3:DeleteObject and s3:GetObject" (AWS S3 User Guide).
			checks = append(checks, fmt.Sprintf("Removing a file once it is copied is a delete conditional on its ETag, which needs both s3:DeleteObject and s3:GetObject on %s*; a bucket policy Deny, an SCP or a permissions boundary can also refuse it (Object Lock and MFA Delete do not: a delete without a version id only adds a delete marker).", objects))
		}
		return Advice{
			Headline: "Role assumption succeeds but S3 operations fail: the connector reaches your account but cannot access the bucket.",
			Checks:   checks,
		}
	case FailureCopyAccess:
		objects := "arn:" + config.Partition(cfg.Region) + ":s3:::" + cfg.Bucket + "/" + cfg.BasePath
		return Advice{
			Headline: "The connector can write and read your bucket, but S3 refused the server-side copy that moves each file to archive/ or error/: files would be imported but never moved.",
			Checks: []string{
				fmt.Sprintf("The permissions policy %s-access attached to the role %s is the current one from `s3connector policy`: a copy keeps the file's tags, which needs s3:GetObjectTagging and s3:GetObjectVersionTagging on %s* and s3:PutObjectTagging on %s%s* and %s%s*.", cfg.RoleName, cfg.RoleName, objects, objects, ArchiveFolder, objects, ErrorFolder),
				fmt.Sprintf("On a versioned bucket the copy names the exact version imported, which needs s3:GetObjectVersion on %s*.", objects),
				fmt.Sprintf("The bucket policy of %s has no explicit Deny on copies or tags (for example on s3:PutObjectTagging, or a condition on s3:x-amz-copy-source or s3:RequestObjectTagKeys).", cfg.Bucket),
				fmt.Sprintf("If the bucket uses SSE-KMS encryption, the KMS key policy grants kms:Decrypt and kms:GenerateDataKey to %s: a copy decrypts and encrypts again.", cfg.RoleARN()),
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
	case FailureTrustPolicy:
		return Advice{
			Headline: fmt.Sprintf("The trust policy of %s does not require this connection's External ID: STS let the connector assume the role with a random, wrong one. Any other customer of this platform who names your role in their own connection could make the connector assume it and reach your bucket (the \"confused deputy\" problem).", cfg.RoleARN()),
			Checks: []string{
				fmt.Sprintf("In the statement of the trust policy that allows %s to perform sts:AssumeRole, add this condition block, with the External ID of connection %q (from `s3connector policy --connection %s --document trust`) in place of the placeholder:\n%s", principal, cfg.Name, cfg.Name, trustConditionBlock),
				"Remove any other statement of the trust policy that allows sts:AssumeRole without that condition: one Allow without it is enough to let any External ID in.",
				"Use StringEquals with exactly one value: no wildcard (StringLike \"*\"), no list of several IDs, no ...IfExists operator (it passes when no External ID is sent at all).",
				"Then run validation again: this check passes once STS refuses a wrong External ID with AccessDenied.",
			},
		}
	case FailureExternalID:
		return Advice{
			Headline: `"Invalid External ID" or "External ID mismatch"`,
			Checks: []string{
				"Copy the External ID for this connection directly from `s3connector policy` (or `s3connector connection new`) output.",
				"Check for any extra spaces or line breaks that may have been introduced when pasting, in the config and in the role's trust policy.",
			},
		}
	}
	if ve != nil && ve.Check == CheckTrustPolicy {
		return Advice{
			Headline: "The trust-policy check did not complete: STS answered a wrong External ID with neither AccessDenied nor credentials, so it is not known whether the role requires this connection's External ID.",
			Checks: []string{
				"Run validation again in a few minutes: throttling and network errors are retried by the SDK, and still failing means STS is not answering.",
				"Check that the platform's own AWS credentials are valid and that the daemon reaches the STS endpoint.",
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
