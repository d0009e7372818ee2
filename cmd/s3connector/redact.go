package main

import (
	"regexp"
	"strings"
)

// accountMask replaces an AWS account id in what /status and /readyz show
// callers without the status token.
const accountMask = "************"

// arnWithAccount matches an ARN that names an account (IAM and STS
// principals, KMS keys, ...): partition, service, region, the 12-digit
// account and the resource, whose type (role/, assumed-role/, key/) is kept
// apart from its name. S3 ARNs have no account and do not match. A ":" ends
// the match: messages put one right after an ARN.
var arnWithAccount = regexp.MustCompile(`arn:(aws[a-z-]*):([a-z0-9-]+):([a-z0-9-]*):[0-9]{12}:([A-Za-z0-9-]+/)?[A-Za-z0-9+=,.@_/-]*`)

// digitRun is a run of digits; one of exactly 12 may be an account id.
var digitRun = regexp.MustCompile(`[0-9]+`)

// redactAccounts hides who the customer is in free text (error messages,
// advice): every ARN that names an account becomes
// arn:aws:iam::************:role/… and every other run of exactly 12 digits
// becomes ************. Some unrelated 12-digit numbers go too: the view
// stays useful (the error class and the step remain), and the full text is
// in the daemon's log and, with the token, in /status.
func redactAccounts(s string) string {
	s = arnWithAccount.ReplaceAllStringFunc(s, func(arn string) string {
		m := arnWithAccount.FindStringSubmatch(arn)
		return "arn:" + m[1] + ":" + m[2] + ":" + m[3] + ":" + accountMask + ":" + m[4] + "…"
	})
	return digitRun.ReplaceAllStringFunc(s, func(run string) string {
		if len(run) == 12 {
			return accountMask
		}
		return run
	})
}

// outputFilter is what one caller of /status or /readyz may see.
type outputFilter struct {
	// full: the caller presented the status token, so role ARNs and
	// account ids are shown.
	full bool
	// secrets (the connections' External IDs) are never shown, whoever
	// asks (I9). No message should contain one; this holds even if a
	// future one does.
	secrets []string
}

func (f outputFilter) text(s string) string {
	for _, secret := range f.secrets {
		if secret != "" {
			s = strings.ReplaceAll(s, secret, "[redacted]")
		}
	}
	if f.full {
		return s
	}
	return redactAccounts(s)
}

func (f outputFilter) texts(ss []string) []string {
	for i, s := range ss {
		ss[i] = f.text(s)
	}
	return ss
}
