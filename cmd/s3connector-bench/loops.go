package main

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/s3connector/s3connector/archive"
	"github.com/s3connector/s3connector/connector"
)

// loopRun is a baseline: the pipeline's S3 calls with the same concurrency
// and nothing else. One goroutine pages ListObjectsV2 into a queue of
// `workers` files; `workers` goroutines each GetObject (read to io.Discard)
// and CopyObject to archive/ under the pipeline's naming, with its
// conditional headers (If-Match, CopySourceIfMatch, If-None-Match). The
// naive loop then deletes each file with its own DeleteObject (If-Match);
// the plain loop defers every delete to the end and sends them in
// DeleteObjects batches of 1,000, each entry carrying its ETag. It returns
// the files and bytes moved; the first failure stops it.
func loopRun(ctx context.Context, client *connector.FastS3, bucket, base string, workers int, deferDeletes bool) (int, int64, error) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	type object struct{ key, etag string }
	skipArchive, skipError := base+string(archive.Archive), base+string(archive.Error)
	queue := make(chan object, workers)
	var (
		files   atomic.Int64
		moved   atomic.Int64
		wg      sync.WaitGroup
		mu      sync.Mutex
		deletes []types.ObjectIdentifier
	)
	wg.Go(func() {
		defer close(queue)
		p := s3.NewListObjectsV2Paginator(client, &s3.ListObjectsV2Input{Bucket: &bucket, Prefix: &base})
		for p.HasMorePages() {
			page, err := p.NextPage(ctx)
			if err != nil {
				cancel(fmt.Errorf("list: %w", err))
				return
			}
			for _, o := range page.Contents {
				key := aws.ToString(o.Key)
				if strings.HasSuffix(key, "/") || strings.HasPrefix(key, skipArchive) || strings.HasPrefix(key, skipError) {
					continue
				}
				select {
				case queue <- object{key: key, etag: aws.ToString(o.ETag)}:
				case <-ctx.Done():
					return
				}
			}
		}
	})
	for range workers {
		wg.Go(func() {
			for o := range queue {
				if ctx.Err() != nil {
					continue // drain the queue so the lister can stop
				}
				n, err := copyOne(ctx, client, bucket, base, o.key, o.etag)
				if err == nil && !deferDeletes {
					_, err = client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: &bucket, Key: &o.key, IfMatch: &o.etag})
					if err != nil {
						err = fmt.Errorf("delete %q: %w", o.key, err)
					}
				}
				if err != nil {
					cancel(err)
					continue
				}
				if deferDeletes {
					mu.Lock()
					deletes = append(deletes, types.ObjectIdentifier{Key: aws.String(o.key), ETag: aws.String(o.etag)})
					mu.Unlock()
				}
				files.Add(1)
				moved.Add(n)
			}
		})
	}
	wg.Wait()
	if err := context.Cause(ctx); err != nil {
		return int(files.Load()), moved.Load(), err
	}
	for chunk := range slices.Chunk(deletes, 1000) {
		out, err := client.DeleteObjects(ctx, &s3.DeleteObjectsInput{Bucket: &bucket, Delete: &types.Delete{Objects: chunk, Quiet: aws.Bool(true)}})
		if err != nil {
			return 0, 0, fmt.Errorf("delete batch: %w", err)
		}
		if len(out.Errors) > 0 {
			return 0, 0, fmt.Errorf("delete batch: %d keys not deleted, first %s: %s", len(out.Errors), aws.ToString(out.Errors[0].Key), aws.ToString(out.Errors[0].Message))
		}
	}
	return int(files.Load()), moved.Load(), nil
}

// copyOne is GetObject (read to the end) and CopyObject to archive/ under
// the pipeline's naming, with the pipeline's conditional headers.
func copyOne(ctx context.Context, client *connector.FastS3, bucket, base, key, etag string) (int64, error) {
	obj, err := client.GetObject(ctx, &s3.GetObjectInput{Bucket: &bucket, Key: &key, IfMatch: &etag})
	if err != nil {
		return 0, fmt.Errorf("get %q: %w", key, err)
	}
	n, err := io.Copy(io.Discard, obj.Body)
	obj.Body.Close()
	if err != nil {
		return 0, fmt.Errorf("read %q: %w", key, err)
	}
	dest := archive.DestKey(base, archive.Archive, strings.TrimPrefix(key, base), archive.Version{ETag: etag, Modified: aws.ToTime(obj.LastModified)})
	_, err = client.CopyObject(ctx, &s3.CopyObjectInput{
		Bucket: &bucket, Key: &dest,
		CopySource:        aws.String(archive.CopySource(bucket, key)),
		CopySourceIfMatch: &etag,
		IfNoneMatch:       aws.String("*"),
		MetadataDirective: types.MetadataDirectiveCopy,
		TaggingDirective:  types.TaggingDirectiveCopy,
	})
	if err != nil {
		return 0, fmt.Errorf("copy %q to %q: %w", key, dest, err)
	}
	return n, nil
}
