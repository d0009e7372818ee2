package admin

import (
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strings"

	"github.com/s3connector/s3connector/config"
	"github.com/s3connector/s3connector/store"
)

// createRequest is the body of POST /api/v1/connections: the seeds' step 2
// ("S3 Bucket") and an optional KMS key ARN, nothing else.
type createRequest struct {
	Name      string `json:"name"`
	AccountID string `json:"account_id"`
	Bucket    string `json:"bucket"`
	Region    string `json:"region"`
	BasePath  string `json:"base_path"`
	KMSKeyARN string `json:"kms_key_arn"`
}

// editRequest is the body of PATCH /api/v1/connections/{name}: the fields
// to change; absent (or null) ones keep their value. The name cannot change.
type editRequest struct {
	AccountID *string `json:"account_id"`
	Bucket    *string `json:"bucket"`
	Region    *string `json:"region"`
	BasePath  *string `json:"base_path"`
	KMSKeyARN *string `json:"kms_key_arn"`
}

func (e editRequest) apply(s store.Settings) store.Settings {
	set := func(dst *string, v *string) {
		if v != nil {
			*dst = *v
		}
	}
	set(&s.AccountID, e.AccountID)
	set(&s.Bucket, e.Bucket)
	set(&s.Region, e.Region)
	set(&s.BasePath, e.BasePath)
	set(&s.KMSKeyARN, e.KMSKeyARN)
	return s
}

// settingsFields are the JSON names of the fields a client sets, which are
// also the config file's keys.
var settingsFields = []string{"name", "account_id", "bucket", "region", "base_path", "kms_key_arn"}

// problemRE splits a config.ValidationError line of one connection:
// connections[N].field...: message.
var problemRE = regexp.MustCompile(`^connections\[(\d+)\]\.([a-z_]+)[^:]*: (.*)$`)

// labelRE is how config names another connection in a message; the
// index is the position in a list the client never sees.
var labelRE = regexp.MustCompile(`connections\[\d+\] \(("[^"]*")\)`)

// checkSettings validates the connection named name with settings s as
// config.Config.Validate would in a configuration file holding every other
// connection too (the file's and the store's, except the one named name):
// the same validators, the same words, and the same overlap rule (no two
// connections in one bucket with equal or nested base paths), every
// problem at once. It returns nil or an *apiError whose fields are keyed by
// the JSON names.
func (a *API) checkSettings(name string, s store.Settings, others []config.Connection) error {
	candidate := config.Connection{
		Name: name, Status: config.StatusDraft,
		AccountID: s.AccountID, Bucket: s.Bucket, Region: s.Region, BasePath: s.BasePath, KMSKeyARN: s.KMSKeyARN,
	}
	// Only what the rules look at: the template's settings would bring in
	// problems that are not the client's (and each connection's own
	// importer directory is the supervisor's business).
	var conns []config.Connection
	for _, o := range others {
		if o.Name == name {
			continue
		}
		conns = append(conns, config.Connection{Name: o.Name, Status: config.StatusDraft, AccountID: o.AccountID, Bucket: o.Bucket, Region: o.Region, BasePath: o.BasePath})
	}
	conns = append(conns, candidate)
	cfg := config.Config{PrincipalARN: a.opts.PrincipalARN, Connections: conns}
	cfg.ApplyDefaults() // normalises base paths, derives the role name
	err := cfg.Validate()
	if err == nil {
		return nil
	}
	var ve *config.ValidationError
	if !errors.As(err, &ve) {
		return err
	}
	idx := fmt.Sprint(len(conns) - 1)
	// The field validators first, on the values as sent (Validate sees
	// the base path normalised, and would echo "imports/" for "imports").
	fields := map[string]string{}
	for _, f := range []struct {
		name string
		err  error
	}{
		{"name", config.ValidateName(name)},
		{"account_id", config.ValidateAccountID(s.AccountID)},
		{"bucket", config.ValidateBucket(s.Bucket)},
		{"region", config.ValidateRegion(s.Region)},
		{"base_path", config.ValidateBasePath(s.BasePath)},
	} {
		if f.err != nil {
			fields[f.name] = f.err.Error()
		}
	}
	for _, p := range ve.Problems {
		m := problemRE.FindStringSubmatch(p)
		if m == nil || m[1] != idx {
			continue
		}
		field, msg := m[2], labelRE.ReplaceAllString(m[3], "connection $1")
		if field == "role_name" {
			// Derived from the name: its problem is the name's.
			field = "name"
		}
		if !slices.Contains(settingsFields, field) {
			continue
		}
		if _, dup := fields[field]; !dup {
			fields[field] = msg
		}
	}
	if len(fields) == 0 {
		return nil
	}
	return invalidFields(fields)
}

// invalidFields is the 400 answer listing every field's problem, in the
// order of the form.
func invalidFields(fields map[string]string) *apiError {
	var parts []string
	for _, f := range settingsFields {
		if msg, ok := fields[f]; ok {
			parts = append(parts, f+": "+msg)
		}
	}
	return &apiError{status: http.StatusBadRequest, code: CodeInvalid, msg: "invalid connection: " + strings.Join(parts, "; "), fields: fields}
}
