package store

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"runtime/debug"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// Errors of Open, checked with errors.Is. Each message names the file.
var (
	// ErrLocked: another process holds the store (bbolt's exclusive lock)
	// for longer than the lock timeout.
	ErrLocked = errors.New("locked by another process")
	// ErrCorrupt: the file is not a bbolt database, or it is damaged
	// (truncated, bad checksums, unreadable records).
	ErrCorrupt = errors.New("corrupt or not an s3connector store")
	// ErrSchema: the file is a bbolt database but not in a schema this
	// release reads (another program's file, or a newer release's).
	ErrSchema = errors.New("unsupported schema")
)

// FileMode is the mode of the store's file: it holds External IDs.
const FileMode fs.FileMode = 0o600

// DefaultLockTimeout is how long Open waits for another process to release
// the file.
const DefaultLockTimeout = 2 * time.Second

// Option configures Open.
type Option func(*options)

type options struct {
	lockTimeout time.Duration
	now         func() time.Time
	migrations  []migration
}

// withMigrations replaces the schema's history, for tests of migrating.
func withMigrations(ms []migration) Option {
	return func(o *options) { o.migrations = ms }
}

// WithLockTimeout sets how long Open waits for the file's lock; default
// DefaultLockTimeout. It must be positive: bbolt would wait forever on 0.
func WithLockTimeout(d time.Duration) Option {
	return func(o *options) {
		if d > 0 {
			o.lockTimeout = d
		}
	}
}

// WithClock sets the store's clock (times of writes and transitions);
// default time.Now.
func WithClock(now func() time.Time) Option {
	return func(o *options) { o.now = now }
}

// Open opens the store in the file at path, creating it (mode 0600) when it
// does not exist; its directory must exist. An existing file more open than
// 0600 is set to 0600 and reported in Warnings (a Kubernetes fsGroup
// volume makes files group-readable at every mount).
//
// Open checks the whole file before use: a file that is not a bbolt
// database, is truncated or damaged, holds unreadable records
// (ErrCorrupt), or has a schema this release does not know (ErrSchema), is
// an error naming the path; nothing is ever emptied or rewritten to make it
// open. A file at an older schema version is migrated, all steps in one
// transaction. When another process holds the file, Open fails with
// ErrLocked after the lock timeout instead of waiting forever.
func Open(path string, opts ...Option) (*Bolt, error) {
	o := options{lockTimeout: DefaultLockTimeout, now: time.Now, migrations: migrations}
	for _, opt := range opts {
		opt(&o)
	}
	var warnings []string
	switch info, err := os.Stat(path); {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return nil, fmt.Errorf("store %s: %w", path, err)
	case !info.Mode().IsRegular():
		return nil, fmt.Errorf("store %s: not a regular file (%s)", path, info.Mode())
	case info.Mode().Perm()&^FileMode != 0:
		if err := os.Chmod(path, FileMode); err != nil {
			return nil, fmt.Errorf("store %s: mode %04o lets others read External IDs, and setting 0600 failed: %w", path, info.Mode().Perm(), err)
		}
		warnings = append(warnings, fmt.Sprintf("store %s: mode was %04o, set to 0600: the file holds External IDs", path, info.Mode().Perm()))
	}

	db, err := openBolt(path, o.lockTimeout)
	if err != nil {
		return nil, err
	}
	if err := checkFile(db, path); err != nil {
		_ = db.Close()
		return nil, err
	}
	var from int
	err = guard(func() error {
		return db.Update(func(tx *bolt.Tx) error {
			var err error
			from, err = migrate(tx, o.migrations)
			return err
		})
	})
	if err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("store %s: %w", path, err)
	}
	if err := guard(func() error { return db.View(readAll) }); err != nil {
		_ = db.Close()
		return nil, corrupt(path, err)
	}
	if latest := o.migrations[len(o.migrations)-1].to; from != 0 && from < latest {
		warnings = append(warnings, fmt.Sprintf("store %s: schema migrated from version %d to %d", path, from, latest))
	}
	return &Bolt{db: db, path: path, now: o.now, warnings: warnings}, nil
}

// openBolt opens the file, turning bbolt's errors and panics (it panics on
// some damaged files) into the store's.
func openBolt(path string, lockTimeout time.Duration) (*bolt.DB, error) {
	var file *os.File
	var db *bolt.DB
	err := guard(func() error {
		var err error
		db, err = bolt.Open(path, FileMode, &bolt.Options{
			Timeout: lockTimeout,
			// Keep the file so that a panic inside bolt.Open does not
			// leak it, and its lock, with the lost *DB.
			OpenFile: func(name string, flag int, perm fs.FileMode) (*os.File, error) {
				f, err := os.OpenFile(name, flag, perm)
				file = f
				return f, err
			},
		})
		return err
	})
	switch {
	case err == nil:
		return db, nil
	case errors.Is(err, berrors.ErrTimeout):
		return nil, fmt.Errorf("store %s: %w (waited %s): is another s3connector using this data directory?", path, ErrLocked, lockTimeout)
	case errors.Is(err, berrors.ErrInvalid), errors.Is(err, berrors.ErrChecksum), errors.Is(err, berrors.ErrVersionMismatch), errors.Is(err, ErrCorrupt):
		if db == nil && file != nil {
			_ = file.Close()
		}
		return nil, corrupt(path, err)
	case db == nil && file != nil:
		// bbolt reports a file too small to hold its meta pages, and the
		// like, in plain errors after it opened the file.
		_ = file.Close()
		return nil, corrupt(path, err)
	}
	return nil, fmt.Errorf("store %s: %w", path, err)
}

// checkFile reads every page the store reaches, so that damage is found at
// start-up, not by the first request that touches it.
func checkFile(db *bolt.DB, path string) error {
	info, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("store %s: %w", path, err)
	}
	err = guard(func() error {
		return db.View(func(tx *bolt.Tx) error {
			// tx.Size is the end of the last page the meta page
			// counts: beyond the file, the file was truncated.
			if tx.Size() > info.Size() {
				return fmt.Errorf("%w: the file is %d bytes, its pages reach %d: truncated", ErrCorrupt, info.Size(), tx.Size())
			}
			return tx.ForEach(func(name []byte, bk *bolt.Bucket) error { return walk(bk) })
		})
	})
	if err != nil {
		return corrupt(path, err)
	}
	return nil
}

// readAll decodes every record, so that an unreadable one fails Open rather
// than a later request.
func readAll(tx *bolt.Tx) error {
	err := tx.Bucket(connectionsBucket).ForEach(func(k, v []byte) error {
		_, err := decodeConnection(k, v)
		return err
	})
	if err != nil {
		return err
	}
	return tx.Bucket(transitionsBucket).ForEach(func(name, v []byte) error {
		tb := tx.Bucket(transitionsBucket).Bucket(name)
		if tb == nil {
			return fmt.Errorf("%w: transitions of %q: not a bucket", ErrCorrupt, name)
		}
		return tb.ForEach(func(k, v []byte) error {
			var r transitionRecord
			if err := decodeStrict(v, &r); err != nil {
				return fmt.Errorf("%w: connection %q: transition %x: %v", ErrCorrupt, name, k, err)
			}
			return nil
		})
	})
}

func walk(bk *bolt.Bucket) error {
	return bk.ForEach(func(k, v []byte) error {
		if v != nil {
			return nil
		}
		return walk(bk.Bucket(k))
	})
}

func corrupt(path string, err error) error {
	if !errors.Is(err, ErrCorrupt) {
		err = fmt.Errorf("%w: %w", ErrCorrupt, err)
	}
	return fmt.Errorf("store %s: %w: restore it from a backup, or move it away to start with an empty store", path, err)
}

// guard runs fn, turning a panic or a memory fault (bbolt reads the file
// through mmap: a page past the end of a truncated file faults) into an
// ErrCorrupt error.
func guard(fn func() error) (err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: reading it failed: %v", ErrCorrupt, r)
		}
	}()
	return fn()
}
