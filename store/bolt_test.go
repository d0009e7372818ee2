package store_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/s3connector/s3connector/store"
	"github.com/s3connector/s3connector/store/storetest"
)

func TestBoltConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) storetest.Opener {
		path := filepath.Join(t.TempDir(), "store.db")
		return func() (store.Store, error) { return store.Open(path) }
	})
}

// newStoreFile returns the path of a closed store holding one connection
// with a transition history.
func newStoreFile(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "store.db")
	s, err := store.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, name := range []string{"acme", "bravo", "charlie"} {
		if _, err := s.Create(ctx, name, store.Settings{AccountID: "123456789012", Bucket: name, Region: "eu-west-1"}, "token-a"); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Update(ctx, name, "token-a", func(c *store.Connection) error { return c.Disable() }); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestOpenFileMode(t *testing.T) {
	path := filepath.Join(t.TempDir(), "store.db")
	s, err := store.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if w := s.Warnings(); len(w) != 0 {
		t.Errorf("Warnings of a new store = %q, want none", w)
	}
	_ = s.Close()
	if info, err := os.Stat(path); err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("new store file mode = %v, %v; want 0600", info.Mode(), err)
	}

	tests := []os.FileMode{0o644, 0o660, 0o666}
	for _, mode := range tests {
		if err := os.Chmod(path, mode); err != nil {
			t.Fatal(err)
		}
		s, err := store.Open(path)
		if err != nil {
			t.Fatalf("Open of a %04o file: %v", mode, err)
		}
		w := s.Warnings()
		_ = s.Close()
		if len(w) != 1 || !strings.Contains(w[0], path) || !strings.Contains(w[0], "0600") {
			t.Errorf("Warnings after opening a %04o file = %q, want one naming the path and 0600", mode, w)
		}
		if info, _ := os.Stat(path); info.Mode().Perm() != 0o600 {
			t.Errorf("mode after opening a %04o file = %04o, want 0600", mode, info.Mode().Perm())
		}
	}
}

// TestOpenDamaged: a file that cannot be read as a store is an error naming
// it, and the file is left as it was for the operator to restore or move.
func TestOpenDamaged(t *testing.T) {
	path := newStoreFile(t)
	good, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	// The file may be longer than its pages reach (bbolt grows it in
	// steps); used is what its meta page counts.
	var used int
	rawView(t, path, func(tx *bolt.Tx) error { used = int(tx.Size()); return nil })
	const page = 4096
	if used <= 3*page {
		t.Fatalf("test store uses %d bytes, want more than 3 pages", used)
	}
	tests := []struct {
		name    string
		content []byte
		wantErr error
	}{
		{"garbage", []byte(strings.Repeat("this is not a database\n", 1000)), store.ErrCorrupt},
		{"few bytes", []byte("{}"), store.ErrCorrupt},
		{"truncated to one page", good[:page], store.ErrCorrupt},
		{"truncated to the meta pages", good[:2*page], store.ErrCorrupt},
		{"truncated by a page", good[:used-page], store.ErrCorrupt},
		{"truncated by a byte", good[:used-1], store.ErrCorrupt},
		{"meta pages zeroed", append(make([]byte, 2*page), good[2*page:]...), store.ErrCorrupt},
		{"data pages zeroed", append(append([]byte{}, good[:2*page]...), make([]byte, len(good)-2*page)...), store.ErrCorrupt},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "store.db")
			if err := os.WriteFile(path, tt.content, 0o600); err != nil {
				t.Fatal(err)
			}
			s, err := store.Open(path)
			if err == nil {
				_ = s.Close()
				t.Fatalf("Open succeeded, want %v", tt.wantErr)
			}
			t.Logf("Open: %v", err)
			if !errors.Is(err, tt.wantErr) || !strings.Contains(err.Error(), path) {
				t.Errorf("Open = %v, want %v naming %s", err, tt.wantErr, path)
			}
			if got, _ := os.ReadFile(path); string(got) != string(tt.content) {
				t.Errorf("Open changed the damaged file")
			}
		})
	}
}

// TestOpenDamagedRecord: a record this release cannot decode fails Open
// rather than the request that reads it.
func TestOpenDamagedRecord(t *testing.T) {
	tests := []struct {
		name string
		put  func(tx *bolt.Tx) error
	}{
		{"invalid JSON", func(tx *bolt.Tx) error {
			return tx.Bucket([]byte("connections")).Put([]byte("acme"), []byte("{not json"))
		}},
		{"unknown field", func(tx *bolt.Tx) error {
			return tx.Bucket([]byte("connections")).Put([]byte("acme"), []byte(`{"name":"acme","secret_key":"x"}`))
		}},
		{"key and name differ", func(tx *bolt.Tx) error {
			return tx.Bucket([]byte("connections")).Put([]byte("acme"), []byte(`{"name":"other"}`))
		}},
		{"transition", func(tx *bolt.Tx) error {
			return tx.Bucket([]byte("transitions")).Bucket([]byte("acme")).Put([]byte{0, 0, 0, 0, 0, 0, 0, 1}, []byte("[]"))
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := newStoreFile(t)
			rawUpdate(t, path, tt.put)
			s, err := store.Open(path)
			if err == nil {
				_ = s.Close()
				t.Fatal("Open succeeded, want ErrCorrupt")
			}
			if !errors.Is(err, store.ErrCorrupt) || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "acme") {
				t.Errorf("Open = %v, want ErrCorrupt naming %s and the connection", err, path)
			}
		})
	}
}

func TestOpenSchema(t *testing.T) {
	tests := []struct {
		name    string
		put     func(tx *bolt.Tx) error
		wantErr string
	}{
		{"newer version", func(tx *bolt.Tx) error {
			return tx.Bucket([]byte("meta")).Put([]byte("schema_version"), []byte("2"))
		}, "schema version 2 is newer than this s3connector knows (1)"},
		{"unreadable version", func(tx *bolt.Tx) error {
			return tx.Bucket([]byte("meta")).Put([]byte("schema_version"), []byte("one"))
		}, `unreadable schema version "one"`},
		{"another program's file", func(tx *bolt.Tx) error {
			return tx.DeleteBucket([]byte("meta"))
		}, "without s3connector's schema version"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := newStoreFile(t)
			rawUpdate(t, path, tt.put)
			before, _ := os.ReadFile(path)
			s, err := store.Open(path)
			if err == nil {
				_ = s.Close()
				t.Fatal("Open succeeded, want ErrSchema")
			}
			if !errors.Is(err, store.ErrSchema) || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("Open = %v, want ErrSchema naming %s and %q", err, path, tt.wantErr)
			}
			if after, _ := os.ReadFile(path); string(after) != string(before) {
				t.Errorf("Open changed a store it refused")
			}
		})
	}
}

func TestOpenLocked(t *testing.T) {
	path := filepath.Join(t.TempDir(), "store.db")
	first, err := store.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	// bbolt's lock is flock(2) on its own descriptor, so a second Open in
	// this process contends as another process would.
	start := time.Now()
	second, err := store.Open(path, store.WithLockTimeout(200*time.Millisecond))
	if err == nil {
		_ = second.Close()
		t.Fatal("second Open succeeded while the first holds the file")
	}
	if !errors.Is(err, store.ErrLocked) || !strings.Contains(err.Error(), path) {
		t.Errorf("second Open = %v, want ErrLocked naming %s", err, path)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("second Open took %v, want about the lock timeout", d)
	}
	if _, err := first.List(context.Background()); err != nil {
		t.Errorf("the first store after a refused second Open: %v", err)
	}
}

func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name string
		path string
	}{
		{"missing directory", filepath.Join(dir, "missing", "store.db")},
		{"a directory", dir},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := store.Open(tt.path)
			if err == nil {
				_ = s.Close()
				t.Fatal("Open succeeded")
			}
			if !strings.Contains(err.Error(), tt.path) {
				t.Errorf("Open = %v, want the path %s named", err, tt.path)
			}
		})
	}
}

// TestOpenEmptyFile: a zero-length file (created by the operator, or by a
// crash before bbolt wrote its first pages) holds nothing to lose and opens
// as a new store.
func TestOpenEmptyFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "store.db")
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := store.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if list, err := s.List(context.Background()); err != nil || len(list) != 0 {
		t.Errorf("List = %v, %v; want empty", list, err)
	}
}

func rawView(t *testing.T, path string, fn func(tx *bolt.Tx) error) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second, ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.View(fn); err != nil {
		t.Fatal(err)
	}
}

// rawUpdate changes the file behind the store's back, as damage or another
// release would.
func rawUpdate(t *testing.T, path string, fn func(tx *bolt.Tx) error) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(fn); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
}
