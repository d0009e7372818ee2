package store

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	bolt "go.etcd.io/bbolt"
)

func TestMigrationsTable(t *testing.T) {
	for i, m := range migrations {
		if m.to != i+1 || m.what == "" || m.up == nil {
			t.Errorf("migrations[%d] = to %d %q: want to %d, described, with a step", i, m.to, m.what, i+1)
		}
	}
	if SchemaVersion != len(migrations) {
		t.Errorf("SchemaVersion = %d, want %d", SchemaVersion, len(migrations))
	}
}

// TestMigrate opens a version 1 store with a history that has a version 2:
// the migration runs once, in the open's transaction, and the data stays.
func TestMigrate(t *testing.T) {
	errStep := errors.New("step failed")
	extra := []byte("extra")
	tests := []struct {
		name        string
		step        func(tx *bolt.Tx) error
		wantErr     error
		wantVersion string
	}{
		{"succeeds", func(tx *bolt.Tx) error { _, err := tx.CreateBucket(extra); return err }, nil, "2"},
		// A failing step leaves the file at version 1 and without the
		// half-done change.
		{"fails", func(tx *bolt.Tx) error {
			if _, err := tx.CreateBucket(extra); err != nil {
				return err
			}
			return errStep
		}, errStep, "1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "store.db")
			s, err := Open(path)
			if err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			if _, err := s.Create(ctx, "acme", Settings{Bucket: "b"}, "token-a"); err != nil {
				t.Fatal(err)
			}
			_ = s.Close()

			history := append(append([]migration{}, migrations...), migration{to: 2, what: "an extra bucket", up: tt.step})
			s, err = Open(path, withMigrations(history))
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Open with a version 2 = %v, want %v", err, tt.wantErr)
			}
			if err != nil {
				if !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "version 2 (an extra bucket)") {
					t.Errorf("Open = %v, want the path and the migration named", err)
				}
				s, err = Open(path)
				if err != nil {
					t.Fatalf("Open at version 1 after a failed migration: %v", err)
				}
			} else if w := s.Warnings(); len(w) != 1 || !strings.Contains(w[0], "migrated from version 1 to 2") {
				t.Errorf("Warnings = %q, want the migration reported", w)
			}
			defer s.Close()
			err = s.db.View(func(tx *bolt.Tx) error {
				if got := string(tx.Bucket(metaBucket).Get(schemaVersionKey)); got != tt.wantVersion {
					t.Errorf("schema version = %q, want %q", got, tt.wantVersion)
				}
				if got := tx.Bucket(extra) != nil; got != (tt.wantErr == nil) {
					t.Errorf("migrated bucket present = %v, want %v", got, tt.wantErr == nil)
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := s.Get(ctx, "acme"); err != nil {
				t.Errorf("Get after migrating: %v", err)
			}
		})
	}
}
