package connector

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/s3connector/s3connector/config"
)

// PolicyVersion is the IAM policy language version of every document we
// generate; "2012-10-17" is the only one that supports policy variables and
// the one AWS documents.
const PolicyVersion = "2012-10-17"

// Sids of the generated statements. They show in the customer's IAM console
// and in the setup guide, so they are part of the contract.
const (
	SidAssumeRole       = "AllowS3ConnectorAssumeRole"
	SidListBucket       = "ListBucket"
	SidObjectOperations = "ObjectOperations"
	SidTagCopies        = "TagProcessedCopies"
	SidKMSKey           = "AllowS3ConnectorUseOfTheKey"
)

// Names of the documents WriteDocument prints.
const (
	DocumentTrust       = "trust"
	DocumentPermissions = "permissions"
	DocumentKMS         = "kms"
)

// PolicyDocument is an IAM policy document: a role's trust policy or an
// identity-based permissions policy.
type PolicyDocument struct {
	Version   string            `json:"Version"`
	Statement []PolicyStatement `json:"Statement"`
}

// PolicyStatement is one statement of a policy document. Principal is set
// only in resource-based policies (trust and key policies); Resource is never
// set in a trust policy.
type PolicyStatement struct {
	Sid       string                  `json:"Sid,omitempty"`
	Effect    string                  `json:"Effect"`
	Principal map[string]StringOrList `json:"Principal,omitempty"`
	Action    StringOrList            `json:"Action"`
	Resource  StringOrList            `json:"Resource,omitempty"`
	Condition PolicyCondition         `json:"Condition,omitempty"`
}

// PolicyCondition maps a condition operator ("StringEquals") to condition
// keys ("sts:ExternalId") and their values. encoding/json writes map keys
// sorted, so the output is stable.
type PolicyCondition map[string]map[string]StringOrList

// StringOrList is a list of policy values (actions, resources, principals,
// condition values). IAM accepts a single value or a list wherever one of
// these appears; we always write one value as a plain string and several as
// a list, which is how AWS's own examples read. Both forms are accepted when
// decoding.
type StringOrList []string

// MarshalJSON writes a single value as a string, anything else as a list.
func (s StringOrList) MarshalJSON() ([]byte, error) {
	if len(s) == 1 {
		return marshalUnescaped(s[0])
	}
	if s == nil {
		return []byte("[]"), nil
	}
	return marshalUnescaped([]string(s))
}

// marshalUnescaped is json.Marshal without HTML escaping: the encoder's
// SetEscapeHTML(false) does not undo the escaping of a MarshalJSON's own
// output, so "<", ">" and "&" in values would print as \u003c and so on.
func marshalUnescaped(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}

// UnmarshalJSON accepts a string or a list of strings.
func (s *StringOrList) UnmarshalJSON(b []byte) error {
	var one string
	if err := json.Unmarshal(b, &one); err == nil {
		*s = StringOrList{one}
		return nil
	}
	var many []string
	if err := json.Unmarshal(b, &many); err != nil {
		return fmt.Errorf("policy value: want a string or a list of strings: %w", err)
	}
	*s = many
	return nil
}

// TrustPolicy is the role's trust policy: principalARN (the platform's own
// identity) may assume the role, and only when it presents externalID.
func TrustPolicy(principalARN, externalID string) PolicyDocument {
	return PolicyDocument{
		Version: PolicyVersion,
		Statement: []PolicyStatement{{
			Sid:       SidAssumeRole,
			Effect:    "Allow",
			Principal: map[string]StringOrList{"AWS": {principalARN}},
			Action:    StringOrList{"sts:AssumeRole"},
			Condition: PolicyCondition{
				"StringEquals": {"sts:ExternalId": {externalID}},
			},
		}},
	}
}

// PermissionsPolicy is the least-privilege permissions policy for a bucket
// in the "aws" partition; use PermissionsPolicyFor for a connection, which
// picks the partition from its region.
//
// basePath is empty or ends with "/" (config normalises it). With a base
// path, listing is allowed only under it and objects are reachable only
// under it.
func PermissionsPolicy(bucket, basePath string) PolicyDocument {
	return permissionsPolicy("aws", bucket, basePath)
}

// PermissionsPolicyFor is PermissionsPolicy for a connection, in the
// partition of its region.
func PermissionsPolicyFor(c config.Connection) PolicyDocument {
	return permissionsPolicy(config.Partition(c.Region), c.Bucket, c.BasePath)
}

// permissionsPolicy grants exactly what validation and ingestion use, and
// only under the base path. Per AWS's "Required permissions for Amazon S3 API
// operations" (https://docs.aws.amazon.com/AmazonS3/latest/userguide/using-with-s3-policy-actions.html):
//
//   - s3:ListBucket: ListObjectsV2 (listing, counting, validation).
//   - s3:GetObject: GetObject and HeadObject of the current version, the
//     source of a CopyObject or UploadPartCopy without a versionId, and
//     every ETag-conditional delete: "conditional deletes with a specific
//     ETag value require both s3:DeleteObject and s3:GetObject" ("How to
//     perform conditional deletes",
//     https://docs.aws.amazon.com/AmazonS3/latest/userguide/conditional-deletes.html).
//   - s3:GetObjectVersion: on a versioned bucket the move copies exactly the
//     imported version (x-amz-copy-source ...?versionId=V); the table above:
//     "s3:GetObjectVersion – Required if you want to copy a specific version
//     of an object ... by specifying versionId", for CopyObject and
//     UploadPartCopy alike (s3:GetObject is not consulted then).
//   - s3:GetObjectTagging, s3:GetObjectVersionTagging: the copy keeps the
//     source's tags (TaggingDirective COPY), so S3 reads the tag-set of the
//     source, of its current version or of the pinned version. AWS's table
//     names no tag action for the copy source; its own copy examples (S3
//     Batch Operations, "Granting permissions for Batch Operations") grant
//     s3:GetObjectTagging on the source, and reading the tags of a specific
//     version is s3:GetObjectVersionTagging (GetObjectTagging API
//     reference). We grant both reads: neither shows anything that
//     s3:GetObjectVersion does not already.
//   - s3:PutObject: the validation marker, the copy's destination, error
//     reports. Multipart copies above 5 GiB use s3:AbortMultipartUpload to
//     clean up after a failure, and to abort the upload a move killed
//     mid-copy left, by the upload id the file's state record holds
//     (archive/uploads.go). No s3:ListBucketMultipartUploads: its only
//     condition keys are the access point, authentication and signature
//     ones -- no s3:prefix, which only ListBucket and ListBucketVersions
//     take ("Actions, resources, and condition keys for Amazon S3",
//     Service Authorization Reference,
//     https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazons3.html)
//     -- so it could only be granted on the whole bucket (I10).
//   - s3:PutObjectTagging, on archive/ and error/ only (SidTagCopies): "Required
//     if you want to put the copied object with object tagging to the
//     destination bucket when you make a CopyObject request" (and for the
//     tagged validation marker, a PutObject with x-amz-tagging).
//   - s3:DeleteObject: the conditional delete of the original, always
//     without a version id. No s3:DeleteObjectVersion: only a delete that
//     names a versionId needs it, and such a delete would remove a version
//     for good; without one, a versioned bucket only gets a delete marker
//     (I11: nothing is ever permanently deleted).
func permissionsPolicy(partition, bucket, basePath string) PolicyDocument {
	bucketARN := "arn:" + partition + ":s3:::" + bucket
	list := PolicyStatement{
		Sid:      SidListBucket,
		Effect:   "Allow",
		Action:   StringOrList{"s3:ListBucket"},
		Resource: StringOrList{bucketARN},
	}
	if basePath != "" {
		// Without a base path any listing is within the bucket anyway; a
		// condition on "*" would only deny HeadBucket for no gain.
		list.Condition = PolicyCondition{
			"StringLike": {"s3:prefix": {basePath + "*"}},
		}
	}
	objects := bucketARN + "/" + basePath
	return PolicyDocument{
		Version: PolicyVersion,
		Statement: []PolicyStatement{
			list,
			{
				Sid:    SidObjectOperations,
				Effect: "Allow",
				Action: StringOrList{
					"s3:GetObject", "s3:GetObjectVersion",
					"s3:GetObjectTagging", "s3:GetObjectVersionTagging",
					"s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload",
				},
				Resource: StringOrList{objects + "*"},
			},
			{
				// Only copies are tagged, never the files waiting in the inbox.
				Sid:      SidTagCopies,
				Effect:   "Allow",
				Action:   StringOrList{"s3:PutObjectTagging"},
				Resource: StringOrList{objects + ArchiveFolder + "*", objects + ErrorFolder + "*"},
			},
		},
	}
}

// SidPlatformAssumeRole is the Sid of the platform identity policy's only
// statement.
const SidPlatformAssumeRole = "AssumeCustomerRolesOnlyWithExternalID"

// PlatformPolicy is the identity-based policy the platform principal itself
// carries (the role or user in principal_arn, in partition): it may call
// sts:AssumeRole only on roles named with config.RoleNamePrefix, in any
// account, and only when it sends an External ID.
//
// Cross-account access needs both sides: "A user who wants to access a role
// in a different account must also have permissions that are delegated from
// the account administrator. The administrator must attach a policy that
// allows the user to call AssumeRole for the ARN of the role in the other
// account" (STS API Reference, AssumeRole). The customer's trust policy
// (TrustPolicy) decides who may come in; this one keeps the platform from
// assuming anything else, e.g. a role of its own account that trusts the
// account, if the daemon were tricked into naming it.
//
// The Null condition operator with "false" requires the key to be present in
// the request context ("Null check (checks if the key value exists as a
// standalone check)", IAM User Guide, "IAM JSON policy elements: Condition
// operators",
// https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_condition_operators.html);
// sts:ExternalId is in the context exactly when the AssumeRole request
// carries an ExternalId. Which value is right only the customer's trust
// policy can say (StringEquals there), and the confused-deputy defence is
// that condition ("The confused deputy problem",
// https://docs.aws.amazon.com/IAM/latest/UserGuide/confused-deputy.html);
// this one makes a call without any External ID fail on our side too, so a
// code path that forgot it is refused even by a role that does not ask.
//
// A connection with a role_name outside the prefix is not covered: give it
// a prefixed name, or add its role ARN.
func PlatformPolicy(partition string) PolicyDocument {
	if partition == "" {
		partition = "aws"
	}
	return PolicyDocument{
		Version: PolicyVersion,
		Statement: []PolicyStatement{{
			Sid:      SidPlatformAssumeRole,
			Effect:   "Allow",
			Action:   StringOrList{"sts:AssumeRole"},
			Resource: StringOrList{"arn:" + partition + ":iam::*:role/" + config.RoleNamePrefix + "*"},
			Condition: PolicyCondition{
				"Null": {"sts:ExternalId": {"false"}},
			},
		}},
	}
}

// WritePlatformPolicy writes PlatformPolicy(partition) as indented JSON,
// ready for `aws iam put-role-policy --policy-document file:///dev/stdin`.
func WritePlatformPolicy(w io.Writer, partition string) error {
	return writeIndented(w, PlatformPolicy(partition))
}

// KMSKeyPolicyStatement is the statement the customer adds to the key policy
// of the KMS key that encrypts their bucket (SSE-KMS): Decrypt to read,
// GenerateDataKey to write the archive/ and error/ copies, DescribeKey for
// S3's own checks. In a key policy the resource is always "*", the key
// itself.
func KMSKeyPolicyStatement(roleARN string) PolicyStatement {
	return PolicyStatement{
		Sid:       SidKMSKey,
		Effect:    "Allow",
		Principal: map[string]StringOrList{"AWS": {roleARN}},
		Action:    StringOrList{"kms:Decrypt", "kms:DescribeKey", "kms:GenerateDataKey"},
		Resource:  StringOrList{"*"},
	}
}

// Policies is everything the customer needs to create in AWS for one
// connection. Build it with PoliciesFor.
type Policies struct {
	// RoleName is the exact (case-sensitive) name of the IAM role to create.
	RoleName string
	// RoleARN is the role's ARN, in the partition of the bucket's region.
	RoleARN string
	// PolicyName is the name of the permissions policy attached to the role.
	PolicyName string
	// Bucket and BasePath are where the permissions apply; the setup guide
	// names them.
	Bucket   string
	BasePath string

	Trust       PolicyDocument
	Permissions PolicyDocument
	// KMSKeyStatement is set only when the bucket is encrypted with a
	// customer-managed KMS key (KMSKeyARN).
	KMSKeyStatement *PolicyStatement
	KMSKeyARN       string
}

// PoliciesFor returns the role, trust policy, permissions policy and, when
// the connection names a KMS key, the key-policy statement for a connection.
// principalARN is the platform's own identity (config principal_arn).
func PoliciesFor(principalARN string, c config.Connection) Policies {
	roleARN := c.RoleARN()
	p := Policies{
		RoleName:    c.RoleName,
		RoleARN:     roleARN,
		PolicyName:  c.RoleName + "-access",
		Bucket:      c.Bucket,
		BasePath:    c.BasePath,
		Trust:       TrustPolicy(principalARN, c.ExternalID),
		Permissions: PermissionsPolicyFor(c),
	}
	if c.KMSKeyARN != "" {
		st := KMSKeyPolicyStatement(roleARN)
		p.KMSKeyStatement = &st
		p.KMSKeyARN = c.KMSKeyARN
	}
	return p
}

// policiesJSON is the shape WriteJSON prints; its keys are a contract with
// scripts that read it.
type policiesJSON struct {
	RoleName          string           `json:"role_name"`
	RoleARN           string           `json:"role_arn"`
	PolicyName        string           `json:"policy_name"`
	TrustPolicy       PolicyDocument   `json:"trust_policy"`
	PermissionsPolicy PolicyDocument   `json:"permissions_policy"`
	KMSKeyARN         string           `json:"kms_key_arn,omitempty"`
	KMSKeyStatement   *PolicyStatement `json:"kms_key_policy_statement,omitempty"`
}

// WriteJSON writes all of p as one indented JSON object:
//
//	{"role_name", "role_arn", "policy_name", "trust_policy",
//	 "permissions_policy", "kms_key_arn", "kms_key_policy_statement"}
//
// The two kms keys are present only when the connection has a KMS key.
func (p Policies) WriteJSON(w io.Writer) error {
	if err := p.checkExternalID(); err != nil {
		return err
	}
	return writeIndented(w, policiesJSON{
		RoleName:          p.RoleName,
		RoleARN:           p.RoleARN,
		PolicyName:        p.PolicyName,
		TrustPolicy:       p.Trust,
		PermissionsPolicy: p.Permissions,
		KMSKeyARN:         p.KMSKeyARN,
		KMSKeyStatement:   p.KMSKeyStatement,
	})
}

// WriteDocument writes one raw document as indented JSON, ready to pipe into
// the AWS CLI (for example `aws iam create-role --assume-role-policy-document
// file:///dev/stdin`). which is DocumentTrust, DocumentPermissions or
// DocumentKMS; the last is a single statement to add to the key policy's
// "Statement" list, not a whole policy.
func (p Policies) WriteDocument(w io.Writer, which string) error {
	switch which {
	case DocumentTrust:
		if err := p.checkExternalID(); err != nil {
			return err
		}
		return writeIndented(w, p.Trust)
	case DocumentPermissions:
		return writeIndented(w, p.Permissions)
	case DocumentKMS:
		if p.KMSKeyStatement == nil {
			return errors.New("policy document \"kms\": the connection has no kms_key_arn; a KMS key policy statement is needed only for buckets encrypted with a customer-managed KMS key")
		}
		return writeIndented(w, p.KMSKeyStatement)
	}
	return fmt.Errorf("unknown policy document %q: want one of %s, %s, %s", which, DocumentTrust, DocumentPermissions, DocumentKMS)
}

// WriteText writes the step-by-step IAM setup guide for the customer:
// create the role, set its trust policy, create and attach the permissions
// policy, update the KMS key policy (only with a KMS key), then validate with
// validateCmd (for example `s3connector validate --config F --connection
// NAME`). The only value in it that must stay private is the External ID,
// which the customer needs.
func (p Policies) WriteText(w io.Writer, validateCmd string) error {
	if err := p.checkExternalID(); err != nil {
		return err
	}
	if validateCmd == "" {
		validateCmd = "s3connector validate"
	}
	var trust, perms, kms bytes.Buffer
	if err := writeIndented(&trust, p.Trust); err != nil {
		return err
	}
	if err := writeIndented(&perms, p.Permissions); err != nil {
		return err
	}
	if p.KMSKeyStatement != nil {
		if err := writeIndented(&kms, p.KMSKeyStatement); err != nil {
			return err
		}
	}
	location := "s3://" + p.Bucket + "/" + p.BasePath

	var b strings.Builder
	para := func(lines ...string) {
		for _, l := range lines {
			b.WriteString(l)
			b.WriteByte('\n')
		}
		b.WriteByte('\n')
	}
	step := 0
	heading := func(title string) {
		step++
		para(fmt.Sprintf("Step %d: %s", step, title), strings.Repeat("-", len(title)+8))
	}

	para("IAM setup for "+location,
		"",
		"The connector reaches your bucket by assuming an IAM role in your AWS account",
		"with AWS STS. You do not need to create an IAM user or generate access keys:",
		"the connector only uses temporary credentials, which expire after one hour.")

	heading("Create the IAM role")
	para("Create an IAM role with exactly this name (it is case-sensitive):",
		"",
		"    "+p.RoleName,
		"",
		"The connector assumes "+p.RoleARN+".")

	heading("Set the trust policy")
	para("The trust policy decides who may assume the role. Use this document as the",
		"role's trust relationship (in the IAM console: \"Custom trust policy\"):")
	b.Write(trust.Bytes())
	b.WriteByte('\n')
	para("Why the External ID matters: every customer's role trusts the same connector",
		"identity. The External ID condition makes sure that only the connection set up",
		"for you can assume your role. Copy it exactly, with no spaces or line breaks:",
		"",
		"    "+p.externalID())

	heading("Attach the permissions policy")
	para("Create an IAM policy with this document, named",
		"",
		"    "+p.PolicyName,
		"",
		"and attach it to the role "+p.RoleName+":")
	b.Write(perms.Bytes())
	b.WriteByte('\n')
	archive, errDir := p.BasePath+ArchiveFolder, p.BasePath+ErrorFolder
	para("What each permission is for:",
		"",
		"  s3:ListBucket               list the files in "+location+" and verify the connection",
		"  s3:GetObject                read your files for import",
		"  s3:GetObjectVersion         on a versioned bucket, copy exactly the version imported",
		"  s3:GetObjectTagging         keep a file's tags when it is copied",
		"  s3:GetObjectVersionTagging  the same for the exact version imported",
		"  s3:PutObject                write processed files to "+archive+" and "+errDir,
		"  s3:PutObjectTagging         give those copies the original's tags (only there)",
		"  s3:DeleteObject             remove the original once it has been copied there",
		"  s3:AbortMultipartUpload     clean up an interrupted copy of a file over 5 GiB")
	para("Files are never permanently deleted: after processing, each file is moved to",
		archive+" (or to "+errDir+" if its import failed), so you keep a full",
		"history of what was imported. The original is removed only if it is still",
		"exactly the file that was imported, and never by version: on a versioned",
		"bucket it is hidden by a delete marker and every version stays in the",
		"bucket's history. The policy grants nothing outside "+location+".")
	scope := "the whole bucket"
	if p.BasePath != "" {
		scope = "the prefix " + p.BasePath
	}
	para("Recommended: add a lifecycle rule to the bucket for "+scope+",",
		"with the action \"Delete expired object delete markers or incomplete multipart",
		"uploads\" and incomplete multipart uploads deleted after 7 days",
		"(AbortIncompleteMultipartUpload). The connector aborts the uploads of its own",
		"interrupted copies (files over 5 GiB); the rule removes the few it cannot know",
		"of, such as those of a copy stopped before it could record its upload.")

	if p.KMSKeyStatement != nil {
		heading("Allow the role to use your KMS key")
		para("Your bucket is encrypted with the KMS key",
			"",
			"    "+p.KMSKeyARN,
			"",
			"Add this statement to the \"Statement\" list of that key's key policy, so the",
			"role can decrypt your files and encrypt the copies it writes:")
		b.Write(kms.Bytes())
		b.WriteByte('\n')
	}

	heading("Validate the connection")
	para("Once the role is set up, run:",
		"",
		"    "+validateCmd,
		"",
		"A successful check prints:",
		"",
		"    Connection successful. Found N files in bucket.")

	_, err := io.WriteString(w, strings.TrimSuffix(b.String(), "\n"))
	return err
}

// externalID is the External ID the trust policy requires, or "" when it
// has none (a draft connection before one was generated).
func (p Policies) externalID() string {
	for _, st := range p.Trust.Statement {
		if v := st.Condition["StringEquals"]["sts:ExternalId"]; len(v) == 1 {
			return v[0]
		}
	}
	return ""
}

// checkExternalID refuses to print a trust policy without an External ID:
// such a role could be assumed on behalf of any of the platform's customers.
func (p Policies) checkExternalID() error {
	if p.externalID() == "" {
		return errors.New("trust policy: the connection has no external_id; generate one first (s3connector connection new)")
	}
	return nil
}

// writeIndented writes v as JSON indented by two spaces with a trailing
// newline. HTML escaping is off so that "<" and "&" in values stay readable.
func writeIndented(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
