package admin

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"sort"

	"go.uber.org/zap"

	"github.com/s3connector/s3connector/config"
	"github.com/s3connector/s3connector/store"
)

// GET /api/v1/connections: the "Manage Connections" list, the
// configuration file's connections (read-only) and the stored ones, by name.
func (a *API) listConnections(w http.ResponseWriter, r *http.Request) error {
	stored, err := a.opts.Store.List(r.Context())
	if err != nil {
		return storeError(err)
	}
	out := []connectionView{}
	for _, c := range a.opts.ConfigConnections() {
		out = append(out, a.configView(c))
	}
	for _, c := range stored {
		out = append(out, a.storedView(c))
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	a.writeData(w, http.StatusOK, map[string]any{"connections": out})
	return nil
}

// POST /api/v1/connections: a new draft connection from the seeds' step 2.
func (a *API) createConnection(w http.ResponseWriter, r *http.Request) error {
	var req createRequest
	if err := decodeBody(w, r, a.opts.MaxBodyBytes, &req); err != nil {
		a.auditf(r, "create", "", err, "")
		return err
	}
	c, err := a.create(r.Context(), req, tokenID(r))
	a.auditf(r, "create", req.Name, err, string(c.Status))
	if err != nil {
		return err
	}
	w.Header().Set("Location", Prefix+"/connections/"+url.PathEscape(c.Name))
	a.writeData(w, http.StatusCreated, a.storedView(c))
	return nil
}

func (a *API) create(ctx context.Context, req createRequest, by string) (store.Connection, error) {
	s := store.Settings{AccountID: req.AccountID, Bucket: req.Bucket, Region: req.Region, BasePath: req.BasePath, KMSKeyARN: req.KMSKeyARN}
	a.writeMu.Lock()
	defer a.writeMu.Unlock()
	others, err := a.allConnections(ctx)
	if err != nil {
		return store.Connection{}, err
	}
	if err := a.checkSettings(req.Name, s, others); err != nil {
		return store.Connection{}, err
	}
	if _, ok := a.configConnection(req.Name); ok {
		return store.Connection{}, &apiError{status: http.StatusConflict, code: CodeConflict,
			msg:    fmt.Sprintf("connection %q already exists in the configuration file", req.Name),
			fields: map[string]string{"name": "is already used by a connection of the configuration file"}}
	}
	c, err := a.opts.Store.Create(ctx, req.Name, s, by)
	if err != nil {
		return store.Connection{}, storeError(err)
	}
	return c, nil
}

// GET /api/v1/connections/{name}: one connection with its history.
func (a *API) getConnection(w http.ResponseWriter, r *http.Request) error {
	name, err := pathName(r)
	if err != nil {
		return err
	}
	if cc, ok := a.configConnection(name); ok {
		a.writeData(w, http.StatusOK, a.configView(cc))
		return nil
	}
	c, err := a.opts.Store.Get(r.Context(), name)
	if err != nil {
		return storeError(err)
	}
	ts, err := a.opts.Store.Transitions(r.Context(), name)
	if err != nil {
		return storeError(err)
	}
	v := a.storedView(c)
	v.Transitions = transitionViews(ts)
	a.writeData(w, http.StatusOK, v)
	return nil
}

// PATCH /api/v1/connections/{name}: change the step-2 fields. Changing
// where the connection points makes a validated or active one a draft
// again (the store's rule), which the supervisor then stops.
func (a *API) editConnection(w http.ResponseWriter, r *http.Request) error {
	name, err := a.storedName(r)
	if err != nil {
		return err
	}
	var req editRequest
	if err := decodeBody(w, r, a.opts.MaxBodyBytes, &req); err != nil {
		a.auditf(r, "edit", name, err, "")
		return err
	}
	c, err := a.edit(r.Context(), name, req, tokenID(r))
	a.auditf(r, "edit", name, err, string(c.Status))
	if err != nil {
		return err
	}
	if err := a.sync(r.Context(), c); err != nil {
		return err
	}
	a.writeData(w, http.StatusOK, a.storedView(c))
	return nil
}

func (a *API) edit(ctx context.Context, name string, req editRequest, by string) (store.Connection, error) {
	a.writeMu.Lock()
	defer a.writeMu.Unlock()
	old, err := a.opts.Store.Get(ctx, name)
	if err != nil {
		return store.Connection{}, storeError(err)
	}
	s := req.apply(old.Settings)
	others, err := a.allConnections(ctx)
	if err != nil {
		return store.Connection{}, err
	}
	if err := a.checkSettings(name, s, others); err != nil {
		return store.Connection{}, err
	}
	c, err := a.opts.Store.Update(ctx, name, by, func(c *store.Connection) error {
		c.Settings = s
		return nil
	})
	if err != nil {
		return store.Connection{}, storeError(err)
	}
	return c, nil
}

// DELETE /api/v1/connections/{name}: only a draft or disabled connection;
// nothing in its bucket is touched.
func (a *API) deleteConnection(w http.ResponseWriter, r *http.Request) error {
	name, err := a.storedName(r)
	if err != nil {
		return err
	}
	a.writeMu.Lock()
	err = a.opts.Store.Delete(r.Context(), name)
	a.writeMu.Unlock()
	if err != nil {
		err = storeError(err)
	}
	a.auditf(r, "delete", name, err, "")
	if err != nil {
		return err
	}
	if err := a.opts.Supervisor.Remove(r.Context(), name); err != nil {
		a.log.Warn("supervisor did not remove a deleted connection", zap.String("connection", name), zap.Error(err))
	}
	a.writeData(w, http.StatusOK, map[string]any{
		"deleted": name,
		"note":    "the connection is deleted; nothing in its bucket was touched, and its IAM role stays in your AWS account until you delete it",
	})
	return nil
}

// pathName is the {name} of the path, which must be a valid connection
// name: nothing else (no "/", "..", NUL) ever reaches the store.
func pathName(r *http.Request) (string, error) {
	name := r.PathValue("name")
	if err := config.ValidateName(name); err != nil {
		return "", &apiError{status: http.StatusBadRequest, code: CodeBadRequest,
			msg: fmt.Sprintf("invalid connection name %q in the path: %v", clip(name, 80), err), fields: map[string]string{"name": err.Error()}}
	}
	return name, nil
}

// storedName is pathName for a route that changes the connection: one of
// the configuration file's is read-only.
func (a *API) storedName(r *http.Request) (string, error) {
	name, err := pathName(r)
	if err != nil {
		return "", err
	}
	if _, ok := a.configConnection(name); ok {
		return "", errorf(http.StatusConflict, CodeReadOnly, fmt.Sprintf("connection %q is %s: change it there (and reload the daemon)", name, ReadOnlyReason))
	}
	return name, nil
}

func (a *API) configConnection(name string) (config.Connection, bool) {
	for _, c := range a.opts.ConfigConnections() {
		if c.Name == name {
			return c, true
		}
	}
	return config.Connection{}, false
}

// allConnections are the configuration file's connections and the stored
// ones (as the daemon runs them), for the rules across connections.
func (a *API) allConnections(ctx context.Context) ([]config.Connection, error) {
	stored, err := a.opts.Store.List(ctx)
	if err != nil {
		return nil, storeError(err)
	}
	out := append([]config.Connection(nil), a.opts.ConfigConnections()...)
	for _, c := range stored {
		out = append(out, c.ConfigConnection(a.tmpl()))
	}
	return out, nil
}

// sync tells the supervisor what a stored change means for ingestion: an
// active connection runs (with its current settings), any other does not.
// The change is stored already; when the supervisor refuses it, the answer
// says so (503) and a retry of the same request is harmless.
func (a *API) sync(ctx context.Context, c store.Connection) error {
	var err error
	if c.Status == store.StatusActive {
		err = a.opts.Supervisor.Apply(ctx, c.ConfigConnection(a.tmpl()))
	} else {
		err = a.opts.Supervisor.Remove(ctx, c.Name)
	}
	if err != nil {
		a.log.Error("supervisor did not take a stored change", zap.String("connection", c.Name), zap.String("status", string(c.Status)), zap.Error(err))
		return errorf(http.StatusServiceUnavailable, CodeUnavailable,
			fmt.Sprintf("connection %q is stored as %s, but the daemon could not apply it yet (%v); retry the request, or the daemon applies it at its next reload", c.Name, c.Status, err))
	}
	return nil
}
