//go:build torture

package torture

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"

	"github.com/s3connector/s3connector/archive"
	"github.com/s3connector/s3connector/connector"
)

// CheckOptions tell the checker what the scenario promises.
type CheckOptions struct {
	// ImportDirs are the dir importers' directories (default the
	// fixture's ImportDir). Every key must be imported into one of them,
	// holding its last seeded version.
	ImportDirs []string
	// AllowReimport accepts a key imported into more than one of the
	// ImportDirs (at-least-once: a writer killed between import and
	// delete, whose file the other writer imports again); the count is
	// still reported (Figures.ImportedTwice).
	AllowReimport bool
	// AllowInbox accepts versions still in the inbox (a scenario that
	// stops part-way); by default every version must have left it.
	AllowInbox bool
	// NoImport skips the import directory checks (a non-dir importer).
	NoImport bool
	// AllowUnrecordedUploads accepts multipart uploads left whose id no
	// process logged as recorded ("multipart upload recorded"): a SIGKILL
	// between CreateMultipartUpload and the state record's write leaves
	// one that no later move can know of (archive.UploadJournal; the
	// README's lifecycle rule removes them). They are counted
	// (Figures.MultipartUnrecorded); an upload left whose id was recorded
	// fails the check still, as without the option.
	AllowUnrecordedUploads bool
}

// Figures are what the checker found. Every count but Versions, Files,
// Bytes, InInbox and ImportedTwice is a broken invariant when non-zero.
type Figures struct {
	Files, Versions int
	Bytes           int64
	// Lost: a version in none of inbox, archive/ and error/ (I1).
	Lost int
	// InTwoPlaces: a version both in the inbox and moved, or in both
	// archive/ and error/ (I1, I2).
	InTwoPlaces int
	// ArchivedTwice: archived copies beyond one per version, i.e. objects
	// in archive/ (or error/) that are no seeded version's name (I2).
	ArchivedTwice int
	// BodyMismatch: an archived copy or an imported file whose SHA-256
	// differs from the seeded version's.
	BodyMismatch int
	// GoodInError: seeded (good) files in error/ (I4).
	GoodInError int
	// InInbox: versions still in the inbox (a broken invariant unless
	// CheckOptions.AllowInbox).
	InInbox int
	// NotImported: an archived key absent from every import directory.
	NotImported int
	// ImportedTwice: keys found in more than one import directory.
	ImportedTwice int
	// MultipartLeft: multipart uploads not completed or aborted, but for
	// those CheckOptions.AllowUnrecordedUploads accepts, which are
	// MultipartUnrecorded.
	MultipartLeft, MultipartUnrecorded int
	// MultipartGhosts: uploads MinIO still lists but answers NoSuchUpload
	// for (ListParts): an upload aborted while a part copy of it was still
	// being written on the server, whose late part recreated the upload's
	// folder without its metadata (see uploadGhost). Not an upload to S3's
	// API (nothing can complete, abort or bill it); reported, not an
	// invariant.
	MultipartGhosts int
	// MultipartCopies: archived copies made by a multipart copy (their
	// ETag has the "-<parts>" suffix of a completed multipart upload);
	// not an invariant, reported, so that MultipartLeft is seen to mean
	// something (the crash scenario lowers the threshold to get some).
	MultipartCopies int
	// Checked: archived copies whose body was compared with what was
	// seeded; Imported: files found in the import directories.
	Checked, Imported int
	// MarkersLeft: validation markers (archive/.s3connector-validate-*)
	// a validation could not delete; not an invariant, reported.
	MarkersLeft int
	// Panics and Secrets: processes whose output has "panic", or a
	// secret (platform secret key, External ID, a session token).
	Panics, Secrets int
}

// String is the standard part of a scenario's line.
func (g Figures) String() string {
	unrecorded := ""
	if g.MultipartUnrecorded > 0 {
		unrecorded = fmt.Sprintf(" and %d unrecorded, created just before a kill", g.MultipartUnrecorded)
	}
	s := fmt.Sprintf("%d lost, %d archived twice, %d in two places, %d body mismatches, %d good files in error/, %d left in the inbox, %d multipart uploads left%s (%d multipart copies), %d panics, %d secrets in output",
		g.Lost, g.ArchivedTwice, g.InTwoPlaces, g.BodyMismatch, g.GoodInError, g.InInbox, g.MultipartLeft, unrecorded, g.MultipartCopies, g.Panics, g.Secrets)
	if g.MultipartGhosts > 0 {
		s += fmt.Sprintf(" (%d aborted uploads MinIO still lists, NoSuchUpload to ListParts)", g.MultipartGhosts)
	}
	if g.MarkersLeft > 0 {
		s += fmt.Sprintf(" (%d validation markers left in archive/)", g.MarkersLeft)
	}
	return s
}

// validationMarker starts the names of the validation's markers in archive/.
const validationMarker = ".s3connector-validate-"

// sessionToken matches a MinIO STS session token (a JWT) and an AWS one.
var sessionToken = regexp.MustCompile(`eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}|FwoGZXIvYXdzE[A-Za-z0-9/+=]{16,}|IQoJb3JpZ2lu[A-Za-z0-9/+=]{16,}`)

// Check is the shared checker: every seeded version in exactly one of
// inbox / archive / error, archived once under its name (archive.DestKey
// of the version), byte for byte; nothing in error/ but the daemon's own
// state records (every seeded file is good); imported bodies identical to
// the last seeded version; no multipart upload left; no "panic" and no
// secret in any process output. Problems fail the test (a few examples of
// each are printed); the figures are returned for the scenario's line.
// A check of nothing fails too: no version seeded, no archived copy read
// (unless every version may still be in the inbox), no imported file found
// (unless NoImport), no process output read.
func (f *Fixture) Check(o CheckOptions) Figures {
	t := f.T
	t.Helper()
	ctx := t.Context()
	if len(o.ImportDirs) == 0 {
		o.ImportDirs = []string{f.ImportDir}
	}
	var g Figures
	examples := map[string][]string{}
	bad := func(kind, format string, args ...any) {
		if len(examples[kind]) < 5 {
			examples[kind] = append(examples[kind], fmt.Sprintf(format, args...))
		}
	}

	// What the bucket holds, with ETags.
	objects := map[string]string{} // key → ETag
	p := s3.NewListObjectsV2Paginator(f.Srv.Root(), &s3.ListObjectsV2Input{Bucket: aws.String(f.Bucket), Prefix: aws.String(Base)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, obj := range page.Contents {
			objects[aws.ToString(obj.Key)] = strings.Trim(aws.ToString(obj.ETag), `"`)
		}
	}
	f.resolveModified(objects)
	versions := f.Versions()
	expected := map[string]bool{} // archive/ and error/ keys that are a version's name
	type read struct {
		key  string
		want [32]byte
	}
	var reads []read
	for rel, vs := range versions {
		g.Files++
		for _, v := range vs {
			g.Versions++
			g.Bytes += v.Size
			if v.Modified.IsZero() {
				t.Errorf("%s: seeded version %s has no listed LastModified (seeded after it was moved?)", rel, v.ETag)
			}
			av := archive.Version{ID: v.ID, ETag: v.ETag, Modified: v.Modified}
			ak := archive.DestKey(Base, archive.Archive, rel, av)
			ek := archive.DestKey(Base, archive.Error, rel, av)
			expected[ak], expected[ek] = true, true
			_, inArchive := objects[ak]
			_, inError := objects[ek]
			inInbox := objects[Base+rel] == v.ETag && !f.Versioned || f.Versioned && v.ID == f.currentID(rel) && objects[Base+rel] != ""
			places := 0
			for _, in := range []bool{inArchive, inError, inInbox} {
				if in {
					places++
				}
			}
			switch {
			case places == 0:
				g.Lost++
				bad("lost", "%s (etag %s) is in none of inbox, archive/, error/", rel, v.ETag)
			case places > 1:
				g.InTwoPlaces++
				bad("two places", "%s (etag %s): inbox %v, archive %v, error %v", rel, v.ETag, inInbox, inArchive, inError)
			}
			if inError {
				g.GoodInError++
				bad("error/", "good file %s in error/ as %s", rel, ek)
			}
			if inInbox {
				g.InInbox++
				if !o.AllowInbox {
					bad("inbox", "%s still in the inbox", rel)
				}
			}
			if inArchive {
				reads = append(reads, read{ak, v.SHA256})
				if strings.Contains(objects[ak], "-") {
					g.MultipartCopies++
				}
			}
		}
	}
	for key := range objects {
		rel := strings.TrimPrefix(key, Base)
		switch {
		case strings.HasPrefix(rel, connector.ErrorFolder+".s3connector/"):
			// The daemon's own state: the lease and attempt records.
		case strings.HasPrefix(rel, connector.ArchiveFolder+validationMarker):
			// A validation marker its check could not delete (the
			// check's error names it, "left behind, safe to delete"):
			// not a file, counted apart.
			g.MarkersLeft++
		case strings.HasPrefix(rel, connector.ArchiveFolder) || strings.HasPrefix(rel, connector.ErrorFolder):
			if !expected[key] && !strings.HasSuffix(key, archive.ReportSuffix) {
				g.ArchivedTwice++
				bad("archived twice", "%s is no seeded version's archive name (a second copy?)", key)
			}
			if strings.HasPrefix(rel, connector.ErrorFolder) {
				if strings.HasSuffix(key, archive.ReportSuffix) && !expected[strings.TrimSuffix(key, archive.ReportSuffix)] {
					g.GoodInError++
					bad("error/", "report %s for no seeded version", key)
				}
			}
		}
	}

	// Archived bodies, 8 at a time.
	var mu sync.Mutex
	err := parallel(8, len(reads), func(i int) error {
		r := reads[i]
		out, err := f.Srv.Root().GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(f.Bucket), Key: aws.String(r.key)})
		if err != nil {
			return fmt.Errorf("get %s: %w", r.key, err)
		}
		h := sha256.New()
		_, err = io.Copy(h, out.Body)
		out.Body.Close()
		if err != nil {
			return fmt.Errorf("read %s: %w", r.key, err)
		}
		if [32]byte(h.Sum(nil)) != r.want {
			mu.Lock()
			g.BodyMismatch++
			bad("body", "archived %s differs from what was seeded", r.key)
			mu.Unlock()
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	g.Checked = len(reads)

	// Imported bodies: each key in one import directory (or more, when
	// allowed), every copy one of its seeded versions, one copy the last.
	if !o.NoImport {
		found := map[string][][32]byte{}
		for _, dir := range o.ImportDirs {
			err := filepath.WalkDir(dir, func(path string, e fs.DirEntry, err error) error {
				if err != nil || e.IsDir() {
					return err
				}
				if strings.HasPrefix(e.Name(), ".s3connector-") && strings.HasSuffix(e.Name(), ".tmp") {
					return nil // a killed import's temp file; never a file's name
				}
				rel, err := filepath.Rel(dir, path)
				if err != nil {
					return err
				}
				b, err := os.ReadFile(path)
				if err != nil {
					return err
				}
				found[filepath.ToSlash(rel)] = append(found[filepath.ToSlash(rel)], sha256.Sum256(b))
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
		}
		for rel, vs := range versions {
			copies := found[rel]
			last := vs[len(vs)-1]
			moved := false
			for _, v := range vs {
				av := archive.Version{ID: v.ID, ETag: v.ETag, Modified: v.Modified}
				if _, ok := objects[archive.DestKey(Base, archive.Archive, rel, av)]; ok {
					moved = true
				}
			}
			if len(copies) == 0 {
				if moved {
					g.NotImported++
					bad("not imported", "%s archived but in no import directory", rel)
				}
				continue
			}
			if len(copies) > 1 {
				g.ImportedTwice++
				if !o.AllowReimport {
					bad("imported twice", "%s imported into %d directories", rel, len(copies))
				}
			}
			hasLast := false
			for _, c := range copies {
				known := false
				for _, v := range vs {
					known = known || c == v.SHA256
				}
				if !known {
					g.BodyMismatch++
					bad("body", "imported %s is none of its seeded versions", rel)
				}
				hasLast = hasLast || c == last.SHA256
			}
			if !hasLast && moved && !(o.AllowInbox && g.InInbox > 0) {
				g.BodyMismatch++
				bad("body", "no import directory holds the last version of %s", rel)
			}
		}
		g.Imported = len(found)
		for rel := range found {
			if _, ok := versions[rel]; !ok {
				g.BodyMismatch++
				bad("body", "import directory holds %s, which was never seeded", rel)
			}
		}
	}

	// Multipart uploads left behind, in the whole bucket (the fixture's
	// own).
	recorded := f.RecordedUploads()
	for _, u := range f.Uploads() {
		id := aws.ToString(u.UploadId)
		if f.uploadGhost(u) {
			g.MultipartGhosts++
			continue
		}
		if o.AllowUnrecordedUploads && !recorded[id] {
			g.MultipartUnrecorded++
			continue
		}
		g.MultipartLeft++
		bad("multipart", "multipart upload %s of %s left (recorded: %v)", id, aws.ToString(u.Key), recorded[id])
	}

	// Every process's output: no panic, no secret.
	f.mu.Lock()
	procs := append([]*Proc(nil), f.procs...)
	f.mu.Unlock()
	for _, p := range procs {
		out := p.Output()
		if strings.Contains(strings.ToLower(out), "panic") {
			g.Panics++
			bad("panic", "%v: %s", p.Args, excerpt(out, "panic", false))
		}
		for _, s := range []string{f.Secret, f.ExternalID} {
			if strings.Contains(out, s) {
				g.Secrets++
				bad("secret", "%v printed a secret: %s", p.Args, excerpt(out, s, true))
			}
		}
		if m := sessionToken.FindString(out); m != "" {
			g.Secrets++
			bad("secret", "%v printed a session token %.12s…", p.Args, m)
		}
	}

	// A check of nothing proves nothing.
	switch {
	case g.Versions == 0:
		t.Error("checker: nothing was seeded")
	case g.Checked == 0 && !o.AllowInbox:
		t.Error("checker: no archived copy to check")
	case g.Imported == 0 && !o.NoImport && !o.AllowInbox:
		t.Errorf("checker: no imported file in %v", o.ImportDirs)
	case len(procs) == 0:
		t.Error("checker: no process output to read")
	}

	kinds := make([]string, 0, len(examples))
	for k := range examples {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	for _, k := range kinds {
		if k == "imported twice" && o.AllowReimport || k == "inbox" && o.AllowInbox {
			continue
		}
		t.Errorf("invariant broken (%s), e.g.:\n  %s", k, strings.Join(examples[k], "\n  "))
	}
	return g
}

// RecordedUploads returns the upload ids the processes logged as recorded
// in their file's state record ("multipart upload recorded", ingest's
// uploadJournal): from then on a later move of the file must abort them.
// Read once the processes are done: the outputs are scanned once per call.
func (f *Fixture) RecordedUploads() map[string]bool {
	f.mu.Lock()
	procs := append([]*Proc(nil), f.procs...)
	f.mu.Unlock()
	ids := map[string]bool{}
	for _, p := range procs {
		for line := range strings.Lines(p.Output()) {
			if m := recordedUpload.FindStringSubmatch(line); m != nil {
				ids[m[1]] = true
			}
		}
	}
	return ids
}

// recordedUpload matches the daemon's JSON log line of a recorded upload.
var recordedUpload = regexp.MustCompile(`"msg":"multipart upload recorded".*"upload_id":"([^"]+)"`)

// uploadGhost reports whether MinIO lists u but answers NoSuchUpload when
// asked for its parts. MinIO lists upload ids from the folders of its
// multipart area (ListDir in ListMultipartUploads, cmd/erasure-multipart.go)
// while ListParts, AbortMultipartUpload and CompleteMultipartUpload read
// the upload's metadata. A crash run left one such upload, whose id was
// recorded (so a later move had aborted it, twice), ListParts answering
// NoSuchUpload. The likely cause is the race AWS documents: "if any part
// uploads are currently in progress, those part uploads might or might not
// succeed. As a result, it might be necessary to abort a given multipart
// upload multiple times" (AbortMultipartUpload, Amazon S3 API Reference) --
// a part landing after the abort recreates the folder without the
// metadata, and nothing in S3's API can remove what no call knows (MinIO's
// stale-upload cleanup does, after a day). On AWS the move's second abort
// (archive.Mover.copy) is what removes a late part.
func (f *Fixture) uploadGhost(u types.MultipartUpload) bool {
	_, err := f.Srv.Root().ListParts(f.T.Context(), &s3.ListPartsInput{Bucket: aws.String(f.Bucket), Key: u.Key, UploadId: u.UploadId})
	var ae smithy.APIError
	return errors.As(err, &ae) && ae.ErrorCode() == "NoSuchUpload"
}

// Uploads lists the multipart uploads in progress anywhere in the bucket.
// Without a prefix: the pinned MinIO lists uploads by prefix only when the
// prefix is a whole key (it answers none for Base), so a prefix would make
// the checker's "no upload left" vacuous.
func (f *Fixture) Uploads() []types.MultipartUpload {
	t := f.T
	t.Helper()
	var all []types.MultipartUpload
	in := &s3.ListMultipartUploadsInput{Bucket: aws.String(f.Bucket)}
	for range 100 {
		out, err := f.Srv.Root().ListMultipartUploads(t.Context(), in)
		if err != nil {
			t.Fatalf("list multipart uploads: %v", err)
		}
		all = append(all, out.Uploads...)
		if !aws.ToBool(out.IsTruncated) {
			break
		}
		in.KeyMarker, in.UploadIdMarker = out.NextKeyMarker, out.NextUploadIdMarker
	}
	return all
}

// resolveModified finds the LastModified of versions the seeder could not
// list because a running daemon had moved them already: the archived (or
// errored) name carries the time to the second, and the version tag in it
// (a hash over the ETag and the time to the millisecond MinIO lists) tells
// which millisecond.
func (f *Fixture) resolveModified(objects map[string]string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for rel, vs := range f.versions {
		for i := range vs {
			if !vs[i].Modified.IsZero() {
				continue
			}
			dir, file := path.Split(rel)
			stem := file
			if j := strings.LastIndexByte(file, '.'); j > 0 {
				stem = file[:j]
			}
			for _, folder := range []archive.Folder{archive.Archive, archive.Error} {
				prefix := Base + string(folder) + dir + stem + "."
				for key := range objects {
					m := stampInName.FindStringSubmatch(strings.TrimPrefix(key, prefix))
					if !strings.HasPrefix(key, prefix) || m == nil {
						continue
					}
					sec, err := time.Parse("20060102T150405Z", m[1])
					if err != nil {
						continue
					}
					for ms := range 1000 {
						mod := sec.Add(time.Duration(ms) * time.Millisecond)
						if archive.DestKey(Base, folder, rel, archive.Version{ID: vs[i].ID, ETag: vs[i].ETag, Modified: mod}) == key {
							vs[i].Modified = mod
						}
					}
				}
			}
		}
	}
}

// stampInName is the stamp archive.DestKey puts after the stem.
var stampInName = regexp.MustCompile(`^(\d{8}T\d{6}Z)-[0-9a-f]{12}`)

// currentID is the version id of the current version of rel (versioned
// buckets), "" when there is none.
func (f *Fixture) currentID(rel string) string {
	out, err := f.Srv.Root().HeadObject(f.T.Context(), &s3.HeadObjectInput{Bucket: aws.String(f.Bucket), Key: aws.String(Base + rel)})
	if err != nil {
		return ""
	}
	return aws.ToString(out.VersionId)
}

// excerpt is the line of out holding sub, shortened, with sub masked when
// it is a secret.
func excerpt(out, sub string, mask bool) string {
	i := strings.Index(strings.ToLower(out), strings.ToLower(sub))
	start := strings.LastIndexByte(out[:i], '\n') + 1
	end := strings.IndexByte(out[i:], '\n')
	if end < 0 {
		end = len(out) - i
	}
	line := out[start : i+end]
	if len(line) > 300 {
		line = line[:300] + "…"
	}
	if mask {
		line = strings.ReplaceAll(line, sub, "<the secret>")
	}
	return line
}
