package supervisor

import (
	"strings"
	"testing"

	"github.com/s3connector/s3connector/ingest"
)

// /status names what a run found that needs the customer without failing
// the run: blocked moves with the causes to check, unreadable files.
func TestProblemsNameTheCauses(t *testing.T) {
	if p := problems(ingest.Summary{Archived: 3}); len(p) != 0 {
		t.Errorf("a clean run has problems %q", p)
	}
	p := problems(ingest.Summary{Blocked: 2, Skipped: 1})
	if len(p) != 2 {
		t.Fatalf("problems %q, want one for blocked and one for skipped files", p)
	}
	for _, want := range []string{"2 files were imported but moving them is denied", "bucket policy", "s3connector policy", "SCP or permissions boundary", "Object Lock does not block it"} {
		if !strings.Contains(p[0], want) {
			t.Errorf("blocked problem %q lacks %q", p[0], want)
		}
	}
	for _, want := range []string{"1 files cannot be read", "SSE-C", "Glacier", "restore"} {
		if !strings.Contains(p[1], want) {
			t.Errorf("skipped problem %q lacks %q", p[1], want)
		}
	}
}
