package admin

import (
	"net/http"

	"go.uber.org/zap"
)

// auditf writes the audit line of one state-changing request, whatever its
// outcome: who (token id), what (action, connection), the result ("ok", or
// the answer's code and message) and, on success, the status reached. zap
// adds the time. No value in it is a secret: the External ID is never
// logged, and tokens appear only by id.
func (a *API) auditf(r *http.Request, action, connection string, err error, status string) {
	fields := []zap.Field{
		zap.String("token", tokenID(r)),
		zap.String("action", action),
		zap.String("connection", connection),
		zap.String("remote", r.RemoteAddr),
	}
	if err == nil {
		fields = append(fields, zap.String("result", "ok"))
		if status != "" {
			fields = append(fields, zap.String("status", status))
		}
	} else {
		result := CodeInternal
		if ae, ok := err.(*apiError); ok {
			result = ae.code
		}
		fields = append(fields, zap.String("result", result), zap.String("reason", err.Error()))
	}
	a.audit.Info("admin API "+action, fields...)
}
