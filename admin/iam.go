package admin

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/s3connector/s3connector/config"
	"github.com/s3connector/s3connector/connector"
)

// RoleNameNote is how the IAM step marks the role name.
const RoleNameNote = "system-generated, do not modify"

type iamView struct {
	Connection   string `json:"connection"`
	RoleName     string `json:"role_name"`
	RoleNameNote string `json:"role_name_note"`
	RoleARN      string `json:"role_arn"`
	PolicyName   string `json:"policy_name"`
	// PrincipalARN is the platform identity the trust policy names.
	PrincipalARN string `json:"principal_arn"`
	// ExternalID is this connection's own, generated at creation; the
	// trust policy requires it.
	ExternalID        string                     `json:"external_id"`
	TrustPolicy       connector.PolicyDocument   `json:"trust_policy"`
	PermissionsPolicy connector.PolicyDocument   `json:"permissions_policy"`
	KMSKeyARN         string                     `json:"kms_key_arn,omitempty"`
	KMSKeyStatement   *connector.PolicyStatement `json:"kms_key_policy_statement,omitempty"`
	// Instructions is the step-by-step text (connector.Policies.WriteText).
	Instructions string `json:"instructions"`
}

// GET /api/v1/connections/{name}/iam: the wizard's IAM Role step.
func (a *API) iamSetup(w http.ResponseWriter, r *http.Request) error {
	name, err := pathName(r)
	if err != nil {
		return err
	}
	cc, fromFile := a.configConnection(name)
	if !fromFile {
		c, err := a.opts.Store.Get(r.Context(), name)
		if err != nil {
			return storeError(err)
		}
		cc = c.ConfigConnection(a.tmpl())
	}
	if cc.ExternalID == "" {
		return errorf(http.StatusConflict, CodeConflict, fmt.Sprintf("connection %q has no external_id yet (a draft of the configuration file): generate one with `s3connector connection new`", name))
	}
	p := connector.PoliciesFor(a.opts.PrincipalARN, cc)
	var text strings.Builder
	validate := "the Validate step of the wizard (POST " + Prefix + "/connections/" + url.PathEscape(name) + "/validate)"
	if fromFile {
		validate = "s3connector validate --config <the configuration file> --connection " + name
	}
	if err := p.WriteText(&text, validate); err != nil {
		return err
	}
	a.writeData(w, http.StatusOK, iamView{
		Connection: name, RoleName: p.RoleName, RoleNameNote: RoleNameNote, RoleARN: p.RoleARN, PolicyName: p.PolicyName,
		PrincipalARN: a.opts.PrincipalARN, ExternalID: cc.ExternalID,
		TrustPolicy: p.Trust, PermissionsPolicy: p.Permissions,
		KMSKeyARN: p.KMSKeyARN, KMSKeyStatement: p.KMSKeyStatement,
		Instructions: text.String(),
	})
	return nil
}

type rolePolicyView struct {
	RoleName    string                   `json:"role_name"`
	AccountID   string                   `json:"account_id"`
	RoleARN     string                   `json:"role_arn"`
	PolicyName  string                   `json:"policy_name"`
	Connections []string                 `json:"connections"`
	Permissions connector.PolicyDocument `json:"permissions_policy"`
}

// GET /api/v1/roles/{role}/permissions-policy[?account_id=]: one
// permissions policy for every connection that uses the role (the seeds'
// "Granting access to multiple buckets": buckets in other regions need
// their own connection but can share the role).
func (a *API) rolePermissionsPolicy(w http.ResponseWriter, r *http.Request) error {
	role := r.PathValue("role")
	if err := validateRoleName(role); err != nil {
		return &apiError{status: http.StatusBadRequest, code: CodeBadRequest, msg: fmt.Sprintf("invalid role name %q in the path: %v", clip(role, 80), err), fields: map[string]string{"role": err.Error()}}
	}
	q := r.URL.Query()
	for k := range q {
		if k != "account_id" {
			return errorf(http.StatusBadRequest, CodeBadRequest, fmt.Sprintf("unknown query parameter %q; the only one is account_id", clip(k, 40)))
		}
	}
	account := q.Get("account_id")
	if account != "" {
		if err := config.ValidateAccountID(account); err != nil {
			return &apiError{status: http.StatusBadRequest, code: CodeBadRequest, msg: "account_id: " + err.Error(), fields: map[string]string{"account_id": err.Error()}}
		}
	}
	all, err := a.allConnections(r.Context())
	if err != nil {
		return err
	}
	var conns []config.Connection
	accounts := map[string]bool{}
	for _, c := range all {
		if c.RoleName == role && (account == "" || c.AccountID == account) {
			conns = append(conns, c)
			accounts[c.AccountID+" ("+config.Partition(c.Region)+")"] = true
		}
	}
	switch {
	case len(conns) == 0:
		return errorf(http.StatusNotFound, CodeNotFound, fmt.Sprintf("no connection uses the role %q", role))
	case len(accounts) > 1:
		// A role name names a different role in each account (and
		// partition): one policy per role.
		list := make([]string, 0, len(accounts))
		for k := range accounts {
			list = append(list, k)
		}
		slices.Sort(list)
		return errorf(http.StatusConflict, CodeConflict, fmt.Sprintf("connections in several accounts or partitions use a role named %q: %s; choose one with ?account_id=", role, strings.Join(list, ", ")))
	}
	names := make([]string, 0, len(conns))
	for _, c := range conns {
		names = append(names, c.Name)
	}
	slices.Sort(names)
	a.writeData(w, http.StatusOK, rolePolicyView{
		RoleName: role, AccountID: conns[0].AccountID, RoleARN: conns[0].RoleARN(), PolicyName: role + "-access",
		Connections: names, Permissions: MergedPermissionsPolicy(conns),
	})
	return nil
}

// GET /api/v1/regions: the drop-down of the S3 Bucket step.
func (a *API) listRegions(w http.ResponseWriter, _ *http.Request) error {
	a.writeData(w, http.StatusOK, map[string]any{"regions": config.Regions})
	return nil
}
