package store

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/s3connector/s3connector/config"
)

// Status is a stored connection's lifecycle state:
//
//	draft ──validation passed──▶ validated ──Activate──▶ active
//	  ▲                             │                      │
//	  └── settings changed, ────────┴──────────────────────┘
//	      validation failed
//	draft, validated, active ──Disable──▶ disabled ──validation passed──▶ validated
//
// Only an active connection is ingested. A connection is validated or active
// only while its last validation passed for its current settings (the
// store's invariant): editing its settings, or a failed validation, makes it
// a draft again. A disabled connection is activated again only after a new
// passing validation.
type Status string

// The lifecycle states.
const (
	StatusDraft     Status = "draft"
	StatusValidated Status = "validated"
	StatusActive    Status = "active"
	StatusDisabled  Status = "disabled"
)

// Valid reports whether s is one of the four states.
func (s Status) Valid() bool {
	switch s {
	case StatusDraft, StatusValidated, StatusActive, StatusDisabled:
		return true
	}
	return false
}

// allowed lists the status changes an Update may make. Entering validated
// or active is further conditioned in settle.
var allowed = map[Status][]Status{
	StatusDraft:     {StatusValidated, StatusDisabled},
	StatusValidated: {StatusDraft, StatusActive, StatusDisabled},
	StatusActive:    {StatusDraft, StatusDisabled},
	StatusDisabled:  {StatusValidated},
}

// Fingerprint identifies what a validation of the connection checks: its
// Settings (base path normalised), role and External ID. Two connections
// with the same fingerprint pass or fail the same checks.
func (c Connection) Fingerprint() string {
	h := sha256.New()
	// A version prefix lets a later release change the fields without a
	// stored fingerprint ever matching by accident; NUL cannot occur in
	// any field.
	for _, f := range []string{"v1", c.AccountID, c.Bucket, c.Region, config.NormalizeBasePath(c.BasePath), c.KMSKeyARN, c.RoleName, c.ExternalID} {
		h.Write([]byte(f))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil))
}

// validatedNow reports whether the last validation passed for the current
// settings; otherwise it returns why not.
func (c Connection) validatedNow() (bool, string) {
	switch {
	case c.Validation.At.IsZero():
		return false, "the connection has not been validated"
	case !c.Validation.Passed:
		return false, "the last validation failed: " + c.Validation.Result
	case c.Validation.Fingerprint != c.Fingerprint():
		return false, "the settings changed since the last validation"
	}
	return true, ""
}

// RecordValidation records v, a validation of the connection as it was when
// v.Fingerprint was taken, for use in an Update. A passing validation makes
// a draft, validated or disabled connection validated (an active one stays
// active); a failing one makes a validated or active connection a draft.
// When the settings changed since v.Fingerprint (an edit while the checks
// ran), nothing is recorded and the error wraps ErrConflict: validate again.
func (c *Connection) RecordValidation(v Validation) error {
	switch {
	case v.Fingerprint == "" || v.At.IsZero():
		return fmt.Errorf("connection %q: a validation needs its fingerprint and time: %w", c.Name, ErrInvalid)
	case v.Fingerprint != c.Fingerprint():
		return conflictf("connection %q changed while it was being validated: validate it again", c.Name)
	}
	c.Validation = v
	switch {
	case v.Passed && c.Status != StatusActive:
		c.Status = StatusValidated
		c.StatusReason = "validation passed: " + v.Result
	case v.Passed:
		c.StatusReason = "validation passed: " + v.Result
	case c.Status == StatusValidated || c.Status == StatusActive:
		c.Status = StatusDraft
		c.StatusReason = "validation failed: " + v.Result
	default:
		c.StatusReason = "validation failed: " + v.Result
	}
	return nil
}

// Activate makes a validated connection active, for use in an Update. It is
// ErrConflict, with the reason, unless the connection is validated and its
// last validation passed for its current settings; activating an active
// connection changes nothing.
func (c *Connection) Activate() error {
	switch c.Status {
	case StatusActive:
		return nil
	case StatusDisabled:
		return conflictf("connection %q cannot be activated: it is disabled; validate it again first", c.Name)
	}
	if ok, why := c.validatedNow(); !ok {
		return conflictf("connection %q cannot be activated: %s", c.Name, why)
	}
	c.Status = StatusActive
	c.StatusReason = "activated"
	return nil
}

// Disable makes the connection disabled, for use in an Update: it is no
// longer ingested and may be deleted. Disabling a disabled connection
// changes nothing.
func (c *Connection) Disable() error {
	if c.Status != StatusDisabled {
		c.Status = StatusDisabled
		c.StatusReason = "disabled"
	}
	return nil
}

// settle checks what an Update's fn left in c against the stored old and
// enforces the lifecycle. It reports whether a Transition is due.
func settle(old Connection, c *Connection) (bool, error) {
	switch {
	case c.Name != old.Name:
		return false, fmt.Errorf("connection %q: the name cannot be changed: %w", old.Name, ErrInvalid)
	case c.ExternalID != old.ExternalID:
		return false, fmt.Errorf("connection %q: the External ID is set by the store and never changes: %w", old.Name, ErrInvalid)
	case c.RoleName != old.RoleName:
		return false, fmt.Errorf("connection %q: the role name is set by the store and never changes: %w", old.Name, ErrInvalid)
	case !c.Status.Valid():
		return false, fmt.Errorf("connection %q: unknown status %q: %w", old.Name, c.Status, ErrInvalid)
	}
	c.BasePath = config.NormalizeBasePath(c.BasePath)
	newValidation := c.Validation != old.Validation

	if c.Status != old.Status {
		if !isAllowed(old.Status, c.Status) {
			return false, conflictf("connection %q cannot go from %s to %s", old.Name, old.Status, c.Status)
		}
		switch c.Status {
		case StatusValidated:
			if !newValidation {
				return false, conflictf("connection %q cannot become validated without a new validation", old.Name)
			}
			fallthrough
		case StatusActive:
			if ok, why := c.validatedNow(); !ok {
				return false, conflictf("connection %q cannot become %s: %s", old.Name, c.Status, why)
			}
		}
	} else if c.Status == StatusValidated || c.Status == StatusActive {
		if ok, why := c.validatedNow(); !ok {
			c.Status = StatusDraft
			c.StatusReason = why
			if changed := changedSettings(old.Settings, c.Settings); len(changed) > 0 {
				c.StatusReason = "settings changed: " + strings.Join(changed, ", ")
			}
		}
	}
	if c.Status == old.Status && !newValidation {
		// No transition: keep the reason of the last one.
		c.StatusReason = old.StatusReason
		return false, nil
	}
	if c.StatusReason == old.StatusReason || c.StatusReason == "" {
		c.StatusReason = defaultReason(old.Status, *c, newValidation)
	}
	return true, nil
}

func isAllowed(from, to Status) bool {
	for _, s := range allowed[from] {
		if s == to {
			return true
		}
	}
	return false
}

// defaultReason explains a transition fn made without setting StatusReason.
func defaultReason(from Status, c Connection, newValidation bool) string {
	switch {
	case newValidation && c.Validation.Passed:
		return "validation passed: " + c.Validation.Result
	case newValidation:
		return "validation failed: " + c.Validation.Result
	case c.Status == StatusActive:
		return "activated"
	case c.Status == StatusDisabled:
		return "disabled"
	}
	return fmt.Sprintf("%s to %s", from, c.Status)
}

// changedSettings names, with the config file's keys, the settings that
// differ between a and b.
func changedSettings(a, b Settings) []string {
	var out []string
	for _, f := range []struct {
		key  string
		a, b string
	}{
		{"account_id", a.AccountID, b.AccountID},
		{"bucket", a.Bucket, b.Bucket},
		{"region", a.Region, b.Region},
		{"base_path", config.NormalizeBasePath(a.BasePath), config.NormalizeBasePath(b.BasePath)},
		{"kms_key_arn", a.KMSKeyARN, b.KMSKeyARN},
	} {
		if f.a != f.b {
			out = append(out, f.key)
		}
	}
	return out
}

// conflictError is a lifecycle refusal: its message is the reason alone,
// fit to show the customer, and it matches ErrConflict.
type conflictError struct{ msg string }

func (e *conflictError) Error() string { return e.msg }

func (e *conflictError) Is(target error) bool { return target == ErrConflict }

func conflictf(format string, args ...any) error {
	return &conflictError{msg: fmt.Sprintf(format, args...)}
}
