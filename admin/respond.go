package admin

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"time"

	"go.uber.org/zap"

	"github.com/s3connector/s3connector/store"
)

// Error codes of the error envelope. Clients switch on them; the message is
// for people.
const (
	CodeBadRequest       = "bad_request"        // 400: malformed body, unknown or forbidden field
	CodeInvalid          = "invalid"            // 400: field values fail validation (see fields)
	CodeUnauthorized     = "unauthorized"       // 401
	CodeForbidden        = "forbidden"          // 403: Host or Origin not allowed
	CodeNotFound         = "not_found"          // 404
	CodeMethodNotAllowed = "method_not_allowed" // 405
	CodeConflict         = "conflict"           // 409: lifecycle or name conflict
	CodeReadOnly         = "read_only"          // 409: managed in the configuration file
	CodeTooLarge         = "too_large"          // 413
	CodeUnsupportedMedia = "unsupported_media"  // 415
	CodeRateLimited      = "rate_limited"       // 429
	CodeUnavailable      = "unavailable"        // 503
	CodeBucket           = "bucket_error"       // 502: the customer's bucket refused or failed
	CodeInternal         = "internal"           // 500: a fault of the daemon, never of the request
)

// apiError is an error answer: status code, code, message, per-field
// messages.
type apiError struct {
	status     int
	code       string
	msg        string
	fields     map[string]string
	retryAfter time.Duration
}

func (e *apiError) Error() string { return e.msg }

func errorf(status int, code, msg string) *apiError {
	return &apiError{status: status, code: code, msg: msg}
}

type envelope struct {
	Status string     `json:"status"`
	Data   any        `json:"data,omitempty"`
	Error  *errorBody `json:"error,omitempty"`
}

type errorBody struct {
	Code    string            `json:"code"`
	Message string            `json:"message"`
	Fields  map[string]string `json:"fields,omitempty"`
}

// writeData answers status with {"status":"success","data":data}.
func (a *API) writeData(w http.ResponseWriter, status int, data any) {
	a.writeJSON(w, status, envelope{Status: "success", Data: data})
}

// writeError answers with the error envelope. An error that is not an
// *apiError is the daemon's fault: logged, and answered 500 without detail.
func (a *API) writeError(w http.ResponseWriter, r *http.Request, err error) {
	var ae *apiError
	if !errors.As(err, &ae) {
		a.log.Error("admin API request failed", zap.String("method", r.Method), zap.String("path", r.URL.Path), zap.Error(err))
		ae = errorf(http.StatusInternalServerError, CodeInternal, "internal error; the daemon log has the details")
	}
	if ae.retryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int((ae.retryAfter+time.Second-1)/time.Second)))
	}
	a.writeJSON(w, ae.status, envelope{Status: "error", Error: &errorBody{Code: ae.code, Message: ae.msg, Fields: ae.fields}})
}

func (a *API) writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		a.log.Debug("write admin API answer", zap.Error(err))
	}
}

// storeError maps the store's errors to answers; anything else is the
// daemon's fault.
func storeError(err error) error {
	switch {
	case errors.Is(err, store.ErrNotFound):
		return errorf(http.StatusNotFound, CodeNotFound, err.Error())
	case errors.Is(err, store.ErrExists):
		return &apiError{status: http.StatusConflict, code: CodeConflict, msg: err.Error(), fields: map[string]string{"name": "is already used by another connection"}}
	case errors.Is(err, store.ErrConflict):
		return errorf(http.StatusConflict, CodeConflict, err.Error())
	case errors.Is(err, store.ErrInvalid):
		return errorf(http.StatusBadRequest, CodeInvalid, err.Error())
	}
	return err
}
