package config

import (
	"strings"
	"testing"
)

// validatorCase is one input of an exported validator: wantErr is a
// substring of the expected error, "" for a valid input.
type validatorCase struct {
	in      string
	wantErr string
}

func runValidatorCases(t *testing.T, validate func(string) error, tests []validatorCase) {
	t.Helper()
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			err := validate(tt.in)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Errorf("got error %q, want none", err)
			case tt.wantErr != "" && err == nil:
				t.Errorf("got no error, want one containing %q", tt.wantErr)
			case tt.wantErr != "" && !strings.Contains(err.Error(), tt.wantErr):
				t.Errorf("got error %q, want one containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestValidateName(t *testing.T) {
	runValidatorCases(t, ValidateName, []validatorCase{
		{"acme", ""},
		{"acme-corp-2", ""},
		{"a", ""},
		{strings.Repeat("a", 52), ""},
		{"", "is required"},
		{strings.Repeat("a", 53), "must be at most 52 characters so that the role name s3connector-<name> fits IAM's limit of 64, got 53"},
		{"Acme", `may contain only lowercase letters, digits and "-", got "Acme"`},
		{"acme corp", "may contain only lowercase letters"},
		{"acme_corp", "may contain only lowercase letters"},
		{"-acme", `must not start or end with "-", got "-acme"`},
		{"acme-", `must not start or end with "-"`},
	})
}

func TestValidateAccountID(t *testing.T) {
	runValidatorCases(t, ValidateAccountID, []validatorCase{
		{"123456789012", ""},
		{"012345678901", ""},
		{"", "is required"},
		{"1234", `must be exactly 12 digits, got "1234"`},
		{"1234567890123", `must be exactly 12 digits, got "1234567890123"`},
		{"12345678901a", "must be exactly 12 digits"},
		{"1234-5678-9012", `must be exactly 12 digits, got "1234-5678-9012"; write it without dashes or spaces`},
		{"1234 5678 9012", "write it without dashes or spaces"},
		{"YOUR_AWS_ACCOUNT_ID", `must be exactly 12 digits, got "YOUR_AWS_ACCOUNT_ID"`},
	})
}

func TestValidateBucket(t *testing.T) {
	runValidatorCases(t, ValidateBucket, []validatorCase{
		{"acme-exports", ""},
		{"abc", ""},
		{"acme.exports.2024", ""},
		{"1acme", ""},
		{strings.Repeat("a", 63), ""},
		{"", "is required"},
		{"ab", "must be 3 to 63 characters, got 2"},
		{strings.Repeat("a", 64), "must be 3 to 63 characters, got 64"},
		{"Acme", `invalid bucket name "Acme": bucket names are lowercase and contain no spaces`},
		{"acme exports", "bucket names are lowercase and contain no spaces"},
		{"acme_exports", `may contain only lowercase letters, digits, "." and "-"`},
		{"s3://acme-exports", `give only the bucket name, without "s3://"`},
		{"arn:aws:s3:::acme-exports", "give only the bucket name"},
		{"acme-exports/incoming", "give only the bucket name"},
		{"-acme", "must start and end with a letter or digit"},
		{"acme.", "must start and end with a letter or digit"},
		{"acme..exports", `must not contain ".."`},
		{"acme.-exports", `must not contain ".-" or "-."`},
		{"acme-.exports", `must not contain ".-" or "-."`},
		{"192.168.5.4", "must not be formatted as an IP address"},
		{"xn--acme", `must not start with "xn--"`},
		{"sthree-acme", `must not start with "sthree-"`},
		{"amzn-s3-demo-bucket", `must not start with "amzn-s3-demo-"`},
		{"acme-s3alias", `must not end with "-s3alias"`},
		{"acme--ol-s3", `must not end with "--ol-s3"`},
		{"acme.mrap", `must not end with ".mrap"`},
		{"acme--x-s3", `must not end with "--x-s3"`},
		{"acme--table-s3", `must not end with "--table-s3"`},
	})
}

func TestValidateRegion(t *testing.T) {
	runValidatorCases(t, ValidateRegion, []validatorCase{
		{"eu-central-1", ""},
		{"us-gov-west-1", ""},
		{"cn-northwest-1", ""},
		{"mx-central-1", ""},
		{"", "is required"},
		{"ap-southeast-9", `unknown AWS region "ap-southeast-9"`},
		{"eu-central1", `did you mean "eu-central-1"?`},
		{"EU-WEST-1", `did you mean "eu-west-1"?`},
		{"us-east-1a", `did you mean "us-east-1"?`},
		{"YOUR_BUCKET_REGION", `unknown AWS region "YOUR_BUCKET_REGION"`},
	})
	// Several regions are one edit away: no guess.
	if err := ValidateRegion("ap-southeast-9"); err == nil || strings.Contains(err.Error(), "did you mean") {
		t.Errorf("ValidateRegion(ap-southeast-9) = %v, want no hint", err)
	}
}

func TestRegionsUnique(t *testing.T) {
	seen := make(map[string]bool)
	for _, r := range Regions {
		if seen[r] {
			t.Errorf("%s is in Regions twice", r)
		}
		seen[r] = true
		if !KnownRegion(r) {
			t.Errorf("KnownRegion(%q) = false", r)
		}
	}
	if KnownRegion("") || KnownRegion("aws-global") {
		t.Error("KnownRegion accepts a non-region")
	}
}

func TestValidateBasePath(t *testing.T) {
	runValidatorCases(t, ValidateBasePath, []validatorCase{
		{"", ""},
		{"incoming", ""},
		{"incoming/daily/", ""},
		{"v1.2/data", ""},
		{strings.Repeat("a", 511), ""},
		{strings.Repeat("a", 512), `must be at most 512 bytes including the trailing "/", got 513`},
		{"/incoming", `must not start with "/", got "/incoming"`},
		{"incoming/../x", `must not contain ".."`},
		{"..", `must not contain ".."`},
		{"a..b", `must not contain ".."`},
		{"./incoming", `must not contain "." as a folder`},
		{"in/./coming", `must not contain "." as a folder`},
		{"in\x00coming", "must not contain control characters"},
		{"in\ncoming", "must not contain control characters"},
		{"in\xffcoming", "must be valid UTF-8"},
		{"in/*/x", `must not contain "*", got "in/*/x": IAM reads "*" and "?" in a policy's resource and s3:prefix as wildcards, so the generated policy would grant more than the base path`},
		{"in?", `must not contain "?"`},
		{"home/${aws:username}", `must not contain "$", got "home/${aws:username}": IAM reads "${...}" in a policy as a policy variable`},
		{"in{x", `must not contain "{"`},
		{"in}x", `must not contain "}"`},
		{"in/$x", `must not contain "$"`},
		{"in/*${x}", `must not contain "*"`},
		{"100%/[a]+b=c,d@e", ""},
	})
}

func TestNormalizeBasePath(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", ""},
		{"incoming", "incoming/"},
		{"incoming/", "incoming/"},
		{"a/b", "a/b/"},
	}
	for _, tt := range tests {
		if got := NormalizeBasePath(tt.in); got != tt.want {
			t.Errorf("NormalizeBasePath(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestValidateExternalID(t *testing.T) {
	const id = "abcdefghijklmnopqrstuvwxyz234567"
	tests := []validatorCase{
		{id, ""},
		{"A-Za-z0-9+=,.@:/_", ""},
		{strings.Repeat("a", 16), ""},
		{strings.Repeat("a", 1224), ""},
		{"", "is required"},
		{id + " ", "has leading or trailing whitespace; copy it again without spaces or line breaks"},
		{" " + id, "has leading or trailing whitespace"},
		{id + "\t", "has leading or trailing whitespace"},
		{id + "\n", "contains a line break; copy it again without spaces or line breaks"},
		{id[:10] + "\r\n" + id[10:], "contains a line break"},
		{id[:10] + " " + id[10:], "contains whitespace at character 11; copy it again without spaces or line breaks"},
		{strings.Repeat("a", 15), "must be 16 to 1224 characters, got 15"},
		{strings.Repeat("a", 1225), "must be 16 to 1224 characters, got 1225"},
		{"$ACME_EXTERNAL_ID_X", `contains "$" at character 1`},
		{id + "!", "contains a character STS does not accept at character 33"},
		{"ü" + id, "contains a character STS does not accept at character 1"},
	}
	runValidatorCases(t, ValidateExternalID, tests)
	for _, tt := range tests {
		err := ValidateExternalID(tt.in)
		if err == nil {
			continue
		}
		if secret := strings.TrimSpace(tt.in); len(secret) >= 4 && strings.Contains(err.Error(), secret) {
			t.Errorf("ValidateExternalID error %q shows the id", err)
		}
		for _, part := range []string{id[:10], id[10:]} {
			if strings.Contains(err.Error(), part) {
				t.Errorf("ValidateExternalID error %q shows part of the id", err)
			}
		}
	}
}

func TestValidateRoleName(t *testing.T) {
	runValidatorCases(t, validateRoleName, []validatorCase{
		{"s3connector-acme", ""},
		{"Acme+Role=1,2.3@x_y-z", ""},
		{strings.Repeat("r", 64), ""},
		{"", "is required"},
		{strings.Repeat("r", 65), "must be at most 64 characters, got 65"},
		{"acme role", `may contain only letters, digits and +=,.@_-, got "acme role"`},
		{"acme/role", "may contain only letters"},
	})
}

func TestValidatePrincipalARN(t *testing.T) {
	runValidatorCases(t, validatePrincipalARN, []validatorCase{
		{"arn:aws:iam::111122223333:root", ""},
		{"arn:aws:iam::111122223333:role/platform", ""},
		{"arn:aws:iam::111122223333:role/service-role/platform", ""},
		{"arn:aws:iam::111122223333:user/ops/deployer", ""},
		{"arn:aws-cn:iam::111122223333:role/platform", ""},
		{"arn:aws-us-gov:iam::111122223333:role/platform", ""},
		{"", "is required"},
		{"arn:aws:iam::1111:role/platform", "must be an IAM principal ARN"},
		{"arn:aws:iam::111122223333:group/admins", "must be an IAM principal ARN"},
		{"arn:aws:iam::111122223333:role/", "must be an IAM principal ARN"},
		{"arn:aws-eu:iam::111122223333:role/platform", "must be an IAM principal ARN"},
		{"arn:aws:iam::111122223333:role/platform/", "must be an IAM principal ARN"},
		{"arn:aws:sts::111122223333:assumed-role/platform/session", "is a role session; give the role itself, arn:aws:iam::111122223333:role/platform"},
	})
}

func TestValidateKMSKeyARN(t *testing.T) {
	runValidatorCases(t, validateKMSKeyARN, []validatorCase{
		{"arn:aws:kms:eu-central-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab", ""},
		{"arn:aws:kms:eu-central-1:111122223333:key/mrk-1234abcd12ab34cd56ef1234567890ab", ""},
		{"arn:aws:kms:eu-central-1:111122223333:alias/acme/exports_key", ""},
		{"arn:aws-cn:kms:cn-north-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab", ""},
		{"1234abcd-12ab-34cd-56ef-1234567890ab", "must be a KMS key ARN"},
		{"alias/acme", "must be a KMS key ARN"},
		{"arn:aws:kms:eu-central-1:111122223333:key/", "must be a KMS key ARN"},
		{"arn:aws:s3:::acme-exports", "must be a KMS key ARN"},
		{"arn:aws:kms:eu-central-9:111122223333:key/abc", `unknown AWS region "eu-central-9"`},
	})
}

func TestValidateSchedule(t *testing.T) {
	runValidatorCases(t, validateSchedule, []validatorCase{
		{"@every 5m", ""},
		{"@hourly", ""},
		{"*/15 * * * *", ""},
		{"CRON_TZ=Europe/Berlin 0 3 * * *", ""},
		{"TZ=UTC 0 3 * * 1-5", ""},
		{"", "invalid schedule"},
		{"0 0 3 * * *", "expected exactly 5 fields, found 6"},
		{"@every five", `invalid schedule "@every five": failed to parse duration`},
		{"61 * * * *", "above maximum"},
	})
}

func TestValidateListen(t *testing.T) {
	runValidatorCases(t, validateListen, []validatorCase{
		{"127.0.0.1:9464", ""},
		{":9464", ""},
		{"[::1]:9464", ""},
		{"localhost:0", ""},
		{"9464", "must be host:port"},
		{"localhost", "must be host:port"},
		{"localhost:http", `port must be a number from 0 to 65535, got "http"`},
		{"localhost:65536", "port must be a number from 0 to 65535"},
		{"localhost:", "port must be a number"},
	})
}

func TestValidateHTTPURL(t *testing.T) {
	runValidatorCases(t, validateHTTPURL, []validatorCase{
		{"http://127.0.0.1:9000", ""},
		{"https://s3.eu-central-1.amazonaws.com", ""},
		{"https://ingest.example.com/v1/files?token=x", ""},
		{"minio:9000", "must be an absolute URL starting with http:// or https://"},
		{"/v1/files", "must be an absolute URL"},
		{"ftp://example.com", `scheme must be http or https, got "ftp"`},
		{"https://", "has no host"},
		{"https://exa mple.com", "is not a valid URL"},
	})
	// The URL may carry a token: it is not echoed.
	if err := validateHTTPURL("https://exa mple.com/?token=s3cr3t"); err == nil || strings.Contains(err.Error(), "s3cr3t") {
		t.Errorf("validateHTTPURL error %v shows the URL", err)
	}
}

func TestClosest(t *testing.T) {
	tests := []struct {
		in     string
		want   string
		wantOK bool
	}{
		{"extrnal_id", "external_id", true},
		{"ExternalID", "external_id", true}, // case is ignored
		{"eu-west-1", "eu-west-1", true},
		{"zzzz", "", false},
		{"ap-southeast-9", "", false}, // ambiguous
	}
	for _, tt := range tests {
		got, ok := closest(tt.in, append(yamlFieldNames[Connection](), Regions...))
		if got != tt.want || ok != tt.wantOK {
			t.Errorf("closest(%q) = %q, %v, want %q, %v", tt.in, got, ok, tt.want, tt.wantOK)
		}
	}
}
