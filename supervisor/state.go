package supervisor

import (
	"fmt"
	"time"

	"github.com/s3connector/s3connector/config"
	"github.com/s3connector/s3connector/ingest"
)

// Phases of a supervised connection.
const (
	// PhaseValidating: the connection is being validated (first try, or
	// since a reload changed it).
	PhaseValidating = "validating"
	// PhaseFailing: validation (or building its importer, or scheduling)
	// failed; Reason says why. It is retried with backoff and none of the
	// connection's files is touched meanwhile.
	PhaseFailing = "failing"
	// PhaseScheduled: validated and on its schedule (Running says whether
	// a run is going now).
	PhaseScheduled = "scheduled"
)

// State is one supervised connection as seen now: what /status, /readyz
// and an admin API show.
type State struct {
	// Connection is the configuration being supervised. Its ExternalID is
	// a secret for anyone but the connection's owner: never show it in
	// shared output.
	Connection config.Connection
	// Phase is PhaseValidating, PhaseFailing or PhaseScheduled, since Since.
	Phase string
	Since time.Time
	// Reason is why the connection is failing ("" otherwise): the failure
	// class's headline and the error, e.g. "Access denied when assuming
	// the IAM role: assume role ...". It may name role ARNs and account ids.
	Reason string
	// Running: a run of the connection is going now.
	Running bool
	// NextRun is the next scheduled run; zero when not scheduled.
	NextRun time.Time
	// LastRun is the last finished run; nil when none has finished since
	// the connection was (re)scheduled.
	LastRun *Run
}

// Name is the connection's name.
func (s State) Name() string { return s.Connection.Name }

// Ready reports whether the connection passed validation and is scheduled.
func (s State) Ready() bool { return s.Phase == PhaseScheduled }

// Run is what one finished run did.
type Run struct {
	RunID    string
	Started  time.Time
	Duration time.Duration
	// OK: the whole inbox was listed and no file was left for retry.
	OK bool
	// Listed, Archived, Errored and Retry count the files taken from the
	// listing, moved to archive/ and error/, and left in the inbox by
	// transient trouble.
	Listed, Archived, Errored, Retry int
	// Skipped files cannot be read at all (SSE-C, archive storage class);
	// Blocked were imported but their move is denied.
	Skipped, Blocked int
	Bytes            int64
	// Waiting is how many listed files are still in the inbox (not
	// meaningful when LeaseHeld is set: nothing was listed).
	Waiting int
	// Error is why the run stopped early ("" if it did not, or LeaseHeld).
	Error string
	// LeaseHeld says why the run did nothing: another process holds the
	// connection's lease and does the work (not a failure).
	LeaseHeld string
	// Problems are connection-level troubles the run found that do not
	// fail it: files that cannot be read, moves that are denied.
	Problems []string
}

func newRun(s ingest.Summary) *Run {
	r := &Run{RunID: s.RunID, Started: s.Started, Duration: s.Duration, OK: s.OK(),
		Listed: s.Listed, Archived: s.Archived, Errored: s.Errored, Retry: s.Retry,
		Skipped: s.Skipped, Blocked: s.Blocked, Bytes: s.Bytes,
		Waiting:  max(s.Listed-s.Archived-s.Errored-s.Vanished, 0),
		Problems: problems(s)}
	switch {
	case s.LeaseHeld():
		r.LeaseHeld = s.Err.Error()
	case s.Err != nil:
		r.Error = s.Err.Error()
	}
	return r
}

// problems describes what a run found that needs the customer's attention
// without failing the run.
func problems(s ingest.Summary) []string {
	var out []string
	if s.Blocked > 0 {
		out = append(out, fmt.Sprintf("%d files were imported but moving them is denied: check for a bucket policy that denies s3:DeleteObject or s3:PutObject, "+
			"the role's permissions policy (regenerate it with `s3connector policy`: it needs the tagging and version actions too) and any SCP or permissions boundary "+
			"(Object Lock does not block it: the delete names no version and only adds a delete marker); "+
			"they are not imported again, their move is retried; the daemon log names each file", s.Blocked))
	}
	if s.Skipped > 0 {
		out = append(out, fmt.Sprintf("%d files cannot be read: encrypted with a customer-provided key (SSE-C) or in an archive storage class "+
			"(S3 Glacier Flexible Retrieval, Deep Archive); they stay in the inbox: restore them or re-upload them with SSE-S3 or SSE-KMS; the daemon log names each file", s.Skipped))
	}
	return out
}
