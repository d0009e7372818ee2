package archive

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
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
//
// Callers do not send batches themselves: enqueue starts a sender goroutine
// when none is running, which sends batch after batch, one at a time, while
// deletes are pending, then ends. So a caller may go on with other work
// while its delete is in flight (Mover.MoveAsync) and read the answer from
// its channel later; every delete's answer is delivered, whoever waits.
type deleteBatcher struct {
	m *Mover

	mu       sync.Mutex
	pending  []*pendingDelete
	inFlight bool // a sender goroutine is running
	// unsupported is set when the store does not implement DeleteObjects;
	// then every delete is a single DeleteObject.
	unsupported bool
}

type pendingDelete struct {
	// ctx is the caller's; a batch is sent with its first entry's,
	// without its cancellation (see flush).
	ctx  context.Context
	src  Source
	done chan error
	// answered is set once done has its answer; only the sender
	// goroutine touches it.
	answered bool
}

// answer delivers p's answer (once: done holds one).
func (p *pendingDelete) answer(err error) {
	p.answered = true
	p.done <- err
}

func newDeleteBatcher(m *Mover) *deleteBatcher { return &deleteBatcher{m: m} }

// enqueue adds src to the next batch and returns the channel its answer
// arrives on; ok is false when the store has no DeleteObjects, and the
// caller deletes src on its own.
func (b *deleteBatcher) enqueue(ctx context.Context, src Source) (done <-chan error, ok bool) {
	p := &pendingDelete{ctx: ctx, src: src, done: make(chan error, 1)}
	b.mu.Lock()
	if b.unsupported {
		b.mu.Unlock()
		return nil, false
	}
	b.pending = append(b.pending, p)
	start := !b.inFlight
	b.inFlight = true
	b.mu.Unlock()
	if start {
		go b.send()
	}
	return p.done, true
}

// send sends up to maxBatch pending deletes at a time until none is left.
func (b *deleteBatcher) send() {
	for {
		b.mu.Lock()
		if len(b.pending) == 0 {
			b.inFlight = false
			b.mu.Unlock()
			return
		}
		n := min(len(b.pending), maxBatch)
		batch := b.pending[:n:n]
		b.pending = b.pending[n:]
		b.mu.Unlock()
		b.flushSafely(batch)
	}
}

// flushSafely is flush surviving a panic (in the SDK, or on a malformed
// answer), which would otherwise end the whole process from this
// goroutine: every delete of the batch not answered yet gets it as its
// error (*PanicError, with the stack for the caller's log), as it would
// get the request's error, and the sender goes on with the next batch.
func (b *deleteBatcher) flushSafely(batch []*pendingDelete) {
	defer func() {
		if v := recover(); v != nil {
			pe := &PanicError{Value: v, Stack: debug.Stack()}
			for _, p := range batch {
				if !p.answered {
					p.answer(pe)
				}
			}
		}
	}()
	b.flush(batch)
}

func (b *deleteBatcher) flush(batch []*pendingDelete) {
	objects := make([]types.ObjectIdentifier, len(batch))
	for i, p := range batch {
		// Pinned to the ETag, never to a version: see Mover.Delete.
		objects[i] = types.ObjectIdentifier{Key: aws.String(p.src.Key), ETag: aws.String(p.src.ETag)}
	}
	// The batch carries many callers' deletes: one caller's context must
	// not cut the others off.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(batch[0].ctx), finishTimeout)
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
				p.answer(b.m.deleteOne(ctx, p.src))
			}
			return
		}
		for _, p := range batch {
			p.answer(err)
		}
		return
	}
	failed := make(map[string]error, len(out.Errors))
	for _, e := range out.Errors {
		failed[aws.ToString(e.Key)] = &BatchDeleteError{Code: aws.ToString(e.Code), Message: aws.ToString(e.Message)}
	}
	for _, p := range batch {
		p.answer(failed[p.src.Key])
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
