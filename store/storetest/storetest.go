// Package storetest is the conformance suite of store.Store: every
// implementation runs it, as Go CDK's drivers run blob/drivertest.
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) storetest.Opener {
//			path := filepath.Join(t.TempDir(), "store.db")
//			return func() (store.Store, error) { return store.Open(path) }
//		})
//	}
package storetest

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/s3connector/s3connector/store"
)

// Opener opens the store under test. Every call of one Opener opens the
// same data, so that what one store wrote before Close is read by the next;
// the suite closes each store it opens.
type Opener func() (store.Store, error)

// Run runs the suite. newOpener is called once per test and must return an
// Opener of new, empty data.
func Run(t *testing.T, newOpener func(t *testing.T) Opener) {
	tests := []struct {
		name string
		fn   func(t *testing.T, open Opener)
	}{
		{"CreateGet", testCreateGet},
		{"CreateInvalidName", testCreateInvalidName},
		{"UniqueNames", testUniqueNames},
		{"NotFound", testNotFound},
		{"ListSorted", testListSorted},
		{"Update", testUpdate},
		{"UpdateFuncError", testUpdateFuncError},
		{"StoreSetFields", testStoreSetFields},
		{"ConcurrentUpdates", testConcurrentUpdates},
		{"Lifecycle", testLifecycle},
		{"TransitionsInOrder", testTransitionsInOrder},
		{"Delete", testDelete},
		{"Persistence", testPersistence},
		{"CanceledContext", testCanceledContext},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.fn(t, newOpener(t))
		})
	}
}

var ctx = context.Background()

func openStore(t *testing.T, open Opener) store.Store {
	t.Helper()
	s, err := open()
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// settings returns valid-looking customer settings; the store checks none
// of them.
func settings(bucket string) store.Settings {
	return store.Settings{AccountID: "123456789012", Bucket: bucket, Region: "eu-west-1", BasePath: "imports"}
}

func create(t *testing.T, s store.Store, name string) store.Connection {
	t.Helper()
	c, err := s.Create(ctx, name, settings(name+"-bucket"), "token-a")
	if err != nil {
		t.Fatalf("Create(%q): %v", name, err)
	}
	return c
}

func get(t *testing.T, s store.Store, name string) store.Connection {
	t.Helper()
	c, err := s.Get(ctx, name)
	if err != nil {
		t.Fatalf("Get(%q): %v", name, err)
	}
	return c
}

// validation is a validation of c as it is now.
func validation(c store.Connection, passed bool) store.Validation {
	result := "Connection successful. Found 3 files in bucket."
	if !passed {
		result = "AssumeRole: access denied"
	}
	return store.Validation{Fingerprint: c.Fingerprint(), At: time.Now(), Passed: passed, Result: result}
}

func testCreateGet(t *testing.T, open Opener) {
	s := openStore(t, open)
	before := time.Now().Add(-time.Second)
	c, err := s.Create(ctx, "acme", store.Settings{AccountID: "123456789012", Bucket: "acme-data", Region: "eu-west-1", BasePath: "in", KMSKeyARN: "arn:aws:kms:eu-west-1:123456789012:key/abc"}, "token-a")
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	want := store.Settings{AccountID: "123456789012", Bucket: "acme-data", Region: "eu-west-1", BasePath: "in/", KMSKeyARN: "arn:aws:kms:eu-west-1:123456789012:key/abc"}
	switch {
	case c.Name != "acme" || c.Settings != want:
		t.Errorf("Create = %+v, want name acme and settings %+v (base path normalised)", c, want)
	case len(c.ExternalID) < 32:
		t.Errorf("ExternalID = %q, want a generated ID of at least 32 characters", c.ExternalID)
	case c.RoleName != "s3connector-acme":
		t.Errorf("RoleName = %q, want s3connector-acme", c.RoleName)
	case c.Status != store.StatusDraft || c.StatusReason != "created":
		t.Errorf("Status = %q (%q), want draft (created)", c.Status, c.StatusReason)
	case c.Validation != (store.Validation{}):
		t.Errorf("Validation = %+v, want none", c.Validation)
	case c.Revision != 1:
		t.Errorf("Revision = %d, want 1", c.Revision)
	case c.CreatedAt.Before(before) || !c.UpdatedAt.Equal(c.CreatedAt):
		t.Errorf("CreatedAt %v, UpdatedAt %v: want now, equal", c.CreatedAt, c.UpdatedAt)
	}
	if got := get(t, s, "acme"); !reflect.DeepEqual(got, c) {
		t.Errorf("Get = %+v\nwant what Create returned %+v", got, c)
	}
	list, err := s.List(ctx)
	if err != nil || len(list) != 1 || !reflect.DeepEqual(list[0], c) {
		t.Errorf("List = %+v, %v; want [the created connection]", list, err)
	}
	other := create(t, s, "other")
	if other.ExternalID == c.ExternalID {
		t.Errorf("two connections got the same External ID %q", c.ExternalID)
	}
}

func testCreateInvalidName(t *testing.T, open Opener) {
	s := openStore(t, open)
	tests := []string{"", "Acme", "a/b", "../x", "-acme", "acme-", "a b", strings.Repeat("a", 200)}
	for _, name := range tests {
		if _, err := s.Create(ctx, name, settings("b"), "token-a"); !errors.Is(err, store.ErrInvalid) {
			t.Errorf("Create(%q) = %v, want ErrInvalid", name, err)
		}
	}
	if list, err := s.List(ctx); err != nil || len(list) != 0 {
		t.Errorf("List after invalid creates = %v, %v; want empty", list, err)
	}
}

func testUniqueNames(t *testing.T, open Opener) {
	s := openStore(t, open)
	first := create(t, s, "acme")
	if _, err := s.Create(ctx, "acme", settings("another"), "token-b"); !errors.Is(err, store.ErrExists) {
		t.Fatalf("second Create(acme) = %v, want ErrExists", err)
	}
	if got := get(t, s, "acme"); !reflect.DeepEqual(got, first) {
		t.Errorf("after a refused Create the connection is %+v, want unchanged %+v", got, first)
	}
	if tr, err := s.Transitions(ctx, "acme"); err != nil || len(tr) != 1 {
		t.Errorf("Transitions = %+v, %v; want only the first creation", tr, err)
	}
}

func testNotFound(t *testing.T, open Opener) {
	s := openStore(t, open)
	create(t, s, "acme")
	tests := []struct {
		name string
		call func() error
	}{
		{"Get", func() error { _, err := s.Get(ctx, "nope"); return err }},
		{"Update", func() error {
			_, err := s.Update(ctx, "nope", "token-a", func(*store.Connection) error { return nil })
			return err
		}},
		{"Delete", func() error { return s.Delete(ctx, "nope") }},
		{"Transitions", func() error { _, err := s.Transitions(ctx, "nope"); return err }},
	}
	for _, tt := range tests {
		if err := tt.call(); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("%s(nope) = %v, want ErrNotFound", tt.name, err)
		}
	}
}

func testListSorted(t *testing.T, open Opener) {
	s := openStore(t, open)
	if list, err := s.List(ctx); err != nil || len(list) != 0 {
		t.Fatalf("List of an empty store = %v, %v; want empty", list, err)
	}
	for _, name := range []string{"charlie", "alpha", "bravo"} {
		create(t, s, name)
	}
	list, err := s.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, c := range list {
		names = append(names, c.Name)
	}
	if want := []string{"alpha", "bravo", "charlie"}; !reflect.DeepEqual(names, want) {
		t.Errorf("List names = %v, want %v", names, want)
	}
}

func testUpdate(t *testing.T, open Opener) {
	s := openStore(t, open)
	c := create(t, s, "acme")
	got, err := s.Update(ctx, "acme", "token-b", func(c *store.Connection) error {
		c.Bucket = "acme-new"
		c.BasePath = "data"
		return nil
	})
	if err != nil {
		t.Fatalf("Update: %v", err)
	}
	switch {
	case got.Bucket != "acme-new" || got.BasePath != "data/":
		t.Errorf("Update = bucket %q base path %q, want acme-new, data/", got.Bucket, got.BasePath)
	case got.ExternalID != c.ExternalID || got.RoleName != c.RoleName:
		t.Errorf("Update changed External ID or role: %+v, was %+v", got, c)
	case got.Revision != 2:
		t.Errorf("Revision = %d, want 2", got.Revision)
	case !got.CreatedAt.Equal(c.CreatedAt) || got.UpdatedAt.Before(c.UpdatedAt):
		t.Errorf("times %v, %v after %v, %v: want CreatedAt kept, UpdatedAt later", got.CreatedAt, got.UpdatedAt, c.CreatedAt, c.UpdatedAt)
	}
	if stored := get(t, s, "acme"); !reflect.DeepEqual(stored, got) {
		t.Errorf("Get = %+v\nwant what Update returned %+v", stored, got)
	}
	// A draft edited stays a draft, and no transition is recorded.
	if tr, err := s.Transitions(ctx, "acme"); err != nil || len(tr) != 1 {
		t.Errorf("Transitions after an edit of a draft = %+v, %v; want only the creation", tr, err)
	}
}

func testUpdateFuncError(t *testing.T, open Opener) {
	s := openStore(t, open)
	c := create(t, s, "acme")
	errStop := errors.New("stop")
	_, err := s.Update(ctx, "acme", "token-a", func(c *store.Connection) error {
		c.Bucket = "changed"
		return errStop
	})
	if !errors.Is(err, errStop) {
		t.Fatalf("Update = %v, want fn's error", err)
	}
	if got := get(t, s, "acme"); !reflect.DeepEqual(got, c) {
		t.Errorf("after fn failed the connection is %+v, want unchanged %+v", got, c)
	}
}

func testStoreSetFields(t *testing.T, open Opener) {
	s := openStore(t, open)
	c := create(t, s, "acme")
	tests := []struct {
		name    string
		fn      func(*store.Connection)
		wantErr error
	}{
		{"external id", func(c *store.Connection) { c.ExternalID = "chosen-by-client" }, store.ErrInvalid},
		{"external id emptied", func(c *store.Connection) { c.ExternalID = "" }, store.ErrInvalid},
		{"name", func(c *store.Connection) { c.Name = "other" }, store.ErrInvalid},
		{"role name", func(c *store.Connection) { c.RoleName = "Admin" }, store.ErrInvalid},
		{"unknown status", func(c *store.Connection) { c.Status = "running" }, store.ErrInvalid},
		{"revision and times ignored", func(c *store.Connection) {
			c.Revision = 100
			c.CreatedAt = time.Unix(0, 0)
			c.UpdatedAt = time.Unix(0, 0)
		}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := get(t, s, "acme")
			got, err := s.Update(ctx, "acme", "token-a", func(c *store.Connection) error { tt.fn(c); return nil })
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Update = %v, want %v", err, tt.wantErr)
			}
			after := get(t, s, "acme")
			if after.ExternalID != c.ExternalID || after.Name != c.Name || after.RoleName != c.RoleName {
				t.Errorf("stored %+v, want External ID, name and role of %+v", after, c)
			}
			if err != nil {
				if !reflect.DeepEqual(after, before) {
					t.Errorf("a refused Update wrote %+v, was %+v", after, before)
				}
				return
			}
			if got.Revision != before.Revision+1 || !got.CreatedAt.Equal(c.CreatedAt) || got.UpdatedAt.Before(before.UpdatedAt) {
				t.Errorf("Update = revision %d, created %v, updated %v; want %d, %v, not before %v", got.Revision, got.CreatedAt, got.UpdatedAt, before.Revision+1, c.CreatedAt, before.UpdatedAt)
			}
		})
	}
}

// testConcurrentUpdates increments a counter kept in the base path from
// many goroutines: a lost update shows as a lower count.
func testConcurrentUpdates(t *testing.T, open Opener) {
	s := openStore(t, open)
	create(t, s, "acme")
	c, err := s.Update(ctx, "acme", "token-a", edit(func(c *store.Connection) { c.BasePath = "n0/" }))
	if err != nil {
		t.Fatal(err)
	}
	const goroutines, each = 8, 10
	var wg sync.WaitGroup
	errs := make(chan error, goroutines*each)
	for range goroutines {
		wg.Go(func() {
			for range each {
				_, err := s.Update(ctx, "acme", "token-a", func(c *store.Connection) error {
					var n int
					if _, err := fmt.Sscanf(c.BasePath, "n%d/", &n); err != nil {
						return err
					}
					c.BasePath = fmt.Sprintf("n%d/", n+1)
					return nil
				})
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("Update: %v", err)
		}
	}
	got := get(t, s, "acme")
	if want := fmt.Sprintf("n%d/", goroutines*each); got.BasePath != want || got.Revision != c.Revision+goroutines*each {
		t.Errorf("after %d concurrent increments: base path %q revision %d, want %q revision %d", goroutines*each, got.BasePath, got.Revision, want, c.Revision+goroutines*each)
	}
	if got.ExternalID != c.ExternalID {
		t.Errorf("External ID changed under concurrent updates: %q, was %q", got.ExternalID, c.ExternalID)
	}
}

// step is one Update of the lifecycle table.
type step struct {
	name       string
	fn         func(c *store.Connection) error
	wantErr    error
	wantStatus store.Status
	// wantReason is a prefix of the StatusReason after the step.
	wantReason string
}

func validate(passed bool) func(c *store.Connection) error {
	return func(c *store.Connection) error { return c.RecordValidation(validation(*c, passed)) }
}

func activate(c *store.Connection) error { return c.Activate() }
func disable(c *store.Connection) error  { return c.Disable() }

func setStatus(s store.Status) func(c *store.Connection) error {
	return func(c *store.Connection) error { c.Status = s; return nil }
}

func edit(fn func(c *store.Connection)) func(c *store.Connection) error {
	return func(c *store.Connection) error { fn(c); return nil }
}

func testLifecycle(t *testing.T, open Opener) {
	s := openStore(t, open)
	tests := []struct {
		name  string
		steps []step
	}{
		{"wizard", []step{
			{"activate a draft", activate, store.ErrConflict, store.StatusDraft, "created"},
			{"validation fails", validate(false), nil, store.StatusDraft, "validation failed"},
			{"activate after failing", activate, store.ErrConflict, store.StatusDraft, "validation failed"},
			{"revalidate", validate(true), nil, store.StatusValidated, "validation passed"},
			{"activate", activate, nil, store.StatusActive, "activated"},
			{"activate again", activate, nil, store.StatusActive, "activated"},
		}},
		{"edit makes a draft", []step{
			{"validate", validate(true), nil, store.StatusValidated, "validation passed"},
			{"activate", activate, nil, store.StatusActive, "activated"},
			{"edit the region", edit(func(c *store.Connection) { c.Region = "us-east-1" }), nil, store.StatusDraft, "settings changed: region"},
			{"activate the edited", activate, store.ErrConflict, store.StatusDraft, "settings changed"},
			{"validate", validate(true), nil, store.StatusValidated, "validation passed"},
			{"edit base path and account", edit(func(c *store.Connection) { c.BasePath = "x/"; c.AccountID = "210987654321" }), nil, store.StatusDraft, "settings changed: account_id, base_path"},
		}},
		{"edits that change nothing checked", []step{
			{"validate", validate(true), nil, store.StatusValidated, "validation passed"},
			{"base path normalised the same", edit(func(c *store.Connection) { c.BasePath = "imports" }), nil, store.StatusValidated, "validation passed"},
		}},
		{"failed revalidation of an active connection", []step{
			{"validate", validate(true), nil, store.StatusValidated, "validation passed"},
			{"activate", activate, nil, store.StatusActive, "activated"},
			{"revalidation passes", validate(true), nil, store.StatusActive, "validation passed"},
			{"revalidation fails", validate(false), nil, store.StatusDraft, "validation failed"},
		}},
		{"disable and back", []step{
			{"disable a draft", disable, nil, store.StatusDisabled, "disabled"},
			{"activate a disabled", activate, store.ErrConflict, store.StatusDisabled, "disabled"},
			{"set active directly", setStatus(store.StatusActive), store.ErrConflict, store.StatusDisabled, "disabled"},
			{"failing validation keeps it disabled", validate(false), nil, store.StatusDisabled, "validation failed"},
			{"passing validation", validate(true), nil, store.StatusValidated, "validation passed"},
			{"activate", activate, nil, store.StatusActive, "activated"},
			{"disable", disable, nil, store.StatusDisabled, "disabled"},
		}},
		{"status set without the helpers", []step{
			{"draft to active", setStatus(store.StatusActive), store.ErrConflict, store.StatusDraft, "created"},
			{"draft to validated without a validation", setStatus(store.StatusValidated), store.ErrConflict, store.StatusDraft, "created"},
			{"validation passes, status kept", edit(func(c *store.Connection) { c.Validation = validation(*c, true) }), nil, store.StatusDraft, "validation passed"},
			{"validated with an old validation", setStatus(store.StatusValidated), store.ErrConflict, store.StatusDraft, "validation passed"},
			{"validated with a new one", func(c *store.Connection) error {
				c.Validation = validation(*c, true)
				c.Status = store.StatusValidated
				return nil
			}, nil, store.StatusValidated, "validation passed"},
			{"activate", activate, nil, store.StatusActive, "activated"},
			{"back to validated", setStatus(store.StatusValidated), store.ErrConflict, store.StatusActive, "activated"},
		}},
		{"settings changed while validating", []step{
			{"stale validation", func(c *store.Connection) error {
				v := validation(*c, true)
				c.Bucket = "edited-meanwhile"
				return c.RecordValidation(v)
			}, store.ErrConflict, store.StatusDraft, "created"},
			{"stale validation set directly", func(c *store.Connection) error {
				v := validation(*c, true)
				c.Bucket = "edited-meanwhile"
				c.Validation = v
				c.Status = store.StatusValidated
				return nil
			}, store.ErrConflict, store.StatusDraft, "created"},
		}},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			name := fmt.Sprintf("lifecycle-%d", i)
			create(t, s, name)
			for _, st := range tt.steps {
				before := get(t, s, name)
				_, err := s.Update(ctx, name, "token-a", st.fn)
				if !errors.Is(err, st.wantErr) {
					t.Fatalf("%s: Update = %v, want %v", st.name, err, st.wantErr)
				}
				if errors.Is(err, store.ErrConflict) && !strings.Contains(err.Error(), name) {
					t.Errorf("%s: conflict %q does not name the connection", st.name, err)
				}
				got := get(t, s, name)
				if got.Status != st.wantStatus || !strings.HasPrefix(got.StatusReason, st.wantReason) {
					t.Errorf("%s: status %s (%q), want %s (%s...)", st.name, got.Status, got.StatusReason, st.wantStatus, st.wantReason)
				}
				if err != nil && !reflect.DeepEqual(got, before) {
					t.Errorf("%s: a refused Update wrote %+v, was %+v", st.name, got, before)
				}
			}
		})
	}
}

func testTransitionsInOrder(t *testing.T, open Opener) {
	s := openStore(t, open)
	create(t, s, "acme")
	steps := []struct {
		by string
		fn func(c *store.Connection) error
	}{
		{"token-b", validate(false)},
		{"token-b", validate(true)},
		{"token-c", activate},
		{"token-c", activate}, // no change, no transition
		{"token-a", edit(func(c *store.Connection) { c.Bucket = "moved" })},
		{"token-a", edit(func(c *store.Connection) { c.Bucket = "moved-again" })}, // a draft edited: none
		{"token-b", disable},
	}
	for _, st := range steps {
		if _, err := s.Update(ctx, "acme", st.by, st.fn); err != nil {
			t.Fatalf("Update: %v", err)
		}
	}
	got, err := s.Transitions(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		by       string
		from, to store.Status
		reason   string
	}{
		{"token-a", "", store.StatusDraft, "created"},
		{"token-b", store.StatusDraft, store.StatusDraft, "validation failed: AssumeRole: access denied"},
		{"token-b", store.StatusDraft, store.StatusValidated, "validation passed: Connection successful. Found 3 files in bucket."},
		{"token-c", store.StatusValidated, store.StatusActive, "activated"},
		{"token-a", store.StatusActive, store.StatusDraft, "settings changed: bucket"},
		{"token-b", store.StatusDraft, store.StatusDisabled, "disabled"},
	}
	if len(got) != len(want) {
		t.Fatalf("Transitions = %d entries %+v, want %d", len(got), got, len(want))
	}
	for i, w := range want {
		g := got[i]
		if g.By != w.by || g.From != w.from || g.To != w.to || g.Reason != w.reason {
			t.Errorf("transition %d = %+v, want by %s %q→%q %q", i, g, w.by, w.from, w.to, w.reason)
		}
		if g.At.IsZero() || (i > 0 && g.At.Before(got[i-1].At)) {
			t.Errorf("transition %d at %v, after %v: want times in order", i, g.At, got[i-1].At)
		}
	}
	// Another connection's history is its own.
	create(t, s, "other")
	if tr, err := s.Transitions(ctx, "other"); err != nil || len(tr) != 1 {
		t.Errorf("Transitions(other) = %+v, %v; want its creation only", tr, err)
	}
}

func testDelete(t *testing.T, open Opener) {
	s := openStore(t, open)
	c := create(t, s, "acme")
	for _, fn := range []func(*store.Connection) error{validate(true), activate} {
		if _, err := s.Update(ctx, "acme", "token-a", fn); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Delete(ctx, "acme"); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("Delete of an active connection = %v, want ErrConflict", err)
	}
	if _, err := s.Update(ctx, "acme", "token-a", disable); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(ctx, "acme"); err != nil {
		t.Fatalf("Delete of a disabled connection: %v", err)
	}
	if _, err := s.Get(ctx, "acme"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Get after Delete = %v, want ErrNotFound", err)
	}
	if err := s.Delete(ctx, "acme"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("second Delete = %v, want ErrNotFound", err)
	}
	again := create(t, s, "acme")
	if again.ExternalID == c.ExternalID {
		t.Errorf("a connection created again kept the deleted one's External ID")
	}
	if tr, err := s.Transitions(ctx, "acme"); err != nil || len(tr) != 1 {
		t.Errorf("Transitions of the new acme = %+v, %v; want its creation only", tr, err)
	}
	// A draft may be deleted directly.
	if err := s.Delete(ctx, "acme"); err != nil {
		t.Errorf("Delete of a draft: %v", err)
	}
}

func testPersistence(t *testing.T, open Opener) {
	s, err := open()
	if err != nil {
		t.Fatal(err)
	}
	create(t, s, "acme")
	create(t, s, "bravo")
	for _, fn := range []func(*store.Connection) error{validate(true), activate} {
		if _, err := s.Update(ctx, "acme", "token-a", fn); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Delete(ctx, "bravo"); err != nil {
		t.Fatal(err)
	}
	list, err := s.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	transitions, err := s.Transitions(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if _, err := s.Get(ctx, "acme"); err == nil {
		t.Errorf("Get after Close succeeded, want an error")
	}

	s = openStore(t, open)
	if got, err := s.List(ctx); err != nil || !reflect.DeepEqual(got, list) {
		t.Errorf("List after reopening = %+v, %v\nwant %+v", got, err, list)
	}
	if got, err := s.Transitions(ctx, "acme"); err != nil || !reflect.DeepEqual(got, transitions) {
		t.Errorf("Transitions after reopening = %+v, %v\nwant %+v", got, err, transitions)
	}
	// The reopened store keeps enforcing and recording.
	if _, err := s.Update(ctx, "acme", "token-b", disable); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Transitions(ctx, "acme"); err != nil || len(got) != len(transitions)+1 {
		t.Errorf("Transitions after a change in the reopened store = %d, %v; want %d", len(got), err, len(transitions)+1)
	}
}

func testCanceledContext(t *testing.T, open Opener) {
	s := openStore(t, open)
	create(t, s, "acme")
	canceled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := s.Create(canceled, "bravo", settings("b"), "token-a"); !errors.Is(err, context.Canceled) {
		t.Errorf("Create with a canceled context = %v, want context.Canceled", err)
	}
	if _, err := s.Update(canceled, "acme", "token-a", disable); !errors.Is(err, context.Canceled) {
		t.Errorf("Update with a canceled context = %v, want context.Canceled", err)
	}
	if got := get(t, s, "acme"); got.Status != store.StatusDraft {
		t.Errorf("a canceled Update wrote: status %s", got.Status)
	}
	if _, err := s.Get(canceled, "bravo"); !errors.Is(err, context.Canceled) {
		t.Errorf("Get with a canceled context = %v, want context.Canceled", err)
	}
}
