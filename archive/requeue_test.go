package archive

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/s3connector/s3connector/connector/miniotest"
)

// A file of error/ goes back to the inbox under its report's key, byte
// for byte, and leaves error/ (file and report) only once the copy exists;
// it never replaces a file waiting under that key, and nothing but this
// connection's error files can be requeued, whatever a report says.
func TestRequeue(t *testing.T) {
	srv := miniotest.Shared(t)
	client := srv.Root()
	bucket := newBucket(t, srv)
	m := &Mover{S3: client, Bucket: bucket, BasePath: "in/"}
	toError := func(rel string, body []byte) Result {
		t.Helper()
		src := putObject(t, client, bucket, "in/", rel, body, s3.PutObjectInput{ContentType: aws.String("text/csv")})
		res, err := m.Move(t.Context(), src, Error, &Report{ReasonCode: "rejected", Reason: "bad row", Key: src.Key})
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	body := randomBytes(t, 4000)
	res := toError("orders/a.csv", body)
	second := toError("b.csv", []byte("b"))
	// The daemon's own state under error/.s3connector/ is not an error file.
	putObject(t, client, bucket, "in/", "error/.s3connector/attempts/x.json", []byte("{}"), s3.PutObjectInput{})

	files, err := m.ListErrors(t.Context(), client, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 2 || files[0].Key != second.Key || files[1].Key != res.Key || files[1].Report == nil || files[1].Report.Reason != "bad row" {
		t.Fatalf("ListErrors = %+v, want the two error files with their reports", files)
	}

	target, err := m.Requeue(t.Context(), client, res.Key)
	if err != nil || target != "in/orders/a.csv" {
		t.Fatalf("Requeue = %q, %v", target, err)
	}
	got, out := readObject(t, client, bucket, target)
	if !bytes.Equal(got, body) || aws.ToString(out.ContentType) != "text/csv" {
		t.Errorf("requeued file differs: %d bytes, content type %q", len(got), aws.ToString(out.ContentType))
	}
	if exists(t, client, bucket, res.Key) || exists(t, client, bucket, res.Report) {
		t.Error("error file or its report still in error/")
	}

	// A file waiting under the original key is never replaced.
	putObject(t, client, bucket, "in/", "b.csv", []byte("newer upload"), s3.PutObjectInput{})
	if _, err := m.Requeue(t.Context(), client, second.Key); !errors.Is(err, ErrInboxTaken) {
		t.Errorf("requeue over a waiting file: %v, want ErrInboxTaken", err)
	}
	if got, _ := readObject(t, client, bucket, "in/b.csv"); string(got) != "newer upload" || !exists(t, client, bucket, second.Key) {
		t.Error("the waiting file was replaced or the error file lost")
	}

	// Only error files of this connection.
	for _, key := range []string{second.Report, "in/error/.s3connector/attempts/x.json", "in/b.csv", "in/archive/x.csv", "other/error/x.csv", "in/error/"} {
		if _, err := m.Requeue(t.Context(), client, key); !errors.Is(err, ErrNotAnErrorFile) {
			t.Errorf("Requeue(%q) = %v, want ErrNotAnErrorFile", key, err)
		}
	}
	// A report is the customer's to edit: one naming a key outside the
	// inbox does not move the file there.
	bad := toError("c.csv", []byte("c"))
	for _, target := range []string{"other/c.csv", "in/archive/c.csv", "in/error/c.csv"} {
		rep, _ := json.Marshal(Report{Key: target})
		putObject(t, client, bucket, "", bad.Report, rep, s3.PutObjectInput{})
		if _, err := m.Requeue(t.Context(), client, bad.Key); err == nil || !strings.Contains(err.Error(), "not in this connection's inbox") {
			t.Errorf("report naming %q: %v", target, err)
		}
	}
	// Without its report the original key is unknown.
	if _, err := client.DeleteObject(t.Context(), &s3.DeleteObjectInput{Bucket: &bucket, Key: aws.String(bad.Report)}); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Requeue(t.Context(), client, bad.Key); !errors.Is(err, ErrNoReport) {
		t.Errorf("requeue without a report: %v, want ErrNoReport", err)
	}
}
