package admin

import (
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/s3connector/s3connector/config"
	"github.com/s3connector/s3connector/connector"
)

// MergedPermissionsPolicy is one permissions policy granting what each of
// conns needs (connector.PermissionsPolicyFor), for connections that share
// one IAM role: statements that differ only in their resources become one
// statement listing them all (the seeds' "Granting access to multiple
// buckets"); statements with different conditions stay apart, so that no
// base path's s3:prefix condition is widened to another bucket. Sids stay
// unique (ListBucket, ListBucket2, ...). For one connection it is exactly
// PermissionsPolicyFor.
//
// It belongs with the other policy documents in connector, where the CLI
// (`s3connector policy --role`) can share it; it is here until then.
func MergedPermissionsPolicy(conns []config.Connection) connector.PolicyDocument {
	type group struct {
		st connector.PolicyStatement
	}
	var groups []*group
	index := map[string]*group{}
	for _, c := range conns {
		for _, st := range connector.PermissionsPolicyFor(c).Statement {
			cond, _ := json.Marshal(st.Condition)
			key := st.Sid + "\x00" + st.Effect + "\x00" + strings.Join(st.Action, ",") + "\x00" + string(cond)
			g, ok := index[key]
			if !ok {
				st.Resource = slices.Clone(st.Resource)
				g = &group{st: st}
				index[key] = g
				groups = append(groups, g)
				continue
			}
			for _, res := range st.Resource {
				if !slices.Contains(g.st.Resource, res) {
					g.st.Resource = append(g.st.Resource, res)
				}
			}
		}
	}
	doc := connector.PolicyDocument{Version: connector.PolicyVersion}
	seen := map[string]int{}
	for _, g := range groups {
		st := g.st
		seen[st.Sid]++
		if n := seen[st.Sid]; n > 1 {
			st.Sid = fmt.Sprintf("%s%d", st.Sid, n)
		}
		doc.Statement = append(doc.Statement, st)
	}
	return doc
}

// roleNameRE is IAM's pattern for a role name (as config checks role_name).
var roleNameRE = regexp.MustCompile(`^[A-Za-z0-9+=,.@_-]{1,64}$`)

func validateRoleName(name string) error {
	if !roleNameRE.MatchString(name) {
		return errors.New("must be 1 to 64 letters, digits and +=,.@_-")
	}
	return nil
}
