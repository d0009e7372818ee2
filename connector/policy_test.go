package connector

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/s3connector/s3connector/config"
	"github.com/s3connector/s3connector/connector/miniotest"
)

var updateGolden = flag.Bool("update", false, "rewrite the golden files under testdata/")

const (
	policyPrincipal   = "arn:aws:iam::111122223333:role/s3connector-platform"
	policyPrincipalCN = "arn:aws-cn:iam::111122223333:role/s3connector-platform"
	policyExternalID  = "k3d7q2wz5xjv4mhp6tbrn2cy7fla5s3e"
	policyKMSKeyARN   = "arn:aws:kms:ap-southeast-2:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
)

func policyConnection() config.Connection {
	return config.Connection{
		Name:       "acme",
		Status:     config.StatusActive,
		AccountID:  "123456789012",
		Bucket:     "acme-data",
		Region:     "ap-southeast-2",
		RoleName:   "s3connector-acme",
		ExternalID: policyExternalID,
		// Secrets of the importer must never reach the customer's guide.
		Importer: config.Importer{Type: "http", URL: "https://import.example/", Headers: map[string]string{"Authorization": "Bearer importer-secret-token"}},
	}
}

// policyCases are the golden cases: testdata/policy/<name>.json is WriteJSON,
// <name>.txt is WriteText.
func policyCases() []struct {
	name      string
	principal string
	conn      config.Connection
} {
	base := policyConnection()

	imports := policyConnection()
	imports.BasePath = "imports/"

	kms := policyConnection()
	kms.BasePath = "imports/"
	kms.KMSKeyARN = policyKMSKeyARN

	china := policyConnection()
	china.Region = "cn-north-1"
	china.BasePath = "inbox/"

	return []struct {
		name      string
		principal string
		conn      config.Connection
	}{
		{"no-base-path", policyPrincipal, base},
		{"base-path", policyPrincipal, imports},
		{"kms", policyPrincipal, kms},
		{"china", policyPrincipalCN, china},
	}
}

func policyValidateCmd(c config.Connection) string {
	return "s3connector validate --config /etc/s3connector/config.yaml --connection " + c.Name
}

func TestPolicyGolden(t *testing.T) {
	for _, tt := range policyCases() {
		t.Run(tt.name, func(t *testing.T) {
			p := PoliciesFor(tt.principal, tt.conn)

			var js bytes.Buffer
			if err := p.WriteJSON(&js); err != nil {
				t.Fatal(err)
			}
			if !json.Valid(js.Bytes()) {
				t.Errorf("WriteJSON output is not valid JSON:\n%s", js.Bytes())
			}
			checkPolicyGolden(t, filepath.Join("testdata", "policy", tt.name+".json"), js.Bytes())

			var txt bytes.Buffer
			if err := p.WriteText(&txt, policyValidateCmd(tt.conn)); err != nil {
				t.Fatal(err)
			}
			checkPolicyGolden(t, filepath.Join("testdata", "policy", tt.name+".txt"), txt.Bytes())

			for _, out := range []string{js.String(), txt.String()} {
				if strings.Contains(out, "importer-secret-token") {
					t.Error("output contains an importer secret")
				}
				if !strings.HasSuffix(out, "}\n") && !strings.HasSuffix(out, "bucket.\n") {
					t.Errorf("output does not end with a single newline: %q", out[max(0, len(out)-20):])
				}
			}
			// The guide shows exactly the documents WriteDocument prints, so a
			// customer copying from either gets the same policy.
			docs := []string{DocumentTrust, DocumentPermissions}
			if p.KMSKeyStatement != nil {
				docs = append(docs, DocumentKMS)
			}
			for _, which := range docs {
				var doc bytes.Buffer
				if err := p.WriteDocument(&doc, which); err != nil {
					t.Fatalf("WriteDocument(%q): %v", which, err)
				}
				if !json.Valid(doc.Bytes()) {
					t.Errorf("WriteDocument(%q) is not valid JSON:\n%s", which, doc.Bytes())
				}
				if !strings.Contains(txt.String(), doc.String()) {
					t.Errorf("WriteText does not contain the %s document verbatim:\n%s", which, doc.Bytes())
				}
			}
			if !strings.Contains(txt.String(), "\n    "+policyExternalID+"\n") {
				t.Error("WriteText does not show the External ID on a line of its own")
			}
			if !strings.Contains(txt.String(), "    "+policyValidateCmd(tt.conn)+"\n") {
				t.Error("WriteText does not show the validate command")
			}
		})
	}
}

// checkPolicyGolden compares got with the golden file, or rewrites it with -update.
func checkPolicyGolden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *updateGolden {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./connector -run Policy -update to create it)", err)
	}
	if bytes.Equal(got, want) {
		return
	}
	gotLines, wantLines := strings.Split(string(got), "\n"), strings.Split(string(want), "\n")
	for i := range max(len(gotLines), len(wantLines)) {
		var g, w string
		if i < len(gotLines) {
			g = gotLines[i]
		}
		if i < len(wantLines) {
			w = wantLines[i]
		}
		if g != w {
			t.Errorf("%s differs at line %d (run with -update if the change is intended):\ngot:  %q\nwant: %q", path, i+1, g, w)
			return
		}
	}
}

func TestPolicyTrust(t *testing.T) {
	for _, tt := range policyCases() {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			if err := PoliciesFor(tt.principal, tt.conn).WriteDocument(&buf, DocumentTrust); err != nil {
				t.Fatal(err)
			}
			// Decode without our own types, as IAM would read it.
			var doc struct {
				Version   string
				Statement []map[string]any
			}
			if err := json.Unmarshal(buf.Bytes(), &doc); err != nil {
				t.Fatalf("trust policy is not valid JSON: %v\n%s", err, buf.Bytes())
			}
			if doc.Version != "2012-10-17" {
				t.Errorf("Version = %q", doc.Version)
			}
			if len(doc.Statement) != 1 {
				t.Fatalf("trust policy has %d statements, want exactly 1", len(doc.Statement))
			}
			st := doc.Statement[0]
			want := map[string]any{
				"Sid":       "AllowS3ConnectorAssumeRole",
				"Effect":    "Allow",
				"Principal": map[string]any{"AWS": tt.principal},
				"Action":    "sts:AssumeRole",
				"Condition": map[string]any{
					"StringEquals": map[string]any{"sts:ExternalId": policyExternalID},
				},
			}
			got, _ := json.Marshal(st)
			wantJSON, _ := json.Marshal(want)
			if !bytes.Equal(got, wantJSON) {
				t.Errorf("trust statement:\ngot:  %s\nwant: %s", got, wantJSON)
			}
		})
	}
}

func TestPolicyPermissionsLeastPrivilege(t *testing.T) {
	tests := []struct {
		region, partition, basePath string
	}{
		{"ap-southeast-2", "aws", ""},
		{"ap-southeast-2", "aws", "imports/"},
		{"us-east-1", "aws", "imports/acme/"},
		{"cn-north-1", "aws-cn", "inbox/"},
		{"us-gov-west-1", "aws-us-gov", ""},
	}
	for _, tt := range tests {
		t.Run(tt.region+"/"+tt.basePath, func(t *testing.T) {
			c := policyConnection()
			c.Region, c.BasePath = tt.region, tt.basePath
			var buf bytes.Buffer
			if err := PoliciesFor(policyPrincipal, c).WriteDocument(&buf, DocumentPermissions); err != nil {
				t.Fatal(err)
			}
			var doc PolicyDocument
			dec := json.NewDecoder(&buf)
			dec.DisallowUnknownFields()
			if err := dec.Decode(&doc); err != nil {
				t.Fatalf("permissions policy: %v", err)
			}

			bucketARN := "arn:" + tt.partition + ":s3:::" + c.Bucket
			objectPrefix := bucketARN + "/" + tt.basePath
			granted := map[string]bool{}
			for _, st := range doc.Statement {
				if st.Effect != "Allow" || st.Principal != nil {
					t.Errorf("statement %s: Effect %q, Principal %v: want an Allow without Principal", st.Sid, st.Effect, st.Principal)
				}
				if len(st.Resource) == 0 {
					t.Errorf("statement %s has no Resource", st.Sid)
				}
				for _, a := range st.Action {
					if strings.ContainsAny(a, "*?") {
						t.Errorf("statement %s: wildcard action %q", st.Sid, a)
					}
					granted[a] = true
				}
				if slices.Contains(st.Action, "s3:ListBucket") {
					if len(st.Action) != 1 {
						t.Errorf("statement %s mixes s3:ListBucket with %v: bucket and object actions need different resources", st.Sid, st.Action)
					}
					for _, r := range st.Resource {
						if r != bucketARN {
							t.Errorf("statement %s: bucket resource %q, want %q", st.Sid, r, bucketARN)
						}
					}
					checkPolicyListCondition(t, st, tt.basePath)
					continue
				}
				for _, r := range st.Resource {
					if !strings.HasPrefix(r, objectPrefix) {
						t.Errorf("statement %s: object resource %q is outside %s", st.Sid, r, objectPrefix)
					}
					if strings.ContainsAny(strings.TrimSuffix(r, "*"), "*?") {
						t.Errorf("statement %s: object resource %q has a wildcard before its end", st.Sid, r)
					}
				}
				if st.Condition != nil {
					t.Errorf("statement %s: unexpected condition %v", st.Sid, st.Condition)
				}
				// Copies are tagged; the files waiting in the inbox never are.
				if slices.Contains(st.Action, "s3:PutObjectTagging") {
					wantRes := StringOrList{objectPrefix + ArchiveFolder + "*", objectPrefix + ErrorFolder + "*"}
					if !slices.Equal(st.Action, StringOrList{"s3:PutObjectTagging"}) || !slices.Equal(st.Resource, wantRes) {
						t.Errorf("statement %s: %v on %v, want only s3:PutObjectTagging on %v", st.Sid, st.Action, st.Resource, wantRes)
					}
				}
			}
			// No s3:DeleteObjectVersion: nothing deletes by version (I11).
			want := []string{
				"s3:AbortMultipartUpload", "s3:DeleteObject",
				"s3:GetObject", "s3:GetObjectTagging", "s3:GetObjectVersion", "s3:GetObjectVersionTagging",
				"s3:ListBucket", "s3:PutObject", "s3:PutObjectTagging",
			}
			got := make([]string, 0, len(granted))
			for a := range granted {
				got = append(got, a)
			}
			slices.Sort(got)
			if !slices.Equal(got, want) {
				t.Errorf("granted actions %v, want exactly %v", got, want)
			}
		})
	}
}

// checkPolicyListCondition requires listing to be limited to the base path, and no
// condition at all without one (it would only deny HeadBucket).
func checkPolicyListCondition(t *testing.T, st PolicyStatement, basePath string) {
	t.Helper()
	if basePath == "" {
		if st.Condition != nil {
			t.Errorf("statement %s: condition %v without a base path", st.Sid, st.Condition)
		}
		return
	}
	prefixes := st.Condition["StringLike"]["s3:prefix"]
	if len(st.Condition) != 1 || len(st.Condition["StringLike"]) != 1 || len(prefixes) == 0 {
		t.Fatalf("statement %s: condition %v, want only StringLike s3:prefix", st.Sid, st.Condition)
	}
	for _, p := range prefixes {
		if !strings.HasPrefix(p, basePath) {
			t.Errorf("statement %s: s3:prefix %q is outside base path %q", st.Sid, p, basePath)
		}
	}
}

func TestPolicyKMS(t *testing.T) {
	c := policyConnection()
	p := PoliciesFor(policyPrincipal, c)
	if p.KMSKeyStatement != nil || p.KMSKeyARN != "" {
		t.Fatalf("KMS statement without a KMS key: %+v", p.KMSKeyStatement)
	}
	var buf bytes.Buffer
	if err := p.WriteJSON(&buf); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(buf.String(), "kms") {
		t.Errorf("WriteJSON mentions kms without a KMS key:\n%s", buf.Bytes())
	}

	c.KMSKeyARN = policyKMSKeyARN
	p = PoliciesFor(policyPrincipal, c)
	if p.KMSKeyStatement == nil {
		t.Fatal("no KMS statement with a KMS key")
	}
	st := *p.KMSKeyStatement
	if got := st.Principal["AWS"]; !slices.Equal(got, StringOrList{c.RoleARN()}) {
		t.Errorf("KMS principal %v, want the role %s", got, c.RoleARN())
	}
	if !slices.Equal(st.Resource, StringOrList{"*"}) {
		t.Errorf("KMS resource %v, want *", st.Resource)
	}
	if want := (StringOrList{"kms:Decrypt", "kms:DescribeKey", "kms:GenerateDataKey"}); !slices.Equal(st.Action, want) {
		t.Errorf("KMS actions %v, want %v", st.Action, want)
	}
}

func TestPolicyRoleARNPartition(t *testing.T) {
	c := policyConnection()
	c.Region = "cn-northwest-1"
	c.KMSKeyARN = "arn:aws-cn:kms:cn-northwest-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
	p := PoliciesFor(policyPrincipalCN, c)
	want := "arn:aws-cn:iam::123456789012:role/s3connector-acme"
	if p.RoleARN != want {
		t.Errorf("RoleARN = %q, want %q", p.RoleARN, want)
	}
	if got := p.KMSKeyStatement.Principal["AWS"]; !slices.Equal(got, StringOrList{want}) {
		t.Errorf("KMS principal %v, want %s", got, want)
	}
	if p.PolicyName != "s3connector-acme-access" {
		t.Errorf("PolicyName = %q", p.PolicyName)
	}
}

func TestPolicyWriteDocumentErrors(t *testing.T) {
	p := PoliciesFor(policyPrincipal, policyConnection())
	noID := policyConnection()
	noID.ExternalID = ""
	tests := []struct {
		name    string
		p       Policies
		which   string
		wantErr string
	}{
		{"unknown", p, "all", `unknown policy document "all": want one of trust, permissions, kms`},
		{"empty", p, "", `unknown policy document "": want one of trust, permissions, kms`},
		{"case-sensitive", p, "Trust", `unknown policy document "Trust"`},
		{"kms without key", p, "kms", "no kms_key_arn"},
		{"trust without external ID", PoliciesFor(policyPrincipal, noID), "trust", "no external_id"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			err := tt.p.WriteDocument(&buf, tt.which)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want it to contain %q", err, tt.wantErr)
			}
			if buf.Len() != 0 {
				t.Errorf("wrote %q on error", buf.Bytes())
			}
		})
	}

	// Without an External ID only the permissions policy may be printed.
	np := PoliciesFor(policyPrincipal, noID)
	if err := np.WriteDocument(new(bytes.Buffer), DocumentPermissions); err != nil {
		t.Errorf("permissions without external ID: %v", err)
	}
	if err := np.WriteJSON(new(bytes.Buffer)); err == nil {
		t.Error("WriteJSON without external ID: no error")
	}
	if err := np.WriteText(new(bytes.Buffer), "s3connector validate"); err == nil {
		t.Error("WriteText without external ID: no error")
	}
}

type policyFailingWriter struct{}

var errPolicyWrite = errors.New("disk full")

func (policyFailingWriter) Write([]byte) (int, error) { return 0, errPolicyWrite }

func TestPolicyWriteErrors(t *testing.T) {
	c := policyConnection()
	c.KMSKeyARN = policyKMSKeyARN
	p := PoliciesFor(policyPrincipal, c)
	writes := map[string]func() error{
		"json":        func() error { return p.WriteJSON(policyFailingWriter{}) },
		"text":        func() error { return p.WriteText(policyFailingWriter{}, "s3connector validate") },
		"trust":       func() error { return p.WriteDocument(policyFailingWriter{}, DocumentTrust) },
		"permissions": func() error { return p.WriteDocument(policyFailingWriter{}, DocumentPermissions) },
		"kms":         func() error { return p.WriteDocument(policyFailingWriter{}, DocumentKMS) },
	}
	for name, write := range writes {
		if err := write(); !errors.Is(err, errPolicyWrite) {
			t.Errorf("%s: err = %v, want %v", name, err, errPolicyWrite)
		}
	}
}

func TestPolicyPartition(t *testing.T) {
	tests := []struct{ region, want string }{
		{"us-east-1", "aws"},
		{"ap-southeast-2", "aws"},
		{"eu-central-1", "aws"},
		{"", "aws"},
		{"cn-north-1", "aws-cn"},
		{"cn-northwest-1", "aws-cn"},
		{"us-gov-west-1", "aws-us-gov"},
		{"us-gov-east-1", "aws-us-gov"},
		{"us-iso-east-1", "aws-iso"},
		{"us-isob-east-1", "aws-iso-b"},
		{"us-isof-south-1", "aws-iso-f"},
		{"eu-isoe-west-1", "aws-iso-e"},
		{"eusc-de-east-1", "aws-eusc"},
	}
	for _, tt := range tests {
		if got := config.Partition(tt.region); got != tt.want {
			t.Errorf("Partition(%q) = %q, want %q", tt.region, got, tt.want)
		}
	}
	if got := PermissionsPolicy("b", "").Statement[0].Resource; !slices.Equal(got, StringOrList{"arn:aws:s3:::b"}) {
		t.Errorf("PermissionsPolicy is not in the aws partition: %v", got)
	}
}

func TestPolicyStringOrList(t *testing.T) {
	tests := []struct {
		in   StringOrList
		want string
	}{
		{nil, `[]`},
		{StringOrList{}, `[]`},
		{StringOrList{"s3:GetObject"}, `"s3:GetObject"`},
		{StringOrList{"s3:GetObject", "s3:PutObject"}, `["s3:GetObject","s3:PutObject"]`},
	}
	for _, tt := range tests {
		got, err := json.Marshal(tt.in)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != tt.want {
			t.Errorf("Marshal(%#v) = %s, want %s", tt.in, got, tt.want)
		}
		if len(tt.in) == 0 {
			continue
		}
		var back StringOrList
		if err := json.Unmarshal(got, &back); err != nil || !slices.Equal(back, tt.in) {
			t.Errorf("Unmarshal(%s) = %v, %v; want %v", got, back, err, tt.in)
		}
	}
	var s StringOrList
	if err := json.Unmarshal([]byte(`{"a":1}`), &s); err == nil {
		t.Error("Unmarshal of an object: no error")
	}
}

// TestPolicyPermissionsSufficeOnMinIO loads the generated permissions policy
// as the only policy of the MinIO user whose assumed role plays the
// customer's role (I10): validation and a whole move -- read pinned to the
// ETag, copy of exactly the imported version (?versionId= on a versioned
// bucket) keeping metadata and tags, delete conditional on the ETag and
// without a version id, and the abort, by its recorded id, of the upload a
// move killed mid multipart copy left -- work under it alone, on an
// unversioned and on a versioned bucket, and nothing outside the bucket's
// base path is reachable, not even the names of uploads in progress.
// MinIO enforces the resource scoping and the object actions, but not the
// tagging actions, and it takes s3:GetObject for a version-pinned copy source
// where AWS wants s3:GetObjectVersion (TestValidateSendsTheMoveRequests says
// what it does not check and asserts the requests instead).
func TestPolicyPermissionsSufficeOnMinIO(t *testing.T) {
	srv := needMinIO(t)
	ctx := context.Background()
	const other = "policy-other-bucket"
	if err := srv.CreateBucket(ctx, other); err != nil {
		t.Fatal(err)
	}
	if err := srv.Put(ctx, other, "imports/theirs.csv", []byte("not yours\n")); err != nil {
		t.Fatal(err)
	}
	const tags = "source=guardduty&scan=clean"
	tests := []struct {
		name, bucket, basePath string
		versioned              bool
	}{
		{"base-path", "policy-base-path", "imports/", false},
		{"whole-bucket", "policy-whole-bucket", "", false},
		{"versioned-base-path", "policy-versioned-base-path", "imports/", true},
		{"versioned-whole-bucket", "policy-versioned-whole-bucket", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := srv.CreateBucket(ctx, tt.bucket); err != nil {
				t.Fatal(err)
			}
			if tt.versioned {
				enableVersioning(t, srv, tt.bucket)
			}
			src, dst := tt.basePath+"a.csv", tt.basePath+ArchiveFolder+"a.csv"
			// On the versioned bucket "monday" stays behind as an older
			// version of the file: it must never come back.
			for _, body := range []string{"monday\n", "tuesday\n"} {
				if _, err := srv.Root().PutObject(ctx, &s3.PutObjectInput{
					Bucket: aws.String(tt.bucket), Key: aws.String(src), Body: strings.NewReader(body),
					ContentType: aws.String("text/csv"), Metadata: map[string]string{"origin": "sftp"}, Tagging: aws.String(tags),
				}); err != nil {
					t.Fatal(err)
				}
			}
			for _, k := range []string{"outside/b.csv", tt.basePath + "untagged.csv"} {
				if err := srv.Put(ctx, tt.bucket, k, []byte("content of "+k+"\n")); err != nil {
					t.Fatal(err)
				}
			}
			c := config.Connection{
				Name:        tt.name,
				Status:      config.StatusActive,
				AccountID:   "123456789012",
				Bucket:      tt.bucket,
				Region:      miniotest.Region,
				BasePath:    tt.basePath,
				RoleName:    config.RoleNamePrefix + tt.name,
				ExternalID:  policyExternalID,
				Workers:     2,
				Endpoint:    srv.Endpoint,
				STSEndpoint: srv.Endpoint,
			}
			var doc bytes.Buffer
			if err := PoliciesFor(policyPrincipal, c).WriteDocument(&doc, DocumentPermissions); err != nil {
				t.Fatal(err)
			}
			user, secret := "policy-"+tt.name, "policy-secret-"+tt.name
			if err := srv.AddUser(ctx, user, secret, doc.Bytes()); err != nil {
				t.Fatalf("MinIO rejected the generated policy: %v\n%s", err, doc.Bytes())
			}
			platform := aws.Config{
				Region:      miniotest.Region,
				Credentials: credentials.NewStaticCredentialsProvider(user, secret, ""),
				HTTPClient:  awshttp.NewBuildableClient(),
			}
			conn, err := New(platform, policyPrincipal, c)
			if err != nil {
				t.Fatal(err)
			}
			report, err := conn.Validate(ctx)
			if err != nil {
				t.Fatalf("Validate under the generated policy: %v", err)
			}
			// a.csv and untagged.csv, and outside/b.csv without a base path.
			want := "Connection successful. Found 2 files in bucket."
			if tt.basePath == "" {
				want = "Connection successful. Found 3 files in bucket."
			}
			if got := report.SuccessLine(); got != want {
				t.Errorf("SuccessLine = %q, want %q", got, want)
			}

			// The move, as archive.Move makes it.
			client := conn.S3()
			got, err := client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(tt.bucket), Key: aws.String(src)})
			if err != nil {
				t.Fatalf("get %s: %v", src, err)
			}
			body, err := io.ReadAll(got.Body)
			got.Body.Close()
			if err != nil || string(body) != "tuesday\n" {
				t.Fatalf("read %s: %q, %v", src, body, err)
			}
			etag, version := aws.ToString(got.ETag), aws.ToString(got.VersionId)
			if tt.versioned != (version != "") {
				t.Fatalf("version id %q on a bucket with versioning %v", version, tt.versioned)
			}
			cs := copySource(tt.bucket, src, version)
			if tt.versioned && !strings.Contains(cs, "?versionId="+version) {
				t.Fatalf("copy source %q is not pinned to version %s", cs, version)
			}
			if _, err := client.CopyObject(ctx, &s3.CopyObjectInput{
				Bucket:            aws.String(tt.bucket),
				Key:               aws.String(dst),
				CopySource:        aws.String(cs),
				CopySourceIfMatch: aws.String(etag),
				IfNoneMatch:       aws.String("*"),
				MetadataDirective: types.MetadataDirectiveCopy,
				TaggingDirective:  types.TaggingDirectiveCopy,
			}); err != nil {
				t.Fatalf("copy %s to %s: %v", cs, dst, err)
			}
			if _, err := client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(tt.bucket), Key: aws.String(src), IfMatch: aws.String(etag)}); err != nil {
				t.Fatalf("delete %s: %v", src, err)
			}

			root := srv.Root()
			archived, err := root.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(tt.bucket), Key: aws.String(dst)})
			if err != nil {
				t.Fatalf("archived copy: %v", err)
			}
			abody, _ := io.ReadAll(archived.Body)
			archived.Body.Close()
			if string(abody) != "tuesday\n" || aws.ToString(archived.ContentType) != "text/csv" || archived.Metadata["origin"] != "sftp" {
				t.Errorf("archived copy %q, type %q, metadata %v: want the imported version with its metadata", abody, aws.ToString(archived.ContentType), archived.Metadata)
			}
			tagOut, err := root.GetObjectTagging(ctx, &s3.GetObjectTaggingInput{Bucket: aws.String(tt.bucket), Key: aws.String(dst)})
			if err != nil || len(tagOut.TagSet) != 2 {
				t.Errorf("archived copy tags %+v, %v: want the original's two", tagOut, err)
			}
			if _, err := root.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(tt.bucket), Key: aws.String(src)}); !errors.Is(Classify(err, miniotest.Region), ErrNotFound) {
				t.Errorf("%s is still in the inbox: %v", src, err)
			}
			if tt.versioned {
				// I11: both versions stay, hidden by one delete marker.
				vs, err := root.ListObjectVersions(ctx, &s3.ListObjectVersionsInput{Bucket: aws.String(tt.bucket), Prefix: aws.String(src)})
				if err != nil {
					t.Fatal(err)
				}
				n := 0
				for _, v := range vs.Versions {
					if aws.ToString(v.Key) == src {
						n++
					}
				}
				if n != 2 || len(vs.DeleteMarkers) != 1 || !aws.ToBool(vs.DeleteMarkers[0].IsLatest) {
					t.Errorf("%s: %d versions, delete markers %+v; want both versions kept behind one current delete marker", src, n, vs.DeleteMarkers)
				}
			}

			// A move killed mid multipart copy left an upload at its
			// destination, whose id the file's state record holds; the next
			// move aborts it by that id (archive/uploads.go), as the role.
			// Listing uploads is not granted anywhere: no condition key
			// could limit it to the base path (I10).
			bigDst := tt.basePath + ArchiveFolder + "big.bin"
			up, err := client.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String(tt.bucket), Key: aws.String(bigDst)})
			if err != nil {
				t.Fatalf("start a multipart copy to %s: %v", bigDst, err)
			}
			if _, err := client.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{Bucket: aws.String(tt.bucket), Key: aws.String(bigDst), UploadId: up.UploadId}); err != nil {
				t.Fatalf("abort the upload at %s by its id: %v", bigDst, err)
			}
			theirs, err := srv.Root().CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String(tt.bucket), Key: aws.String("outside/upload.bin")})
			if err != nil {
				t.Fatal(err)
			}

			denied := map[string]func() error{
				"list the bucket's multipart uploads": func() error {
					_, err := client.ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{Bucket: aws.String(tt.bucket)})
					return err
				},
				"list the multipart uploads under the base path": func() error {
					_, err := client.ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{Bucket: aws.String(tt.bucket), Prefix: aws.String(bigDst)})
					return err
				},
				"list other bucket": func() error {
					_, err := client.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String(other)})
					return err
				},
				"get from other bucket": func() error {
					_, err := client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(other), Key: aws.String("imports/theirs.csv")})
					return err
				},
				"put into other bucket": func() error {
					_, err := client.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(other), Key: aws.String("imports/x.csv"), Body: strings.NewReader("x")})
					return err
				},
				"copy from other bucket": func() error {
					_, err := client.CopyObject(ctx, &s3.CopyObjectInput{Bucket: aws.String(tt.bucket), Key: aws.String(tt.basePath + ArchiveFolder + "theirs.csv"), CopySource: aws.String(other + "/imports/theirs.csv")})
					return err
				},
				// Only copies in archive/ and error/ get tags.
				"tag a file in the inbox": func() error {
					_, err := client.PutObjectTagging(ctx, &s3.PutObjectTaggingInput{Bucket: aws.String(tt.bucket), Key: aws.String(tt.basePath + "untagged.csv"),
						Tagging: &types.Tagging{TagSet: []types.Tag{{Key: aws.String("k"), Value: aws.String("v")}}}})
					return err
				},
			}
			if tt.basePath != "" {
				denied["list outside base path"] = func() error {
					_, err := client.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String(tt.bucket), Prefix: aws.String("outside/")})
					return err
				}
				denied["list whole bucket"] = func() error {
					_, err := client.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String(tt.bucket)})
					return err
				}
				denied["get outside base path"] = func() error {
					_, err := client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(tt.bucket), Key: aws.String("outside/b.csv")})
					return err
				}
				denied["put outside base path"] = func() error {
					_, err := client.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(tt.bucket), Key: aws.String("outside/new.csv"), Body: strings.NewReader("x")})
					return err
				}
				denied["delete outside base path"] = func() error {
					_, err := client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(tt.bucket), Key: aws.String("outside/b.csv")})
					return err
				}
				denied["copy out of base path"] = func() error {
					_, err := client.CopyObject(ctx, &s3.CopyObjectInput{Bucket: aws.String(tt.bucket), Key: aws.String("outside/copy.csv"), CopySource: aws.String(tt.bucket + "/" + dst)})
					return err
				}
				denied["copy into base path"] = func() error {
					_, err := client.CopyObject(ctx, &s3.CopyObjectInput{Bucket: aws.String(tt.bucket), Key: aws.String(tt.basePath + ArchiveFolder + "b.csv"), CopySource: aws.String(tt.bucket + "/outside/b.csv")})
					return err
				}
				denied["abort an upload outside base path"] = func() error {
					_, err := client.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{Bucket: aws.String(tt.bucket), Key: aws.String("outside/upload.bin"), UploadId: theirs.UploadId})
					return err
				}
				denied["tag outside base path"] = func() error {
					_, err := client.PutObjectTagging(ctx, &s3.PutObjectTaggingInput{Bucket: aws.String(tt.bucket), Key: aws.String("outside/b.csv"),
						Tagging: &types.Tagging{TagSet: []types.Tag{{Key: aws.String("k"), Value: aws.String("v")}}}})
					return err
				}
			}
			for name, call := range denied {
				if err := Classify(call(), miniotest.Region); !errors.Is(err, ErrAccessDenied) {
					t.Errorf("%s: err = %v, want access denied", name, err)
				}
			}
		})
	}
}

// TestPolicyPlatform: the platform principal's own policy allows only
// sts:AssumeRole, only on roles named with the prefix (any account, the
// given partition), and only when an External ID is sent. Golden files:
// testdata/policy/platform-<partition>.txt.
//
// MinIO does not evaluate the caller's identity policy for AssumeRole (its
// STS hands any user a session scoped by that user's own policy), so this
// policy is checked as a document, not on a server.
func TestPolicyPlatform(t *testing.T) {
	for _, partition := range []string{"aws", "aws-cn", "aws-us-gov"} {
		t.Run(partition, func(t *testing.T) {
			var b bytes.Buffer
			if err := WritePlatformPolicy(&b, partition); err != nil {
				t.Fatal(err)
			}
			checkPolicyGolden(t, filepath.Join("testdata", "policy", "platform-"+partition+".txt"), b.Bytes())

			var doc PolicyDocument
			dec := json.NewDecoder(&b)
			dec.DisallowUnknownFields()
			if err := dec.Decode(&doc); err != nil {
				t.Fatal(err)
			}
			if doc.Version != PolicyVersion || len(doc.Statement) != 1 {
				t.Fatalf("document %+v: want one statement", doc)
			}
			st := doc.Statement[0]
			if st.Effect != "Allow" || len(st.Principal) != 0 {
				t.Errorf("statement %+v: want an identity-policy Allow with no Principal", st)
			}
			if !slices.Equal(st.Action, StringOrList{"sts:AssumeRole"}) {
				t.Errorf("actions %q, want only sts:AssumeRole", st.Action)
			}
			want := "arn:" + partition + ":iam::*:role/" + config.RoleNamePrefix + "*"
			if !slices.Equal(st.Resource, StringOrList{want}) {
				t.Errorf("resources %q, want only %s", st.Resource, want)
			}
			if got := st.Condition; len(got) != 1 || len(got["Null"]) != 1 || !slices.Equal(got["Null"]["sts:ExternalId"], StringOrList{"false"}) {
				t.Errorf("condition %v, want only Null sts:ExternalId false (an External ID must be present)", got)
			}
			// A connection's default role name is covered, in any account;
			// another name is not (IAM's "*" matches like path.Match here:
			// no "/" in an account ID or a role name).
			for role, covered := range map[string]bool{
				config.RoleNamePrefix + "acme": true,
				"someone-elses-role":           false,
			} {
				arn := "arn:" + partition + ":iam::123456789012:role/" + role
				if ok, _ := path.Match(want, arn); ok != covered {
					t.Errorf("%s covered by %s: %v, want %v", arn, want, ok, covered)
				}
			}
		})
	}
	if got := PlatformPolicy(""); got.Statement[0].Resource[0] != "arn:aws:iam::*:role/"+config.RoleNamePrefix+"*" {
		t.Errorf("default partition resource %q, want aws", got.Statement[0].Resource[0])
	}
}

// Values with "<", ">" or "&" print as written, not as \u003c and the
// like (HTML escaping has no place in an IAM policy), in what the CLI
// prints (writeIndented).
func TestStringOrListDoesNotEscapeHTML(t *testing.T) {
	for _, v := range []StringOrList{{"a<b>&c"}, {"x&y", "<z>"}} {
		var b strings.Builder
		if err := writeIndented(&b, PolicyStatement{Effect: "Allow", Action: v}); err != nil {
			t.Fatal(err)
		}
		if strings.Contains(b.String(), `\u00`) || !strings.Contains(b.String(), v[0]) {
			t.Errorf("%v printed as %s", v, b.String())
		}
	}
}
