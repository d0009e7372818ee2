package archive

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

// A move's context outlives its run's cancellation by the grace, and has
// no deadline of its own otherwise (a long multipart copy must not be cut
// off at finishTimeout when nobody cancelled it).
func TestFinishContext(t *testing.T) {
	const grace = 50 * time.Millisecond

	t.Run("not cancelled: no time limit", func(t *testing.T) {
		ctx, cancel := finishContext(context.Background(), grace)
		defer cancel()
		if _, ok := ctx.Deadline(); ok {
			t.Error("the move's context has a deadline")
		}
		time.Sleep(4 * grace)
		if err := ctx.Err(); err != nil {
			t.Fatalf("the move's context ended on its own: %v", err)
		}
	})

	t.Run("cancelled run: grace, then the end", func(t *testing.T) {
		parent, cancelParent := context.WithCancel(context.Background())
		ctx, cancel := finishContext(parent, grace)
		defer cancel()
		cancelParent()
		if err := ctx.Err(); err != nil {
			t.Fatalf("the move's context ended with its run: %v", err)
		}
		select {
		case <-ctx.Done():
		case <-time.After(10 * time.Second):
			t.Fatal("the move's context outlived the grace")
		}
		cause := context.Cause(ctx)
		if !errors.Is(cause, context.DeadlineExceeded) || !strings.Contains(cause.Error(), "after its run was cancelled") {
			t.Errorf("cause %v", cause)
		}
	})

	t.Run("finished move: cancel ends it", func(t *testing.T) {
		ctx, cancel := finishContext(context.Background(), time.Hour)
		cancel()
		if ctx.Err() == nil {
			t.Error("cancel did not end the context")
		}
	})
}
