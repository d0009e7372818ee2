package main

import (
	"context"
	"errors"
	"io"
)

// runMillion is the million-key case (s3connector-bench million ...).
func runMillion(ctx context.Context, argv []string, out io.Writer) error {
	return errors.New("million: not built yet")
}
