package admin

import (
	"time"

	"github.com/s3connector/s3connector/config"
	"github.com/s3connector/s3connector/store"
)

// Connection types of the wizard's step 1; the seeds have one.
const TypeAWSS3OwnBucket = "aws_s3_own_bucket"

// Sources of a listed connection.
const (
	SourceAPI    = "api"
	SourceConfig = "config"
)

// ReadOnlyReason is why a connection of the configuration file cannot be
// changed through the API.
const ReadOnlyReason = "managed in the configuration file"

// connectionView is a connection as the API shows it: the "Manage
// Connections" list's columns and the wizard's state. It never holds the
// External ID (only the IAM setup of the connection itself does).
type connectionView struct {
	Name           string          `json:"name"`
	Type           string          `json:"type"`
	Source         string          `json:"source"`
	ReadOnly       bool            `json:"read_only"`
	ReadOnlyReason string          `json:"read_only_reason,omitempty"`
	AccountID      string          `json:"account_id"`
	Bucket         string          `json:"bucket"`
	Region         string          `json:"region"`
	BasePath       string          `json:"base_path"`
	KMSKeyARN      string          `json:"kms_key_arn,omitempty"`
	RoleName       string          `json:"role_name"`
	Status         string          `json:"status"`
	StatusReason   string          `json:"status_reason,omitempty"`
	CanActivate    bool            `json:"can_activate"`
	LastValidation *validationView `json:"last_validation"`
	RunState       string          `json:"run_state,omitempty"`
	RunProblem     string          `json:"run_problem,omitempty"`
	LastRun        *runView        `json:"last_run"`
	FilesWaiting   *int            `json:"files_waiting"`
	NextRun        *time.Time      `json:"next_run,omitempty"`
	Revision       uint64          `json:"revision,omitempty"`
	CreatedAt      *time.Time      `json:"created_at,omitempty"`
	UpdatedAt      *time.Time      `json:"updated_at,omitempty"`
	// Transitions is the connection's history, oldest first (get one only).
	Transitions []transitionView `json:"transitions,omitempty"`
}

type validationView struct {
	At     time.Time `json:"at"`
	Passed bool      `json:"passed"`
	Result string    `json:"result"`
	// Current reports whether it validated the connection's current
	// settings; activation needs a current, passing one.
	Current bool `json:"current"`
}

type runView struct {
	At        time.Time `json:"at"`
	OK        bool      `json:"ok"`
	LastError string    `json:"last_error,omitempty"`
}

type transitionView struct {
	At     time.Time `json:"at"`
	By     string    `json:"by"`
	From   string    `json:"from"`
	To     string    `json:"to"`
	Reason string    `json:"reason"`
}

func (a *API) storedView(c store.Connection) connectionView {
	v := connectionView{
		Name: c.Name, Type: TypeAWSS3OwnBucket, Source: SourceAPI,
		AccountID: c.AccountID, Bucket: c.Bucket, Region: c.Region, BasePath: c.BasePath, KMSKeyARN: c.KMSKeyARN,
		RoleName: c.RoleName, Status: string(c.Status), StatusReason: c.StatusReason,
		CanActivate: canActivate(c), Revision: c.Revision,
		CreatedAt: timePtr(c.CreatedAt), UpdatedAt: timePtr(c.UpdatedAt),
	}
	if !c.Validation.At.IsZero() {
		v.LastValidation = &validationView{At: c.Validation.At.UTC(), Passed: c.Validation.Passed, Result: c.Validation.Result,
			Current: c.Validation.Fingerprint == c.Fingerprint()}
	}
	a.addRunState(&v, true)
	return v
}

func (a *API) configView(c config.Connection) connectionView {
	v := connectionView{
		Name: c.Name, Type: TypeAWSS3OwnBucket, Source: SourceConfig, ReadOnly: true, ReadOnlyReason: ReadOnlyReason,
		AccountID: c.AccountID, Bucket: c.Bucket, Region: c.Region, BasePath: c.BasePath, KMSKeyARN: c.KMSKeyARN,
		RoleName: c.RoleName, Status: string(c.Status),
	}
	a.addRunState(&v, false)
	return v
}

func (a *API) addRunState(v *connectionView, stored bool) {
	st, ok := a.opts.Supervisor.State(v.Name, stored)
	if !ok {
		return
	}
	v.RunState, v.RunProblem = st.State, st.Problem
	if !st.LastRun.IsZero() {
		v.LastRun = &runView{At: st.LastRun.UTC(), OK: st.LastRunOK, LastError: st.LastError}
	}
	v.FilesWaiting = st.FilesWaiting
	v.NextRun = timePtr(st.NextRun)
}

// canActivate mirrors the store's rule: validated, and the last validation
// passed for the current settings.
func canActivate(c store.Connection) bool {
	return c.Status == store.StatusValidated && c.Validation.Passed && !c.Validation.At.IsZero() &&
		c.Validation.Fingerprint == c.Fingerprint()
}

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	u := t.UTC()
	return &u
}

func transitionViews(ts []store.Transition) []transitionView {
	out := make([]transitionView, 0, len(ts))
	for _, t := range ts {
		out = append(out, transitionView{At: t.At.UTC(), By: t.By, From: string(t.From), To: string(t.To), Reason: t.Reason})
	}
	return out
}
