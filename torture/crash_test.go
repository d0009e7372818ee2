//go:build torture

package torture

import (
	"fmt"
	"math/rand/v2"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/s3connector/s3connector/connector"
)

// Scenario 1, crash: SIGKILL the binary at random moments, 100 times,
// alternating at random between `run --once` and the daemon (`run` on a
// 1 s schedule), with new files arriving whenever the inbox runs low and,
// half-way, new versions of files already archived; then a daemon that is
// left alone finishes. Every version must end archived exactly once under
// its own name, byte for byte, and imported (I1, I2, I5).
//
// lease_ttl is 1 s: a killed holder blocks the connection for lease_ttl
// plus min(30s, lease_ttl), 2 s. A `run --once` is started only once that
// has passed (else it would just be skipped); a daemon is started at once
// and retries every second. Kills land anywhere: during start-up and
// validation, while waiting for the lease, mid-run; the line says how many
// were mid-run (the process held the lease when it died).
//
// Files above multipartAbove (a test-only knob, connector/testknobs.go;
// about half the small files and every large one) are copied part by part,
// so kills land in multipart copies too: such a kill leaves an incomplete
// upload at the file's destination. Its id is in the file's state record
// (the daemon logs "multipart upload recorded" once it is), and the next
// move of the file must abort it (archive/uploads.go). After every kill
// the bucket's uploads are listed; every upload seen whose id was recorded
// must be gone at the end (the checker), and at least one must have been
// seen, or the check proved nothing. An upload whose id no process
// recorded -- the kill came between CreateMultipartUpload and the record's
// write -- is one no move can know of; it is counted, and left to the
// lifecycle rule the README recommends.
func TestCrash(t *testing.T) {
	t.Parallel()
	const (
		kills          = 100
		multipartAbove = "32KiB"
	)
	f := NewFixture(t, FixtureOptions{})
	f.ExtraEnv = []string{connector.EnvTestMultipartThreshold + "=" + multipartAbove}
	rnd := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))
	seeded := f.Seed(SeedOptions{Files: 2000, Prefix: "batch/", LargeEvery: 100})
	files, bytes := seeded.Files, seeded.Bytes
	addr := FreeAddr(t)
	cfg := f.Config(ConfigOptions{Listen: addr, LeaseTTL: time.Second, Schedule: "@every 1s", Workers: 4})
	start := time.Now()

	var (
		killed, midRun, onceKills, daemonKills, finished, reuploaded int
		free                                                         time.Time // the lease is free from then on
		// leftBy: the multipart uploads seen after a kill, by upload id
		// (which kill, for a failure's message), and how many kills left
		// at least one new one.
		leftBy         = map[string]string{}
		leftAt         = map[string]time.Time{} // when that kill was sent
		killsMidUpload int
	)
	for round := 0; killed < kills; round++ {
		if round > 10*kills {
			t.Fatalf("only %d kills in %d rounds", killed, round)
		}
		if left := len(f.Inbox()); left < 200 {
			s := f.Seed(SeedOptions{Files: 300, Prefix: fmt.Sprintf("late-%d/", round), LargeEvery: 100})
			files, bytes = files+s.Files, bytes+s.Bytes
		}
		if killed == kills/2 && reuploaded == 0 {
			reuploaded = reuploadArchived(f, 40)
		}
		daemon := rnd.IntN(2) == 0
		var p *Proc
		if daemon {
			p = f.StartDaemon(cfg, addr).Proc
		} else {
			if wait := time.Until(free); wait > 0 {
				time.Sleep(wait)
			}
			p = f.Start("run", "--once", "--config", cfg)
		}
		// A random moment: up to 1.1 s into the work (after the lease is
		// free), and one kill in five within the first 300 ms of the
		// process's life (start-up, validation, waiting for the lease).
		after := time.Duration(50+rnd.IntN(1050)) * time.Millisecond
		if rnd.IntN(5) == 0 {
			after = time.Duration(rnd.IntN(300)) * time.Millisecond
		} else if daemon {
			after += max(0, time.Until(free))
		}
		select {
		case <-p.Done():
			finished++
			if strings.Contains(p.Output(), "is being processed by") {
				free = time.Now().Add(500 * time.Millisecond)
			}
			continue
		case <-time.After(after):
		}
		holder := p.HoldsLease()
		if !p.Kill() {
			finished++
			continue
		}
		killedAt := time.Now()
		killed++
		if daemon {
			daemonKills++
		} else {
			onceKills++
		}
		if holder {
			midRun++
			free = time.Now().Add(2*time.Second + 100*time.Millisecond)
		}
		fresh := false
		for _, u := range f.Uploads() {
			if id := aws.ToString(u.UploadId); leftBy[id] == "" {
				_, err := f.Srv.Root().HeadObject(t.Context(), &s3.HeadObjectInput{Bucket: aws.String(f.Bucket), Key: aws.String(sourceOf(aws.ToString(u.Key)))})
				leftBy[id] = fmt.Sprintf("first seen after kill %d (%v, pid %d; its file in the inbox then: %v)", killed, p.Args[:min(len(p.Args), 2)], p.cmd.Process.Pid, err == nil)
				leftAt[id] = killedAt
				fresh = true
			}
		}
		if fresh {
			killsMidUpload++
		}
	}
	t.Logf("%d kills (%d mid-run) in %s; finishing", killed, midRun, time.Since(start).Round(time.Second))

	// Finish: one daemon, left alone.
	d := f.StartDaemon(cfg, addr)
	f.WaitInboxEmpty(3 * time.Minute)
	d.Signal(syscall.SIGTERM)
	if err, ok := d.Wait(30 * time.Second); !ok || err != nil {
		t.Errorf("the finishing daemon did not stop cleanly on SIGTERM: %v", err)
	}
	recordedIDs := f.RecordedUploads()
	for _, u := range f.Uploads() {
		seen := leftBy[aws.ToString(u.UploadId)]
		if seen == "" {
			seen = "never seen after a kill (left by a process that went on)"
		}
		seen += fmt.Sprintf("; recorded: %v", recordedIDs[aws.ToString(u.UploadId)])
		_, perr := f.Srv.Root().ListParts(t.Context(), &s3.ListPartsInput{Bucket: aws.String(f.Bucket), Key: u.Key, UploadId: u.UploadId})
		t.Logf("upload %s at %s, initiated %s, %s; ListParts: %v", aws.ToString(u.UploadId), aws.ToString(u.Key), aws.ToTime(u.Initiated).Format(time.StampMilli), seen, perr)
	}
	// An upload left that no process recorded must be one a kill cut off
	// between CreateMultipartUpload and the record's write: seen first
	// after a kill, and initiated just before it (or after it: a request
	// the server carried out once its client was gone). One created long
	// before its kill went unrecorded for no reason the design allows.
	// "Long" is 10 s: under make torture's load (three scenarios and long
	// uptime on 2 cores) the two requests have taken 2.8 s.
	var unrecorded int
	var latest time.Duration // initiated at most this long before its kill
	for _, u := range f.Uploads() {
		id := aws.ToString(u.UploadId)
		if recordedIDs[id] || f.uploadGhost(u) {
			continue
		}
		unrecorded++
		at, ok := leftAt[id]
		if !ok {
			t.Errorf("unrecorded upload %s at %s was never seen after a kill: a process that went on left it", id, aws.ToString(u.Key))
			continue
		}
		gap := at.Sub(aws.ToTime(u.Initiated))
		latest = max(latest, gap)
		if gap > 10*time.Second {
			t.Errorf("unrecorded upload %s at %s was initiated %s before the kill that left it: its record should have been written by then", id, aws.ToString(u.Key), gap.Round(time.Millisecond))
		}
	}
	fig := f.Check(CheckOptions{AllowUnrecordedUploads: true})
	recorded := 0
	for id := range leftBy {
		if recordedIDs[id] {
			recorded++
		}
	}
	if recorded == 0 {
		t.Errorf("no kill left a recorded multipart upload (%d uploads left by kills, %d multipart copies above %s): the abort of the uploads killed moves leave was not tested", len(leftBy), fig.MultipartCopies, multipartAbove)
	}
	Report(t, fmt.Sprintf("1 crash: %d SIGKILLs (%d of run --once, %d of the daemon; %d mid-run, holding the lease; %d mid multipart copy, leaving %d uploads: %d recorded in their file's state record, %d of those not aborted by a later move; %d unrecorded left, each initiated at most %s before its kill) over %s files (%s, multipart copies above %s) and %d re-uploaded versions, %d runs ending on their own, %s: %s",
		killed, onceKills, daemonKills, midRun, killsMidUpload, len(leftBy), recorded, fig.MultipartLeft, unrecorded, latest.Round(time.Millisecond), Thousands(files), MiB(bytes), multipartAbove, reuploaded, finished,
		time.Since(start).Round(time.Second), fig))
}

// archivedStamp is what archive.DestKey adds after a file's stem.
var archivedStamp = regexp.MustCompile(`\.\d{8}T\d{6}Z-[0-9a-f]{12}`)

// sourceOf is the inbox key an archive/ key was copied from.
func sourceOf(dest string) string {
	rel := strings.TrimPrefix(dest, Base+connector.ArchiveFolder)
	return Base + archivedStamp.ReplaceAllString(rel, "")
}

// reuploadArchived puts new versions (new content) of up to n keys that
// are archived and not in the inbox, while no process runs, and returns
// how many it put.
func reuploadArchived(f *Fixture, n int) int {
	waiting := map[string]bool{}
	for _, rel := range f.Inbox() {
		waiting[rel] = true
	}
	var keys []string
	for rel, vs := range f.Versions() {
		if len(keys) == n {
			break
		}
		if !waiting[rel] && len(vs) == 1 && !strings.HasPrefix(rel, connector.ArchiveFolder) {
			keys = append(keys, rel)
		}
	}
	f.Seed(SeedOptions{Keys: keys})
	return len(keys)
}
