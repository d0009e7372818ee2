package archive

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
)

// maxBatch is the most keys one DeleteObjects request may carry.
const maxBatch = 1000

// deleteBatcher group-commits deletes: when no DeleteObjects request is in
// flight a delete goes out at once (in a batch of one); deletes arriving
// while one is in flight wait and leave together in the next batch. So an
// idle connection adds no latency and a busy one sends far fewer requests.
// Each entry carries its ETag, like a single conditional delete.
type deleteBatcher struct {
	m *Mover

	mu       sync.Mutex
	pending  []*pendingDelete
	inFlight bool
	// unsupported is set when the store does not implement DeleteObjects;
	// then every delete is a single DeleteObject.
	unsupported bool
}

type pendingDelete struct {
	src  Source
	done chan error
	// lead is signalled when this waiter is to send the next batch.
	lead chan struct{}
}

func newDeleteBatcher(m *Mover) *deleteBatcher { return &deleteBatcher{m: m} }

func (b *deleteBatcher) delete(ctx context.Context, src Source) error {
	if !xmlSafe(src.Key) {
		return b.m.deleteOne(ctx, src)
	}
	p := &pendingDelete{src: src, done: make(chan error, 1), lead: make(chan struct{}, 1)}
	b.mu.Lock()
	if b.unsupported {
		b.mu.Unlock()
		return b.m.deleteOne(ctx, src)
	}
	b.pending = append(b.pending, p)
	if !b.inFlight {
		b.inFlight = true
		p.lead <- struct{}{}
	}
	b.mu.Unlock()
	for {
		select {
		case err := <-p.done:
			return err
		case <-p.lead:
			b.sendBatch(ctx)
		}
	}
}

// sendBatch sends up to maxBatch pending deletes, then hands the lead to
// the oldest waiter, so no caller keeps flushing for others indefinitely.
func (b *deleteBatcher) sendBatch(ctx context.Context) {
	b.mu.Lock()
	n := min(len(b.pending), maxBatch)
	batch := b.pending[:n:n]
	b.pending = b.pending[n:]
	b.mu.Unlock()

	b.flush(ctx, batch)

	b.mu.Lock()
	if len(b.pending) == 0 {
		b.inFlight = false
	} else {
		b.pending[0].lead <- struct{}{}
	}
	b.mu.Unlock()
}

func (b *deleteBatcher) flush(ctx context.Context, batch []*pendingDelete) {
	objects := make([]types.ObjectIdentifier, len(batch))
	for i, p := range batch {
		// Pinned to the ETag, never to a version: see Mover.Delete.
		objects[i] = types.ObjectIdentifier{Key: aws.String(p.src.Key), ETag: aws.String(p.src.ETag)}
	}
	// The batch carries other callers' deletes: the leader's context must
	// not cut them off.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), finishTimeout)
	defer cancel()
	out, err := b.m.S3.DeleteObjects(ctx, &s3.DeleteObjectsInput{
		Bucket: &b.m.Bucket,
		Delete: &types.Delete{Objects: objects, Quiet: aws.Bool(true)},
	})
	if err != nil {
		var apiErr smithy.APIError
		if errors.As(err, &apiErr) && apiErr.ErrorCode() == "NotImplemented" {
			b.mu.Lock()
			b.unsupported = true
			b.mu.Unlock()
			for _, p := range batch {
				p.done <- b.m.deleteOne(ctx, p.src)
			}
			return
		}
		for _, p := range batch {
			p.done <- err
		}
		return
	}
	failed := make(map[string]error, len(out.Errors))
	for _, e := range out.Errors {
		failed[aws.ToString(e.Key)] = &BatchDeleteError{Code: aws.ToString(e.Code), Message: aws.ToString(e.Message)}
	}
	for _, p := range batch {
		p.done <- failed[p.src.Key]
	}
}

// xmlSafe reports whether key can travel in DeleteObjects' XML body as it
// is. XML 1.0 cannot carry most control characters (the SDK would send a
// replacement character, naming another key, which S3 reports as deleted
// because deleting a missing key succeeds), and a parser may normalise tab,
// CR and LF. Such keys are deleted one by one: DeleteObject carries the key
// in the URL.
func xmlSafe(key string) bool {
	for _, r := range key {
		if r < 0x20 || r == 0xFFFE || r == 0xFFFF || r == utf8.RuneError {
			return false
		}
	}
	return true
}

// BatchDeleteError is one key's failure inside a DeleteObjects response.
type BatchDeleteError struct{ Code, Message string }

func (e *BatchDeleteError) Error() string { return fmt.Sprintf("%s: %s", e.Code, e.Message) }

// ErrorCode and ErrorMessage let callers classify it like any S3 API error.
func (e *BatchDeleteError) ErrorCode() string    { return e.Code }
func (e *BatchDeleteError) ErrorMessage() string { return e.Message }
func (e *BatchDeleteError) ErrorFault() smithy.ErrorFault {
	return smithy.FaultUnknown
}
