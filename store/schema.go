package store

import (
	"fmt"
	"strconv"

	bolt "go.etcd.io/bbolt"
)

// The file's layout, schema version 1:
//
//	meta/schema_version         decimal version, "1"
//	connections/<name>          connectionRecord as JSON
//	transitions/<name>/<seq>    transitionRecord as JSON; seq a big-endian
//	                            uint64 from the bucket's NextSequence, so
//	                            keys sort in the order written
var (
	metaBucket        = []byte("meta")
	schemaVersionKey  = []byte("schema_version")
	connectionsBucket = []byte("connections")
	transitionsBucket = []byte("transitions")
)

// migration turns a store of schema version to-1 into version to. It runs
// in the transaction that opens the store, with every other pending
// migration and the new version number: a failed migration leaves the file
// as it was.
type migration struct {
	to   int
	what string
	up   func(tx *bolt.Tx) error
}

// migrations is the schema's history, version 0 being a new, empty file.
// Append, never edit: a store written by a release is migrated from the
// version that release left.
var migrations = []migration{
	{to: 1, what: "buckets for connections and their transitions", up: func(tx *bolt.Tx) error {
		for _, name := range [][]byte{connectionsBucket, transitionsBucket} {
			if _, err := tx.CreateBucket(name); err != nil {
				return fmt.Errorf("create bucket %s: %w", name, err)
			}
		}
		return nil
	}},
}

// SchemaVersion is the version this release writes: the last of
// migrations.
const SchemaVersion = 1

// schemaVersion reads the version of the store in tx: 0 for a new file
// (no bucket at all), an error for a file that holds buckets but no version
// (not an s3connector store) or a version it cannot read.
func schemaVersion(tx *bolt.Tx) (int, error) {
	meta := tx.Bucket(metaBucket)
	if meta == nil {
		empty := true
		if err := tx.ForEach(func([]byte, *bolt.Bucket) error { empty = false; return nil }); err != nil {
			return 0, err
		}
		if !empty {
			return 0, fmt.Errorf("%w: a bbolt file without s3connector's schema version", ErrSchema)
		}
		return 0, nil
	}
	raw := meta.Get(schemaVersionKey)
	v, err := strconv.Atoi(string(raw))
	if err != nil || v < 1 {
		return 0, fmt.Errorf("%w: unreadable schema version %q", ErrSchema, raw)
	}
	return v, nil
}

// migrate brings the store in tx to the last version of ms, or fails
// leaving it for the caller to roll back. A version newer than ms knows is
// an error: the file was written by a newer release, and reading it as an
// older schema could lose what that release stored.
func migrate(tx *bolt.Tx, ms []migration) (from int, err error) {
	from, err = schemaVersion(tx)
	if err != nil {
		return 0, err
	}
	latest := ms[len(ms)-1].to
	if from > latest {
		return from, fmt.Errorf("%w: schema version %d is newer than this s3connector knows (%d): run the release that wrote it, or restore a backup made for this one", ErrSchema, from, latest)
	}
	if from == latest {
		return from, nil
	}
	for _, m := range ms[from:] {
		if err := m.up(tx); err != nil {
			return from, fmt.Errorf("migrate schema to version %d (%s): %w", m.to, m.what, err)
		}
	}
	meta, err := tx.CreateBucketIfNotExists(metaBucket)
	if err != nil {
		return from, err
	}
	return from, meta.Put(schemaVersionKey, []byte(strconv.Itoa(latest)))
}
