package config

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/bmatcuk/doublestar/v4"
	"github.com/robfig/cron/v3"
)

// Field validators. Their errors are messages without the YAML path
// ("must be exactly 12 digits, got \"1234\""); Validate prefixes the path,
// the CLI prefixes the flag.

// Limits of the checked fields.
const (
	// MaxNameLength keeps the derived role name, RoleNamePrefix + name,
	// within IAM's 64 characters.
	MaxNameLength       = maxRoleNameLength - len(RoleNamePrefix)
	MaxBasePathLength   = 512 // bytes, including the trailing "/"
	MinExternalIDLength = 16
	MaxExternalIDLength = 1224 // STS AssumeRole's limit
	MaxWorkers          = 1024

	maxRoleNameLength = 64
)

var (
	nameRE       = regexp.MustCompile(`^[a-z0-9-]+$`)
	accountIDRE  = regexp.MustCompile(`^[0-9]{12}$`)
	bucketCharRE = regexp.MustCompile(`^[a-z0-9.-]+$`)
	ipv4RE       = regexp.MustCompile(`^[0-9]{1,3}(\.[0-9]{1,3}){3}$`)
	roleNameRE   = regexp.MustCompile(`^[A-Za-z0-9+=,.@_-]+$`)
	// externalIDCharRE is STS's pattern for ExternalId, [\w+=,.@:/-]*.
	externalIDCharRE = regexp.MustCompile(`^[A-Za-z0-9+=,.@:/_-]$`)
	principalARNRE   = regexp.MustCompile(`^arn:(aws|aws-cn|aws-us-gov):iam::[0-9]{12}:(root|(user|role)(/[A-Za-z0-9+=,.@_-]+)+)$`)
	assumedRoleRE    = regexp.MustCompile(`^arn:(aws|aws-cn|aws-us-gov):sts::([0-9]{12}):assumed-role/([^/]+)/`)
	kmsKeyARNRE      = regexp.MustCompile(`^arn:(aws|aws-cn|aws-us-gov):kms:([a-z0-9-]+):[0-9]{12}:(key/[A-Za-z0-9-]+|alias/[A-Za-z0-9/_-]+)$`)

	// scheduleParser accepts what cron.ParseStandard does: five fields,
	// descriptors such as "@hourly" and "@every 5m", and a CRON_TZ= prefix.
	scheduleParser = cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)
)

// Reserved bucket name prefixes and suffixes (S3 general purpose bucket
// naming rules).
var (
	reservedBucketPrefixes = []string{"xn--", "sthree-", "amzn-s3-demo-"}
	reservedBucketSuffixes = []string{"-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3"}
)

var errRequired = errors.New("is required")

// ValidateName checks a connection name: 1 to MaxNameLength characters of
// [a-z0-9-], not starting or ending with "-".
func ValidateName(name string) error {
	switch {
	case name == "":
		return errRequired
	case !nameRE.MatchString(name):
		return fmt.Errorf(`may contain only lowercase letters, digits and "-", got %q`, name)
	case len(name) > MaxNameLength:
		return fmt.Errorf("must be at most %d characters so that the role name %s<name> fits IAM's limit of %d, got %d", MaxNameLength, RoleNamePrefix, maxRoleNameLength, len(name))
	case strings.HasPrefix(name, "-") || strings.HasSuffix(name, "-"):
		return fmt.Errorf(`must not start or end with "-", got %q`, name)
	}
	return nil
}

// ValidateAccountID checks an AWS account id: exactly 12 digits.
func ValidateAccountID(id string) error {
	switch {
	case id == "":
		return errRequired
	case accountIDRE.MatchString(id):
		return nil
	}
	err := fmt.Errorf("must be exactly 12 digits, got %q", id)
	// The console shows account ids as 1234-5678-9012.
	if accountIDRE.MatchString(strings.NewReplacer("-", "", " ", "").Replace(id)) {
		err = fmt.Errorf("%w; write it without dashes or spaces", err)
	}
	return err
}

// ValidateBucket checks an S3 general purpose bucket name against the AWS
// naming rules.
func ValidateBucket(bucket string) error {
	invalid := func(reason string) error {
		return fmt.Errorf("invalid bucket name %q: %s", bucket, reason)
	}
	switch {
	case bucket == "":
		return errRequired
	case strings.Contains(bucket, "/") || strings.HasPrefix(bucket, "arn:"):
		return invalid(`give only the bucket name, without "s3://", ARN prefix or folder (the folder goes in base_path)`)
	case strings.ToLower(bucket) != bucket || strings.ContainsFunc(bucket, isSpace):
		return invalid("bucket names are lowercase and contain no spaces")
	case !bucketCharRE.MatchString(bucket):
		return invalid(`may contain only lowercase letters, digits, "." and "-"`)
	case len(bucket) < 3 || len(bucket) > 63:
		return invalid(fmt.Sprintf("must be 3 to 63 characters, got %d", len(bucket)))
	case !isAlnum(bucket[0]) || !isAlnum(bucket[len(bucket)-1]):
		return invalid("must start and end with a letter or digit")
	case strings.Contains(bucket, ".."):
		return invalid(`must not contain ".."`)
	case strings.Contains(bucket, ".-") || strings.Contains(bucket, "-."):
		return invalid(`must not contain ".-" or "-."`)
	case isIPv4(bucket):
		return invalid("must not be formatted as an IP address")
	}
	for _, p := range reservedBucketPrefixes {
		if strings.HasPrefix(bucket, p) {
			return invalid(fmt.Sprintf("must not start with %q (reserved by AWS)", p))
		}
	}
	for _, s := range reservedBucketSuffixes {
		if strings.HasSuffix(bucket, s) {
			return invalid(fmt.Sprintf("must not end with %q (reserved by AWS)", s))
		}
	}
	return nil
}

// ValidateRegion checks that region is one of Regions.
func ValidateRegion(region string) error {
	switch {
	case region == "":
		return errRequired
	case KnownRegion(region):
		return nil
	}
	if hint, ok := closest(strings.TrimSpace(region), Regions); ok {
		return fmt.Errorf("unknown AWS region %q; did you mean %q?", region, hint)
	}
	return fmt.Errorf("unknown AWS region %q", region)
}

// ValidateBasePath checks an optional key prefix. The empty path (the whole
// bucket) is valid. The characters "*", "?", "$", "{" and "}" are rejected:
// the base path goes into the generated IAM policy, where they are wildcards
// or policy variables. The limit MaxBasePathLength applies to the path as
// NormalizeBasePath returns it.
func ValidateBasePath(p string) error {
	switch {
	case p == "":
		return nil
	case strings.HasPrefix(p, "/"):
		return fmt.Errorf(`must not start with "/", got %q (S3 keys have no leading slash)`, p)
	case strings.Contains(p, ".."):
		return fmt.Errorf(`must not contain "..", got %q`, p)
	case p == "." || strings.HasPrefix(p, "./") || strings.Contains(p, "/./"):
		return fmt.Errorf(`must not contain "." as a folder, got %q`, p)
	case !utf8.ValidString(p):
		return errors.New("must be valid UTF-8")
	case strings.ContainsFunc(p, isControl):
		return fmt.Errorf("must not contain control characters, got %q", p)
	case strings.ContainsAny(p, "*?"):
		return fmt.Errorf(`must not contain %q, got %q: IAM reads "*" and "?" in a policy's resource and s3:prefix as wildcards, so the generated policy would grant more than the base path`, string(p[strings.IndexAny(p, "*?")]), p)
	case strings.ContainsAny(p, "${}"):
		return fmt.Errorf(`must not contain %q, got %q: IAM reads "${...}" in a policy as a policy variable, so the generated policy would grant more than the base path`, string(p[strings.IndexAny(p, "${}")]), p)
	case len(NormalizeBasePath(p)) > MaxBasePathLength:
		return fmt.Errorf(`must be at most %d bytes including the trailing "/", got %d`, MaxBasePathLength, len(NormalizeBasePath(p)))
	}
	return nil
}

// ValidateExternalID checks an External ID: MinExternalIDLength to
// MaxExternalIDLength characters that STS accepts. The errors never contain
// the id, which is semi-secret.
func ValidateExternalID(id string) error {
	const copyHint = "copy it again without spaces or line breaks"
	switch {
	case id == "":
		return errRequired
	case strings.ContainsAny(id, "\r\n"):
		return errors.New("contains a line break; " + copyHint)
	case strings.TrimSpace(id) != id:
		return errors.New("has leading or trailing whitespace; " + copyHint)
	case len(id) < MinExternalIDLength || len(id) > MaxExternalIDLength:
		return fmt.Errorf("must be %d to %d characters, got %d", MinExternalIDLength, MaxExternalIDLength, len(id))
	}
	for i, r := range id {
		if externalIDCharRE.MatchString(string(r)) {
			continue
		}
		pos := utf8.RuneCountInString(id[:i]) + 1
		switch {
		case isSpace(r):
			return fmt.Errorf("contains whitespace at character %d; %s", pos, copyHint)
		case r == '$':
			return fmt.Errorf("contains \"$\" at character %d, which STS does not accept; an environment variable is written ${NAME}", pos)
		default:
			return fmt.Errorf("contains a character STS does not accept at character %d; allowed are letters, digits and +=,.@:/_-", pos)
		}
	}
	return nil
}

func validateRoleName(name string) error {
	switch {
	case name == "":
		return errRequired
	case len(name) > maxRoleNameLength:
		return fmt.Errorf("must be at most %d characters, got %d", maxRoleNameLength, len(name))
	case !roleNameRE.MatchString(name):
		return fmt.Errorf("may contain only letters, digits and +=,.@_-, got %q", name)
	}
	return nil
}

func validatePrincipalARN(arn string) error {
	switch {
	case arn == "":
		return errRequired
	case principalARNRE.MatchString(arn):
		return nil
	}
	if m := assumedRoleRE.FindStringSubmatch(arn); m != nil {
		return fmt.Errorf("%q is a role session; give the role itself, arn:%s:iam::%s:role/%s (with its path, if it has one)", arn, m[1], m[2], m[3])
	}
	return fmt.Errorf("must be an IAM principal ARN such as arn:aws:iam::111122223333:role/<name>, :user/<name> or :root, got %q", arn)
}

func validateKMSKeyARN(arn string) error {
	m := kmsKeyARNRE.FindStringSubmatch(arn)
	if m == nil {
		return fmt.Errorf("must be a KMS key ARN such as arn:aws:kms:<region>:111122223333:key/<key-id> or an alias ARN ...:alias/<name>, got %q", arn)
	}
	if !KnownRegion(m[2]) {
		return fmt.Errorf("unknown AWS region %q in %q", m[2], arn)
	}
	return nil
}

func validateListen(addr string) error {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("must be host:port such as %q, got %q", DefaultListen, addr)
	}
	if n, err := strconv.ParseUint(port, 10, 16); err != nil || port != strconv.FormatUint(n, 10) {
		return fmt.Errorf("port must be a number from 0 to 65535, got %q", port)
	}
	return nil
}

func validateSchedule(spec string) error {
	if _, err := scheduleParser.Parse(spec); err != nil {
		return fmt.Errorf("invalid schedule %q: %w", spec, err)
	}
	return nil
}

// validateHTTPURL checks for an absolute http or https URL with a host.
// It does not echo the URL, which may carry a token.
func validateHTTPURL(raw string) error {
	if !strings.Contains(raw, "://") {
		return errors.New("must be an absolute URL starting with http:// or https://")
	}
	u, err := url.Parse(raw)
	if err != nil {
		var urlErr *url.Error
		if errors.As(err, &urlErr) {
			err = urlErr.Err
		}
		return fmt.Errorf("is not a valid URL: %w", err)
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return fmt.Errorf("scheme must be http or https, got %q", u.Scheme)
	case u.Host == "":
		return errors.New("has no host")
	}
	return nil
}

// validateEndpoint checks an S3 or STS endpoint: an absolute URL, https
// unless the host is a loopback address (127.0.0.0/8, ::1, localhost: tests
// and the demo). Over plain http anyone on the path could read the signed
// requests and the temporary credentials STS returns, and answer in the
// bucket's name. Like validateHTTPURL it echoes only the host.
func validateEndpoint(raw string) error {
	if err := validateHTTPURL(raw); err != nil {
		return err
	}
	u, _ := url.Parse(raw) // parsed by validateHTTPURL
	if u.Scheme == "https" || isLoopbackHost(u.Hostname()) {
		return nil
	}
	return fmt.Errorf("plain http is accepted only for a loopback address (127.0.0.0/8, ::1, localhost), got host %q; use https://", u.Hostname())
}

// isLoopbackHost reports whether host (without port or brackets) is
// "localhost" or a loopback IP address. Other names are not resolved: what
// they resolve to can change after validation.
func isLoopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func isAlnum(b byte) bool {
	return 'a' <= b && b <= 'z' || '0' <= b && b <= '9'
}

func isSpace(r rune) bool { return unicode.IsSpace(r) }

func isControl(r rune) bool {
	return r < 0x20 || r == 0x7f
}

// isIPv4 matches what looks like an IPv4 address, leading zeros included.
func isIPv4(s string) bool { return ipv4RE.MatchString(s) }

// validatePattern checks an include or exclude glob pattern (doublestar
// syntax), matched against keys relative to base_path.
func validatePattern(pattern string) error {
	switch {
	case pattern == "":
		return errors.New("must not be empty")
	case strings.HasPrefix(pattern, "/"):
		return fmt.Errorf(`must not start with "/", got %q: patterns match the key relative to base_path`, pattern)
	case !doublestar.ValidatePattern(pattern):
		return fmt.Errorf(`invalid glob pattern %q: look for an unclosed "[" or "{", an empty "[]", a stray "}" or a trailing "\"`, pattern)
	}
	return nil
}
