// Package store keeps the connections created through the admin API: their
// customer-set settings, what the server generated for them (External ID,
// role name), their lifecycle status and the record of every change of it.
//
// Users (the admin API, the supervisor) depend on the Store interface; Bolt
// is its implementation on an embedded bbolt file, and package storetest is
// the conformance suite every implementation runs.
//
// No credential is ever stored. The External IDs are not credentials, but
// they guard the customers' trust policies: treat the store's file and its
// backups as secrets.
package store

import (
	"context"
	"errors"
	"time"
)

// Errors returned by a Store, checked with errors.Is. The messages that wrap
// them name the connection and, for ErrConflict, say why, in words fit for
// the customer (an API answers 409 with err.Error()).
var (
	// ErrNotFound: no connection has the name.
	ErrNotFound = errors.New("not found")
	// ErrExists: Create was given a name already in use.
	ErrExists = errors.New("already exists")
	// ErrConflict: the change is not allowed in the connection's current
	// state, e.g. Activate without a passing validation of the current
	// settings, or Delete of an active connection.
	ErrConflict = errors.New("conflict")
	// ErrInvalid: the request itself is wrong whatever the state: a bad
	// name, an unknown status, or an Update that changes a field only the
	// store sets (Name, ExternalID, RoleName).
	ErrInvalid = errors.New("invalid")
)

// Store holds the API-created connections. Every method is one transaction:
// it sees and leaves the store consistent, and a method that returns an error
// has changed nothing. Methods are safe for concurrent use, also across the
// processes an implementation allows (Bolt allows one).
//
// Connections are returned by value; changing one changes nothing stored.
type Store interface {
	// List returns every connection, sorted by name.
	List(ctx context.Context) ([]Connection, error)

	// Get returns the named connection, or an error wrapping ErrNotFound.
	Get(ctx context.Context, name string) (Connection, error)

	// Create stores a new draft connection with the customer's settings and
	// returns it as stored. The store generates the External ID (from
	// crypto/rand, once: nothing ever changes it) and the role name
	// (config.RoleNamePrefix + name); neither is accepted from the caller.
	// The name must pass config.ValidateName (else ErrInvalid) and be unused
	// (else ErrExists). by identifies who asks (a token id) for the
	// Transition recording the creation. The base path is stored normalised
	// (config.NormalizeBasePath). Create checks no other setting: that is
	// the caller's validation.
	Create(ctx context.Context, name string, s Settings, by string) (Connection, error)

	// Update reads the named connection, calls fn with a copy, and writes
	// what fn left, atomically: no other write comes between the read and
	// the write. fn runs inside the transaction, so it must be quick and
	// must not call the Store; it is called once. If fn returns an error,
	// nothing is written and Update returns that error.
	//
	// fn may change the Settings, the Status (use Connection's Activate,
	// Disable and RecordValidation) and the Validation. Changing Name,
	// ExternalID or RoleName is ErrInvalid; Revision, CreatedAt and
	// UpdatedAt are set by the store whatever fn does.
	//
	// The store enforces the lifecycle (see Status): a status change the
	// lifecycle does not allow is ErrConflict; a validated or active
	// connection whose settings fn changes, or whose new validation failed,
	// becomes a draft. Every change of status, and every validation
	// recorded, appends a Transition with by, the store's time, the old and
	// new status and the reason (StatusReason). Update returns the
	// connection as stored.
	Update(ctx context.Context, name, by string, fn func(c *Connection) error) (Connection, error)

	// Delete removes the named connection and its transitions. Only a draft
	// or disabled connection may be deleted (else ErrConflict); nothing in
	// its bucket is touched. Keep an audit trail elsewhere: the name can be
	// created again, with a new External ID and an empty history.
	Delete(ctx context.Context, name string) error

	// Transitions returns the named connection's transitions, oldest first,
	// the first being its creation (From ""); ErrNotFound when there is no
	// such connection.
	Transitions(ctx context.Context, name string) ([]Transition, error)

	// Close releases the store (Bolt: the file and its lock). Methods called
	// after Close return an error.
	Close() error
}

// Settings are the fields of a connection the customer sets: the seeds' step
// 2 ("S3 Bucket") and an optional KMS key. They are what a validation
// checks, so changing any of them makes a validated or active connection a
// draft again.
type Settings struct {
	// AccountID is the customer's 12-digit AWS account id.
	AccountID string
	Bucket    string
	Region    string
	// BasePath is the key prefix of the connection's folders, "" or ending
	// with "/" (the store normalises it).
	BasePath string
	// KMSKeyARN is the customer-managed key of the bucket, if any.
	KMSKeyARN string
}

// Connection is a stored connection: the customer's Settings and what the
// server generated and keeps.
type Connection struct {
	// Name is the connection's unique key, set at creation, never changed.
	Name string
	Settings
	// ExternalID is generated by Create and never changed.
	ExternalID string
	// RoleName is the IAM role the customer creates, generated by Create
	// (config.RoleNamePrefix + Name) and never changed.
	RoleName string
	// Status is the lifecycle state; StatusReason says why the connection
	// is in it (the reason of its last transition).
	Status       Status
	StatusReason string
	// Validation is the last validation recorded; zero when never
	// validated.
	Validation Validation
	// Revision counts the writes of the connection, 1 after Create: an
	// ETag for the API.
	Revision uint64
	// CreatedAt and UpdatedAt are the store's times of Create and of the
	// last write.
	CreatedAt time.Time
	UpdatedAt time.Time
}

// Validation is the outcome of one validation of a connection.
type Validation struct {
	// Fingerprint is Connection.Fingerprint of the connection as it was
	// validated: the settings the result is for.
	Fingerprint string
	// At is when the validation ran.
	At time.Time
	// Passed reports whether every check passed.
	Passed bool
	// Result is a short customer-safe summary: the success line, or which
	// check failed and why.
	Result string
}

// Transition records one change of a connection's status, or one
// validation recorded (then From may equal To).
type Transition struct {
	// At is the store's time of the change.
	At time.Time
	// By identifies who made it: a token id, or the daemon's own name for
	// changes it makes by itself.
	By string
	// From is "" for the creation.
	From Status
	To   Status
	// Reason is why, in words fit for the customer: "created", "validation
	// passed: ...", "settings changed: bucket", "activated", "disabled".
	Reason string
}
