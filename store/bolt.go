package store

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"github.com/s3connector/s3connector/config"
	"github.com/s3connector/s3connector/connector"
)

// Bolt is the Store on one bbolt file. One process at a time holds it (an
// exclusive lock on the file); within the process it is safe for concurrent
// use, writes being serialised by bbolt.
type Bolt struct {
	db       *bolt.DB
	path     string
	now      func() time.Time
	warnings []string
}

var _ Store = (*Bolt)(nil)

// Path is the file of the store.
func (b *Bolt) Path() string { return b.path }

// Warnings are what Open found and mended without failing, such as a file
// more open than 0600, for the caller to log.
func (b *Bolt) Warnings() []string { return b.warnings }

// Close releases the file and its lock.
func (b *Bolt) Close() error {
	if err := b.db.Close(); err != nil {
		return fmt.Errorf("store %s: close: %w", b.path, err)
	}
	return nil
}

// List implements Store.
func (b *Bolt) List(ctx context.Context) ([]Connection, error) {
	var out []Connection
	err := b.view(ctx, func(tx *bolt.Tx) error {
		return tx.Bucket(connectionsBucket).ForEach(func(k, v []byte) error {
			c, err := decodeConnection(k, v)
			if err != nil {
				return err
			}
			out = append(out, c)
			return nil
		})
	})
	return out, err
}

// Get implements Store.
func (b *Bolt) Get(ctx context.Context, name string) (Connection, error) {
	var c Connection
	err := b.view(ctx, func(tx *bolt.Tx) error {
		var err error
		c, err = getConnection(tx, name)
		return err
	})
	return c, err
}

// Create implements Store.
func (b *Bolt) Create(ctx context.Context, name string, s Settings, by string) (Connection, error) {
	if err := config.ValidateName(name); err != nil {
		return Connection{}, fmt.Errorf("connection name %q: %v: %w", name, err, ErrInvalid)
	}
	externalID, err := connector.NewExternalID()
	if err != nil {
		return Connection{}, err
	}
	s.BasePath = config.NormalizeBasePath(s.BasePath)
	now := b.clock()
	c := Connection{
		Name:         name,
		Settings:     s,
		ExternalID:   externalID,
		RoleName:     config.RoleNamePrefix + name,
		Status:       StatusDraft,
		StatusReason: "created",
		Revision:     1,
		CreatedAt:    now,
		UpdatedAt:    now,
	}
	err = b.update(ctx, func(tx *bolt.Tx) error {
		if tx.Bucket(connectionsBucket).Get([]byte(name)) != nil {
			return fmt.Errorf("connection %q: %w", name, ErrExists)
		}
		if err := putConnection(tx, c); err != nil {
			return err
		}
		return appendTransition(tx, name, Transition{At: now, By: by, From: "", To: StatusDraft, Reason: "created"})
	})
	if err != nil {
		return Connection{}, err
	}
	return c, nil
}

// Update implements Store.
func (b *Bolt) Update(ctx context.Context, name, by string, fn func(c *Connection) error) (Connection, error) {
	var c Connection
	err := b.update(ctx, func(tx *bolt.Tx) error {
		old, err := getConnection(tx, name)
		if err != nil {
			return err
		}
		c = old
		if err := fn(&c); err != nil {
			return err
		}
		c.Validation.At = c.Validation.At.UTC().Round(0)
		transition, err := settle(old, &c)
		if err != nil {
			return err
		}
		now := b.clock()
		c.Revision = old.Revision + 1
		c.CreatedAt = old.CreatedAt
		c.UpdatedAt = now
		if err := putConnection(tx, c); err != nil {
			return err
		}
		if !transition {
			return nil
		}
		return appendTransition(tx, name, Transition{At: now, By: by, From: old.Status, To: c.Status, Reason: c.StatusReason})
	})
	if err != nil {
		return Connection{}, err
	}
	return c, nil
}

// Delete implements Store.
func (b *Bolt) Delete(ctx context.Context, name string) error {
	return b.update(ctx, func(tx *bolt.Tx) error {
		c, err := getConnection(tx, name)
		if err != nil {
			return err
		}
		if c.Status != StatusDraft && c.Status != StatusDisabled {
			return conflictf("connection %q is %s: disable it before deleting it", name, c.Status)
		}
		if err := tx.Bucket(connectionsBucket).Delete([]byte(name)); err != nil {
			return err
		}
		err = tx.Bucket(transitionsBucket).DeleteBucket([]byte(name))
		if errors.Is(err, berrors.ErrBucketNotFound) {
			return nil
		}
		return err
	})
}

// Transitions implements Store.
func (b *Bolt) Transitions(ctx context.Context, name string) ([]Transition, error) {
	var out []Transition
	err := b.view(ctx, func(tx *bolt.Tx) error {
		if _, err := getConnection(tx, name); err != nil {
			return err
		}
		tb := tx.Bucket(transitionsBucket).Bucket([]byte(name))
		if tb == nil {
			return nil
		}
		return tb.ForEach(func(k, v []byte) error {
			var r transitionRecord
			if err := decodeStrict(v, &r); err != nil {
				return fmt.Errorf("connection %q: transition %x: %w: %v", name, k, ErrCorrupt, err)
			}
			out = append(out, r.transition())
			return nil
		})
	})
	return out, err
}

// clock returns the store's time in UTC without a monotonic reading, so a
// connection returned by a write equals the one read back.
func (b *Bolt) clock() time.Time { return b.now().UTC().Round(0) }

func (b *Bolt) view(ctx context.Context, fn func(tx *bolt.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return b.wrap(b.db.View(fn))
}

func (b *Bolt) update(ctx context.Context, fn func(tx *bolt.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return b.wrap(b.db.Update(fn))
}

// wrap names the file in bbolt's own errors; the store's errors already
// name the connection.
func (b *Bolt) wrap(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, berrors.ErrDatabaseNotOpen):
		return fmt.Errorf("store %s: closed: %w", b.path, err)
	case errors.Is(err, ErrCorrupt):
		return fmt.Errorf("store %s: %w", b.path, err)
	}
	return err
}

func getConnection(tx *bolt.Tx, name string) (Connection, error) {
	v := tx.Bucket(connectionsBucket).Get([]byte(name))
	if v == nil {
		return Connection{}, fmt.Errorf("connection %q: %w", name, ErrNotFound)
	}
	return decodeConnection([]byte(name), v)
}

func putConnection(tx *bolt.Tx, c Connection) error {
	v, err := json.Marshal(recordOf(c))
	if err != nil {
		return fmt.Errorf("connection %q: encode: %w", c.Name, err)
	}
	return tx.Bucket(connectionsBucket).Put([]byte(c.Name), v)
}

func appendTransition(tx *bolt.Tx, name string, t Transition) error {
	tb, err := tx.Bucket(transitionsBucket).CreateBucketIfNotExists([]byte(name))
	if err != nil {
		return fmt.Errorf("connection %q: transitions: %w", name, err)
	}
	seq, err := tb.NextSequence()
	if err != nil {
		return fmt.Errorf("connection %q: transitions: %w", name, err)
	}
	v, err := json.Marshal(transitionRecord{At: t.At, By: t.By, From: string(t.From), To: string(t.To), Reason: t.Reason})
	if err != nil {
		return fmt.Errorf("connection %q: encode transition: %w", name, err)
	}
	return tb.Put(binary.BigEndian.AppendUint64(nil, seq), v)
}

func decodeConnection(key, v []byte) (Connection, error) {
	var r connectionRecord
	if err := decodeStrict(v, &r); err != nil {
		return Connection{}, fmt.Errorf("connection %q: %w: %v", key, ErrCorrupt, err)
	}
	if r.Name != string(key) {
		return Connection{}, fmt.Errorf("connection %q: %w: record names %q", key, ErrCorrupt, r.Name)
	}
	return r.connection(), nil
}

// decodeStrict decodes one JSON value, rejecting unknown fields: a field
// this release does not know means the file was written by another schema.
func decodeStrict(v []byte, into any) error {
	d := json.NewDecoder(bytes.NewReader(v))
	d.DisallowUnknownFields()
	return d.Decode(into)
}

// connectionRecord is a Connection as schema version 1 stores it. The JSON
// names are the file's format: change them only with a migration.
type connectionRecord struct {
	Name         string            `json:"name"`
	AccountID    string            `json:"account_id"`
	Bucket       string            `json:"bucket"`
	Region       string            `json:"region"`
	BasePath     string            `json:"base_path"`
	KMSKeyARN    string            `json:"kms_key_arn,omitempty"`
	ExternalID   string            `json:"external_id"`
	RoleName     string            `json:"role_name"`
	Status       string            `json:"status"`
	StatusReason string            `json:"status_reason"`
	Validation   *validationRecord `json:"validation,omitempty"`
	Revision     uint64            `json:"revision"`
	CreatedAt    time.Time         `json:"created_at"`
	UpdatedAt    time.Time         `json:"updated_at"`
}

type validationRecord struct {
	Fingerprint string    `json:"fingerprint"`
	At          time.Time `json:"at"`
	Passed      bool      `json:"passed"`
	Result      string    `json:"result"`
}

type transitionRecord struct {
	At     time.Time `json:"at"`
	By     string    `json:"by"`
	From   string    `json:"from"`
	To     string    `json:"to"`
	Reason string    `json:"reason"`
}

func recordOf(c Connection) connectionRecord {
	r := connectionRecord{
		Name:         c.Name,
		AccountID:    c.AccountID,
		Bucket:       c.Bucket,
		Region:       c.Region,
		BasePath:     c.BasePath,
		KMSKeyARN:    c.KMSKeyARN,
		ExternalID:   c.ExternalID,
		RoleName:     c.RoleName,
		Status:       string(c.Status),
		StatusReason: c.StatusReason,
		Revision:     c.Revision,
		CreatedAt:    c.CreatedAt,
		UpdatedAt:    c.UpdatedAt,
	}
	if c.Validation != (Validation{}) {
		v := c.Validation
		r.Validation = &validationRecord{Fingerprint: v.Fingerprint, At: v.At, Passed: v.Passed, Result: v.Result}
	}
	return r
}

func (r connectionRecord) connection() Connection {
	c := Connection{
		Name: r.Name,
		Settings: Settings{
			AccountID: r.AccountID,
			Bucket:    r.Bucket,
			Region:    r.Region,
			BasePath:  r.BasePath,
			KMSKeyARN: r.KMSKeyARN,
		},
		ExternalID:   r.ExternalID,
		RoleName:     r.RoleName,
		Status:       Status(r.Status),
		StatusReason: r.StatusReason,
		Revision:     r.Revision,
		CreatedAt:    r.CreatedAt,
		UpdatedAt:    r.UpdatedAt,
	}
	if v := r.Validation; v != nil {
		c.Validation = Validation{Fingerprint: v.Fingerprint, At: v.At, Passed: v.Passed, Result: v.Result}
	}
	return c
}

func (r transitionRecord) transition() Transition {
	return Transition{At: r.At, By: r.By, From: Status(r.From), To: Status(r.To), Reason: r.Reason}
}
