package miniotest

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go"
)

// TestHarness checks what the other packages' tests rely on: a non-root
// user's policy scopes the temporary credentials STS hands out.
func TestHarness(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	srv, err := Start(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()

	for _, b := range []string{"mine", "theirs"} {
		if err := srv.CreateBucket(ctx, b); err != nil {
			t.Fatal(err)
		}
		if err := srv.Put(ctx, b, "k.txt", []byte("hello")); err != nil {
			t.Fatal(err)
		}
	}
	policy := `{"Version":"2012-10-17","Statement":[
	 {"Effect":"Allow","Action":["s3:ListBucket"],"Resource":["arn:aws:s3:::mine"]},
	 {"Effect":"Allow","Action":["s3:GetObject"],"Resource":["arn:aws:s3:::mine/*"]}]}`
	if err := srv.AddUser(ctx, "reader", "reader-secret", []byte(policy)); err != nil {
		t.Fatal(err)
	}

	stsClient := sts.New(sts.Options{
		Region:       Region,
		BaseEndpoint: aws.String(srv.Endpoint),
		Credentials:  credentials.NewStaticCredentialsProvider("reader", "reader-secret", ""),
		HTTPClient:   awshttp.NewBuildableClient(),
	})
	out, err := stsClient.AssumeRole(ctx, &sts.AssumeRoleInput{
		RoleArn:         aws.String("arn:aws:iam::123456789012:role/ignored-by-minio"),
		RoleSessionName: aws.String("harness"),
		ExternalId:      aws.String("ignored-by-minio-0001"),
	})
	if err != nil {
		t.Fatalf("AssumeRole: %v", err)
	}
	c := out.Credentials
	client := s3.New(s3.Options{
		Region:       Region,
		BaseEndpoint: aws.String(srv.Endpoint),
		UsePathStyle: true,
		Credentials:  credentials.NewStaticCredentialsProvider(*c.AccessKeyId, *c.SecretAccessKey, *c.SessionToken),
		HTTPClient:   awshttp.NewBuildableClient(),
	})
	if _, err := client.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String("mine")}); err != nil {
		t.Errorf("list own bucket: %v", err)
	}
	obj, err := client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("mine"), Key: aws.String("k.txt")})
	if err != nil {
		t.Errorf("get own object: %v", err)
	} else {
		obj.Body.Close()
	}
	_, err = client.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("mine"), Key: aws.String("new.txt"), Body: strings.NewReader("x")})
	assertAccessDenied(t, "put without s3:PutObject", err)
	_, err = client.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String("theirs")})
	assertAccessDenied(t, "list another bucket", err)

	keys, err := srv.Keys(ctx, "mine", "")
	if err != nil || len(keys) != 1 || keys[0] != "k.txt" {
		t.Errorf("Keys = %q, %v; want [k.txt]", keys, err)
	}
}

func assertAccessDenied(t *testing.T, what string, err error) {
	t.Helper()
	var apiErr smithy.APIError
	if !errors.As(err, &apiErr) || apiErr.ErrorCode() != "AccessDenied" {
		t.Errorf("%s: err = %v, want AccessDenied", what, err)
	}
}
