package admin

import (
	"net/http"
	"reflect"
	"testing"

	"github.com/s3connector/s3connector/config"
	"github.com/s3connector/s3connector/connector"
)

func TestMergedPermissionsPolicy(t *testing.T) {
	conn := func(name, bucket, region, base string) config.Connection {
		return config.Connection{Name: name, AccountID: validAccountID, Bucket: bucket, Region: region, BasePath: base, RoleName: "shared-role"}
	}
	one := conn("one", "bucket-one", "us-east-1", "")
	if got, want := MergedPermissionsPolicy([]config.Connection{one}), connector.PermissionsPolicyFor(one); !reflect.DeepEqual(got, want) {
		t.Errorf("one connection: %+v, want PermissionsPolicyFor's %+v", got, want)
	}

	// The seeds' "Granting access to multiple buckets": one statement per
	// kind, every bucket in it.
	got := MergedPermissionsPolicy([]config.Connection{one, conn("two", "bucket-two", "eu-west-1", "")})
	byName := map[string]connector.PolicyStatement{}
	for _, st := range got.Statement {
		byName[st.Sid] = st
	}
	if len(got.Statement) != 3 {
		t.Fatalf("statements %+v", got.Statement)
	}
	if want := (connector.StringOrList{"arn:aws:s3:::bucket-one", "arn:aws:s3:::bucket-two"}); !reflect.DeepEqual(byName[connector.SidListBucket].Resource, want) {
		t.Errorf("ListBucket resources %v", byName[connector.SidListBucket].Resource)
	}
	if want := (connector.StringOrList{"arn:aws:s3:::bucket-one/*", "arn:aws:s3:::bucket-two/*"}); !reflect.DeepEqual(byName[connector.SidObjectOperations].Resource, want) {
		t.Errorf("ObjectOperations resources %v", byName[connector.SidObjectOperations].Resource)
	}

	// A base path's s3:prefix condition is never widened to another
	// bucket: prefixed listings stay in statements of their own.
	got = MergedPermissionsPolicy([]config.Connection{one, conn("three", "bucket-three", "us-east-1", "in/"), conn("four", "bucket-four", "us-east-1", "other/")})
	var lists []connector.PolicyStatement
	for _, st := range got.Statement {
		if len(st.Action) == 1 && st.Action[0] == "s3:ListBucket" {
			lists = append(lists, st)
		}
	}
	if len(lists) != 3 {
		t.Fatalf("ListBucket statements %+v", lists)
	}
	sids := map[string]bool{}
	for _, st := range got.Statement {
		if sids[st.Sid] {
			t.Errorf("Sid %s twice", st.Sid)
		}
		sids[st.Sid] = true
	}
	for _, st := range lists[1:] {
		if len(st.Resource) != 1 || st.Condition == nil {
			t.Errorf("prefixed listing %+v", st)
		}
	}
}

func TestRolePermissionsPolicyRoute(t *testing.T) {
	e := newEnv(t)
	mk := func(name, account, bucket, region string) config.Connection {
		return config.Connection{Name: name, Status: config.StatusActive, AccountID: account, Bucket: bucket, Region: region, RoleName: "shared-role", ExternalID: "abcdefghijklmnopqrstuvwxyz234567"}
	}
	e.fileConns = []config.Connection{mk("sydney", validAccountID, "bucket-syd", "ap-southeast-2"), mk("ireland", validAccountID, "bucket-dub", "eu-west-1")}
	var rp struct {
		RoleARN     string                   `json:"role_arn"`
		Connections []string                 `json:"connections"`
		Policy      connector.PolicyDocument `json:"permissions_policy"`
	}
	e.do("GET", "/api/v1/roles/shared-role/permissions-policy", "").want(t, http.StatusOK).decode(t, &rp)
	if !reflect.DeepEqual(rp.Connections, []string{"ireland", "sydney"}) || rp.RoleARN != "arn:aws:iam::123456789012:role/shared-role" {
		t.Errorf("%+v", rp)
	}
	if want := MergedPermissionsPolicy(e.fileConns); !reflect.DeepEqual(rp.Policy, want) {
		t.Errorf("policy %+v, want %+v", rp.Policy, want)
	}
	// The same role name in another account is another role.
	e.fileConns = append(e.fileConns, mk("elsewhere", "210987654321", "bucket-else", "us-east-1"))
	e.do("GET", "/api/v1/roles/shared-role/permissions-policy", "").want(t, http.StatusConflict)
	e.do("GET", "/api/v1/roles/shared-role/permissions-policy?account_id=210987654321", "").want(t, http.StatusOK).decode(t, &rp)
	if !reflect.DeepEqual(rp.Connections, []string{"elsewhere"}) {
		t.Errorf("%+v", rp)
	}
}
