package admin

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/s3connector/s3connector/connector"
	"github.com/s3connector/s3connector/store"
)

// The Validate step's messages, in the seeds' words.
const (
	MessageValidationSuccessful = "Validation Successful"
	MessageValidationFailed     = "Validation Failed"
	SummaryValidationSuccessful = "All checks passed. The S3 bucket is properly configured and ready to activate."
	SummaryValidationFailed     = "Unable to access the S3 bucket with the provided IAM role. Review the configuration, then validate again."
)

// Check states as the API names them.
const (
	CheckPass = "pass"
	CheckFail = "fail"
	CheckSkip = "skip"
)

type checkView struct {
	Name          string `json:"name"`
	State         string `json:"state"`
	Detail        string `json:"detail,omitempty"`
	Error         string `json:"error,omitempty"`
	SkippedReason string `json:"skipped_reason,omitempty"`
}

type adviceView struct {
	Headline string   `json:"headline"`
	Checks   []string `json:"checks"`
}

type validateView struct {
	Passed       bool   `json:"passed"`
	Message      string `json:"message"`
	Summary      string `json:"summary"`
	SuccessLine  string `json:"success_line,omitempty"`
	FilesFound   *int   `json:"files_found,omitempty"`
	FilesAtLeast bool   `json:"files_at_least,omitempty"`
	// Checks are the checks that ran, in order; validation stops at the
	// first failure.
	Checks      []checkView    `json:"checks"`
	FailedCheck string         `json:"failed_check,omitempty"`
	Advice      *adviceView    `json:"advice,omitempty"`
	CanActivate bool           `json:"can_activate"`
	Connection  connectionView `json:"connection"`
}

// POST /api/v1/connections/{name}/validate: the checks of `s3connector
// validate`, recorded for the settings they checked.
func (a *API) validateConnection(w http.ResponseWriter, r *http.Request) error {
	name, err := a.storedName(r)
	if err != nil {
		return err
	}
	c, err := a.opts.Store.Get(r.Context(), name)
	if err != nil {
		return storeError(err)
	}
	release, err := a.limiter.acquire(name)
	if err != nil {
		a.auditf(r, "validate", name, err, "")
		return err
	}
	defer release()

	fingerprint := c.Fingerprint()
	cc := c.ConfigConnection(a.tmpl())
	// The result is recorded even if the client goes away; the deadline
	// bounds it.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), a.opts.ValidationTimeout)
	report, verr := a.opts.Validator.Validate(ctx, cc)
	timedOut := ctx.Err() != nil
	cancel()

	v := validateView{Passed: verr == nil && report != nil && report.OK(), Checks: []checkView{}}
	if report != nil {
		for _, ch := range report.Checks {
			cv := checkView{Name: ch.Name, Detail: ch.Detail, SkippedReason: ch.Skipped}
			switch ch.State() {
			case connector.CheckFailed:
				cv.State, cv.Error = CheckFail, ch.Err.Error()
				if v.FailedCheck == "" {
					v.FailedCheck = ch.Name
				}
			case connector.CheckSkipped:
				cv.State = CheckSkip
			default:
				cv.State = CheckPass
			}
			v.Checks = append(v.Checks, cv)
		}
	}
	var result string
	if v.Passed {
		v.Message, v.Summary = MessageValidationSuccessful, SummaryValidationSuccessful
		v.SuccessLine = report.SuccessLine()
		files := report.Files
		v.FilesFound, v.FilesAtLeast = &files, report.FilesAtLeast
		result = v.SuccessLine
	} else {
		if verr == nil {
			verr = errors.New("no check ran")
		}
		if report == nil || v.FailedCheck == "" {
			// The connection could not be set up (connector.New).
			v.Checks = append(v.Checks, checkView{Name: "set up the connection", State: CheckFail, Error: verr.Error()})
			v.FailedCheck = "set up the connection"
		}
		v.Message, v.Summary = MessageValidationFailed, SummaryValidationFailed
		advice := connector.Advise(a.opts.PrincipalARN, cc, verr)
		v.Advice = &adviceView{Headline: advice.Headline, Checks: advice.Checks}
		if timedOut {
			v.Summary += fmt.Sprintf(" The validation did not finish within %s.", a.opts.ValidationTimeout)
		}
		result = clip(v.FailedCheck+": "+advice.Headline, 400)
	}

	a.writeMu.Lock()
	after, err := a.opts.Store.Update(r.Context(), name, tokenID(r), func(sc *store.Connection) error {
		return sc.RecordValidation(store.Validation{Fingerprint: fingerprint, At: a.opts.now().UTC(), Passed: v.Passed, Result: result})
	})
	a.writeMu.Unlock()
	if err != nil {
		err = storeError(err)
		a.auditf(r, "validate", name, err, "")
		return err
	}
	a.auditf(r, "validate", name, nil, string(after.Status)+" ("+map[bool]string{true: "passed", false: "failed"}[v.Passed]+")")
	if after.Status != c.Status {
		if err := a.sync(r.Context(), after); err != nil {
			return err
		}
	}
	v.CanActivate = canActivate(after)
	v.Connection = a.storedView(after)
	a.writeData(w, http.StatusOK, v)
	return nil
}

// POST /api/v1/connections/{name}/activate: validated → active, refused
// (409, with the reason) unless the last validation of the current settings
// passed.
func (a *API) activateConnection(w http.ResponseWriter, r *http.Request) error {
	return a.transition(w, r, "activate", (*store.Connection).Activate)
}

// POST /api/v1/connections/{name}/disable: no longer ingested; may then be
// deleted, or activated again after a new passing validation.
func (a *API) disableConnection(w http.ResponseWriter, r *http.Request) error {
	return a.transition(w, r, "disable", (*store.Connection).Disable)
}

func (a *API) transition(w http.ResponseWriter, r *http.Request, action string, fn func(*store.Connection) error) error {
	name, err := a.storedName(r)
	if err != nil {
		return err
	}
	if r.ContentLength > 0 {
		return errorf(http.StatusBadRequest, CodeBadRequest, action+" takes no request body")
	}
	a.writeMu.Lock()
	c, err := a.opts.Store.Update(r.Context(), name, tokenID(r), func(c *store.Connection) error { return fn(c) })
	a.writeMu.Unlock()
	if err != nil {
		err = storeError(err)
	}
	a.auditf(r, action, name, err, string(c.Status))
	if err != nil {
		return err
	}
	if err := a.sync(r.Context(), c); err != nil {
		return err
	}
	a.writeData(w, http.StatusOK, a.storedView(c))
	return nil
}
