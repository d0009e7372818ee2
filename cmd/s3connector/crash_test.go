package main

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// archivedStamp is what archive.DestKey inserts into a file's name:
// ".<LastModified UTC>-<version tag>".
var archivedStamp = regexp.MustCompile(`\.\d{8}T\d{6}Z-[0-9a-f]{12}`)

// SIGKILL the built binary at random moments of `run --once` runs, again
// and again, re-upload some files already archived (new versions of the
// same keys), then let it finish. Every seeded version must end archived
// exactly once, byte for byte, in archive/ and in the import directory;
// nothing in error/, nothing left in the inbox (I1, I2). Before archive
// names were a function of the source version, a kill between a copy and
// its delete archived the file a second time under a new name.
func TestCrashAtRandomMomentsArchivesEachVersionOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("kills the binary many times")
	}
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rnd := rand.New(rand.NewPCG(seed, 1))
	body := func(i, version int) string {
		n := 1 + rnd.IntN(48<<10)
		if i%40 == 0 {
			n = 1 << 20 // a few larger files
		}
		b := make([]byte, n)
		for j := range b {
			b[j] = byte(rnd.UintN(256))
		}
		return fmt.Sprintf("%d/%d\n", i, version) + string(b)
	}
	const files = 400
	// versions[rel] are the bodies every version of rel must be archived with.
	versions := map[string][]string{}
	seeded := map[string]string{}
	for i := range files {
		rel := fmt.Sprintf("batch-%d/f%03d.csv", i%5, i)
		seeded[rel] = body(i, 1)
		versions[rel] = []string{seeded[rel]}
	}
	f := newRunFixture(t, seeded)
	cfg := f.config(t, freeAddr(t), `      type: dir
      path: `+f.dir+`
    lease_ttl: 1s
`)
	bin := binary(t)
	run := func(kill time.Duration) (killed bool, out string) {
		var stdout, stderr bytes.Buffer
		cmd := exec.Command(bin, "run", "--once", "--config", cfg)
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		if kill > 0 {
			select {
			case <-done:
				return false, stdout.String()
			case <-time.After(kill):
				cmd.Process.Kill()
				<-done
				return true, ""
			}
		}
		<-done
		if strings.Contains(stderr.String(), "panic") {
			t.Fatalf("panic:\n%s", stderr.String())
		}
		return false, stdout.String() + stderr.String()
	}
	inbox := func() []string {
		var left []string
		for _, k := range f.keys(t, "imports/") {
			if !strings.HasPrefix(k, "imports/archive/") && !strings.HasPrefix(k, "imports/error/") {
				left = append(left, strings.TrimPrefix(k, "imports/"))
			}
		}
		return left
	}

	// A killed run's lease blocks the connection for lease_ttl plus the
	// same again of clock-skew allowance; runs started meanwhile are
	// skipped (and say so), and the loop tries again. kills counts
	// SIGKILLs only: the re-upload half-way is a step of its own.
	const wantKills = 12
	kills, next, reuploaded := 0, files, false
	for i := 0; i < 120 && kills < wantKills; i++ {
		if left := len(inbox()); left < 40 {
			// Keep the runs busy: more files arrive.
			for j := range 100 {
				i := next + j
				rel := fmt.Sprintf("late-%d/f%04d.csv", i%3, i)
				v := body(i, 1)
				if err := f.srv.Put(t.Context(), f.bucket, "imports/"+rel, []byte(v)); err != nil {
					t.Fatal(err)
				}
				versions[rel] = []string{v}
			}
			next += 100
		}
		killed, out := run(time.Duration(150+rnd.IntN(900)) * time.Millisecond)
		if killed {
			kills++
		} else if strings.Contains(out, "is being processed by") {
			time.Sleep(400 * time.Millisecond)
			continue
		}
		if kills >= 8 && !reuploaded {
			// New versions of files already archived (not in the inbox:
			// no process runs, so none is half-moved).
			waiting := map[string]bool{}
			for _, rel := range inbox() {
				waiting[rel] = true
			}
			n := 0
			for i := range files {
				rel := fmt.Sprintf("batch-%d/f%03d.csv", i%5, i)
				if waiting[rel] || len(versions[rel]) > 1 || n == 20 {
					continue
				}
				v := body(i, 2)
				if err := f.srv.Put(t.Context(), f.bucket, "imports/"+rel, []byte(v)); err != nil {
					t.Fatal(err)
				}
				versions[rel] = append(versions[rel], v)
				n++
			}
			t.Logf("re-uploaded %d archived files", n)
			reuploaded = true
		}
	}
	t.Logf("%d SIGKILLs during runs", kills)
	if kills < wantKills || !reuploaded {
		t.Fatalf("%d SIGKILLs (re-upload done: %v), want %d and the re-upload: runs ended before the kill too often to prove anything", kills, reuploaded, wantKills)
	}
	// Finish: a killed run's lease expires after lease_ttl, then a run
	// takes what is left.
	for try := 0; len(inbox()) > 0; try++ {
		if try == 10 {
			t.Fatalf("files still in the inbox after 10 runs: %v", inbox())
		}
		time.Sleep(1100 * time.Millisecond)
		_, out := run(0)
		t.Logf("finishing run: %s", strings.TrimSpace(out))
	}

	// Every version archived exactly once, byte for byte.
	archived := map[string][]string{}
	for _, k := range f.keys(t, "imports/archive/") {
		rel := archivedStamp.ReplaceAllString(strings.TrimPrefix(k, "imports/archive/"), "")
		out, err := f.srv.Root().GetObject(t.Context(), getInput(f.bucket, k))
		if err != nil {
			t.Fatal(err)
		}
		b := new(bytes.Buffer)
		b.ReadFrom(out.Body)
		out.Body.Close()
		archived[rel] = append(archived[rel], b.String())
	}
	total := 0
	for rel, want := range versions {
		got := archived[rel]
		total += len(want)
		if len(got) != len(want) {
			t.Errorf("%s: %d archived copies, want %d (one per version)", rel, len(got), len(want))
			continue
		}
		for _, w := range want {
			found := 0
			for _, g := range got {
				if g == w {
					found++
				}
			}
			if found != 1 {
				t.Errorf("%s: a version (%d bytes) archived %d times, want once", rel, len(w), found)
			}
		}
		// The import directory holds the latest version.
		local, err := os.ReadFile(filepath.Join(f.dir, filepath.FromSlash(rel)))
		if err != nil || string(local) != want[len(want)-1] {
			t.Errorf("%s: import directory copy differs from the last version (err %v)", rel, err)
		}
	}
	if len(archived) != len(versions) {
		t.Errorf("archive/ holds %d keys, want %d", len(archived), len(versions))
	}
	for _, k := range f.keys(t, "imports/error/") {
		if !strings.HasPrefix(k, "imports/error/.s3connector/") {
			t.Errorf("%s in error/: no file was bad", k)
		}
	}
	if !t.Failed() {
		t.Logf("%d files, %d versions, %d kills: every version archived once", len(versions), total, kills)
	}
}

func getInput(bucket, key string) *s3.GetObjectInput {
	return &s3.GetObjectInput{Bucket: &bucket, Key: &key}
}
