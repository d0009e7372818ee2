package admin

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/s3connector/s3connector/config"
	"github.com/s3connector/s3connector/connector"
)

// ErrorFiles reaches the files a connection's importer rejected: its
// bucket's <base_path>error/ folder. The daemon implements it with
// archive.Mover (ListErrors, Requeue); the API never touches the bucket
// itself.
type ErrorFiles interface {
	// List returns up to limit files of c's error/ (never the reports nor
	// the daemon's own .s3connector/ records), in key order, each with its
	// report when it is readable.
	List(ctx context.Context, c config.Connection, limit int) ([]ErrorFile, error)
	// Requeue moves the error/ file key (a full key) back to the inbox
	// under its report's original key with the move protocol (copy, then
	// conditional delete), never over a file waiting there, and returns
	// the inbox key. Its errors wrap ErrNotAnErrorFile, ErrNoReport or
	// ErrInboxTaken, or a connector error class (connector.ErrNotFound,
	// ErrAccessDenied, ...), so the API can answer with the right status.
	Requeue(ctx context.Context, c config.Connection, key string) (string, error)
}

// Errors of ErrorFiles.Requeue, checked with errors.Is.
var (
	// ErrNotAnErrorFile: the key is not a file of the connection's error/
	// (a report, the daemon's state, or outside error/).
	ErrNotAnErrorFile = errors.New("not a file in error/")
	// ErrNoReport: the file's report, which names its original key, is
	// missing or unreadable.
	ErrNoReport = errors.New("the file's report is missing or unreadable")
	// ErrInboxTaken: a file waits under the original key in the inbox.
	ErrInboxTaken = errors.New("a file with the original key is waiting in the inbox")
)

// ErrorFile is one file in error/ as the API shows it.
type ErrorFile struct {
	Key      string       `json:"key"`
	Size     int64        `json:"size"`
	Modified time.Time    `json:"last_modified"`
	Report   *ErrorReport `json:"report"`
}

// ErrorReport is the part of a file's error report the API shows.
type ErrorReport struct {
	// OriginalKey is where Requeue puts the file back.
	OriginalKey string    `json:"original_key"`
	ReasonCode  string    `json:"reason_code"`
	Reason      string    `json:"reason"`
	Attempts    int       `json:"attempts"`
	RunID       string    `json:"run_id"`
	FailedAt    time.Time `json:"failed_at"`
}

// MaxErrorFiles is the most files GET .../errors lists (and
// MaxRequeueKeys the most keys one requeue takes).
const (
	MaxErrorFiles  = 1000
	MaxRequeueKeys = 100
)

type requeueRequest struct {
	Keys []string `json:"keys"`
}

type requeueResult struct {
	Key        string `json:"key"`
	RequeuedTo string `json:"requeued_to"`
}

// GET /api/v1/connections/{name}/errors: the files of error/ with their
// reports. Any connection, the configuration file's too: it only reads.
func (a *API) listErrorFiles(w http.ResponseWriter, r *http.Request) error {
	name, err := pathName(r)
	if err != nil {
		return err
	}
	cc, err := a.runConnection(r.Context(), name)
	if err != nil {
		return err
	}
	files, err := a.opts.ErrorFiles.List(r.Context(), cc, MaxErrorFiles+1)
	if err != nil {
		return bucketError(err, "list the files in error/")
	}
	truncated := len(files) > MaxErrorFiles
	if truncated {
		files = files[:MaxErrorFiles]
	}
	if files == nil {
		files = []ErrorFile{}
	}
	a.writeData(w, http.StatusOK, map[string]any{
		"connection": name,
		"prefix":     cc.BasePath + "error/",
		"files":      files,
		"truncated":  truncated,
	})
	return nil
}

// POST /api/v1/connections/{name}/requeue {"keys": [...]}: move chosen
// files of error/ back to the inbox, one after the other. A stored
// connection only: the configuration file's are requeued with
// `s3connector requeue`. When a key fails, the answer is that failure's
// status, naming each failed key in fields ("keys[i]") and saying which
// were requeued; every key is tried.
func (a *API) requeueErrorFiles(w http.ResponseWriter, r *http.Request) error {
	name, err := pathName(r)
	if err != nil {
		return err
	}
	if _, ok := a.configConnection(name); ok {
		return errorf(http.StatusConflict, CodeReadOnly, fmt.Sprintf("connection %q is %s: requeue its files with `s3connector requeue --config FILE --connection %s KEY...`", name, ReadOnlyReason, name))
	}
	var req requeueRequest
	if err := decodeBody(w, r, a.opts.MaxBodyBytes, &req); err != nil {
		a.auditf(r, "requeue", name, err, "")
		return err
	}
	switch {
	case len(req.Keys) == 0:
		err = &apiError{status: http.StatusBadRequest, code: CodeInvalid, msg: "keys: give at least one key of error/ to requeue", fields: map[string]string{"keys": "is required"}}
	case len(req.Keys) > MaxRequeueKeys:
		err = &apiError{status: http.StatusBadRequest, code: CodeInvalid, msg: fmt.Sprintf("keys: at most %d keys per request, got %d", MaxRequeueKeys, len(req.Keys)), fields: map[string]string{"keys": fmt.Sprintf("at most %d", MaxRequeueKeys)}}
	}
	if err != nil {
		a.auditf(r, "requeue", name, err, "")
		return err
	}
	cc, err := a.runConnection(r.Context(), name)
	if err != nil {
		return err
	}
	var done []requeueResult
	var first *apiError
	fields := map[string]string{}
	for i, k := range req.Keys {
		key := k
		// Keys may be relative to the base path, as the CLI takes them.
		if !strings.HasPrefix(key, cc.BasePath) {
			key = cc.BasePath + key
		}
		var target string
		if err = checkKey(k); err == nil {
			target, err = a.opts.ErrorFiles.Requeue(r.Context(), cc, key)
		}
		if err != nil {
			ae := requeueError(err)
			a.auditf(r, "requeue", name, ae, "")
			if first == nil {
				first = ae
			}
			fields[fmt.Sprintf("keys[%d]", i)] = ae.msg
			continue
		}
		a.auditf(r, "requeue", name, nil, "requeued "+key+" to "+target)
		done = append(done, requeueResult{Key: key, RequeuedTo: target})
	}
	if first != nil {
		msg := fmt.Sprintf("%d of %d files requeued", len(done), len(req.Keys))
		if len(done) > 0 {
			var ks []string
			for _, d := range done {
				ks = append(ks, d.Key)
			}
			msg += " (" + strings.Join(ks, ", ") + ")"
		}
		return &apiError{status: first.status, code: first.code, msg: msg + "; " + first.msg, fields: fields}
	}
	a.writeData(w, http.StatusOK, map[string]any{"requeued": done})
	return nil
}

// checkKey refuses what cannot be an S3 key before the bucket is asked.
func checkKey(k string) error {
	if k == "" || len(k) > 1024 || strings.ContainsFunc(k, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return errorf(http.StatusBadRequest, CodeInvalid, fmt.Sprintf("%q is not a key of error/: 1 to 1024 bytes, no control characters", clip(k, 80)))
	}
	return nil
}

// runConnection is the named connection as the daemon runs it: the
// configuration file's, or the stored one with the template applied.
func (a *API) runConnection(ctx context.Context, name string) (config.Connection, error) {
	if cc, ok := a.configConnection(name); ok {
		return cc, nil
	}
	c, err := a.opts.Store.Get(ctx, name)
	if err != nil {
		return config.Connection{}, storeError(err)
	}
	return c.ConfigConnection(a.tmpl()), nil
}

// requeueError maps ErrorFiles.Requeue's errors to answers.
func requeueError(err error) *apiError {
	switch {
	case errors.Is(err, ErrNotAnErrorFile):
		return errorf(http.StatusBadRequest, CodeInvalid, err.Error())
	case errors.Is(err, ErrNoReport), errors.Is(err, ErrInboxTaken):
		return errorf(http.StatusConflict, CodeConflict, err.Error())
	}
	return bucketError(err, "requeue")
}

// bucketError is the answer for trouble reaching the customer's bucket: a
// missing key is 404, throttling 503, anything else 502 (the bucket, not
// the request nor the daemon, is at fault), with the seeds' headline.
func bucketError(err error, what string) *apiError {
	var ae *apiError
	if errors.As(err, &ae) {
		return ae
	}
	switch {
	case errors.Is(err, connector.ErrNotFound):
		return errorf(http.StatusNotFound, CodeNotFound, clip(err.Error(), 500))
	case errors.Is(err, connector.ErrThrottled):
		return &apiError{status: http.StatusServiceUnavailable, code: CodeUnavailable, msg: what + ": the bucket is throttling requests; retry later: " + clip(err.Error(), 400), retryAfter: 5 * time.Second}
	case errors.Is(err, connector.ErrAccessDenied):
		return errorf(http.StatusBadGateway, CodeBucket, what+": access denied: check the role's trust and permissions policies (GET .../iam) and validate the connection: "+clip(err.Error(), 400))
	}
	return errorf(http.StatusBadGateway, CodeBucket, what+": "+clip(err.Error(), 500))
}

// noErrorFiles is the ErrorFiles of an API without one: the routes answer
// 503.
type noErrorFiles struct{}

var errNoErrorFiles = errorf(http.StatusServiceUnavailable, CodeUnavailable, "this daemon does not serve error/ files")

func (noErrorFiles) List(context.Context, config.Connection, int) ([]ErrorFile, error) {
	return nil, errNoErrorFiles
}

func (noErrorFiles) Requeue(context.Context, config.Connection, string) (string, error) {
	return "", errNoErrorFiles
}
