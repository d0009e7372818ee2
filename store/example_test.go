package store_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/s3connector/s3connector/store"
)

// The wizard as the admin API drives it: create, validate (the checks run
// outside the transaction; the result is recorded against the settings they
// checked), activate, and a refused activation after an edit.
func Example() {
	dir, _ := os.MkdirTemp("", "store-example")
	defer os.RemoveAll(dir)
	st, err := store.Open(filepath.Join(dir, "store.db"))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer st.Close()
	ctx := context.Background()

	c, _ := st.Create(ctx, "acme", store.Settings{AccountID: "123456789012", Bucket: "acme-data", Region: "eu-west-1"}, "token-1")
	fmt.Println(c.Status, c.RoleName, len(c.ExternalID))

	// Validate: run the checks on c, then record what they found.
	checked := c.Fingerprint()
	c, _ = st.Update(ctx, "acme", "token-1", func(c *store.Connection) error {
		return c.RecordValidation(store.Validation{Fingerprint: checked, At: time.Now(), Passed: true, Result: "Connection successful. Found 3 files in bucket."})
	})
	fmt.Println(c.Status)

	c, _ = st.Update(ctx, "acme", "token-1", func(c *store.Connection) error { return c.Activate() })
	fmt.Println(c.Status)

	// Editing where the connection points makes it a draft again.
	c, _ = st.Update(ctx, "acme", "token-2", func(c *store.Connection) error { c.Bucket = "acme-other"; return nil })
	fmt.Println(c.Status, "-", c.StatusReason)
	_, err = st.Update(ctx, "acme", "token-2", func(c *store.Connection) error { return c.Activate() })
	fmt.Println(errors.Is(err, store.ErrConflict), "-", err)

	transitions, _ := st.Transitions(ctx, "acme")
	for _, t := range transitions {
		fmt.Printf("%s: %q -> %s (%s)\n", t.By, t.From, t.To, t.Reason)
	}
	// Output:
	// draft s3connector-acme 32
	// validated
	// active
	// draft - settings changed: bucket
	// true - connection "acme" cannot be activated: the settings changed since the last validation
	// token-1: "" -> draft (created)
	// token-1: "draft" -> validated (validation passed: Connection successful. Found 3 files in bucket.)
	// token-1: "validated" -> active (activated)
	// token-2: "active" -> draft (settings changed: bucket)
}
