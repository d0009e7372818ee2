package main

// The bandwidth-capped large-file case (issue 10, goal 3). S3 gives a
// single connection a limited throughput and scales with concurrent
// connections: AWS's performance guidelines advise to "scale storage
// connections horizontally" and to use byte-range fetches, "concurrent
// connections to Amazon S3 to fetch different byte ranges from within the
// same object", for "higher aggregate throughput versus a single
// whole-object request" (Amazon S3 User Guide, Performance guidelines,
// https://docs.aws.amazon.com/AmazonS3/latest/userguide/optimizing-performance-guidelines.html).
// Loopback MinIO has no such limit, so this case puts a toxiproxy
// bandwidth toxic, which caps each connection on its own, on MinIO's
// responses, and runs the same binary twice over the large set: with its
// default download block (ranged GETs above 64 MiB) and with
// `download: {parallel_threshold: off}` (one GET per file), plus the plain
// loop (one GET per file, in this process).
//
// The cap applies to everything that goes through the proxy, but only GET
// bodies are large: CopyObject moves the bytes inside MinIO (server-side,
// as on S3) and answers with a few hundred bytes of XML, so the archive
// step costs the same in every variant and is not slowed by the cap, and
// the seeding goes straight to MinIO.

import (
	"context"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"github.com/s3connector/s3connector/config"
)

// single is the pipeline with parallel download turned off.
const single = "single"

// capped is what the capped case has of its own; zero in the others.
type capped struct {
	bandwidth int // KB/s per connection
	// variants and base: this case's variants and the one its ratio is
	// over; nil and "" mean the run's variants and the plain loop.
	variants         []string
	base             string
	singleConfigFile string
}

// bandwidthCase reports whether st asks for the capped case.
func bandwidthCase(st settings) bool { return st.large > 0 && st.bandwidth > 0 }

func (c *benchCase) variantsOf(all []string) []string {
	if c.variants != nil {
		return c.variants
	}
	return all
}

func (c *benchCase) ratioBase() string {
	if c.base != "" {
		return c.base
	}
	return plain
}

// newCappedCase is the large set s behind a proxy capping every
// connection's responses at st.bandwidth KB/s, with st.bandwidthWorkers
// workers: few enough that the parallel variant's aggregate (workers ×
// (1 + concurrency) connections at the cap) stays below what MinIO,
// toxiproxy and the pipeline can move on this machine's CPUs, so that the
// cap, not the CPU, is what limits a stream, as on S3.
func newCappedCase(ctx context.Context, tox *toxiproxy, upstream string, s *set, st settings) (*benchCase, error) {
	endpoint, err := tox.bandwidthProxy(ctx, "minio-bandwidth", upstream, st.bandwidth)
	if err != nil {
		return nil, err
	}
	variants := []string{pipeline, single}
	if slices.Contains(st.variants, plain) {
		variants = append(variants, plain)
	}
	w := st.bandwidthWorkers
	return &benchCase{
		name: fmt.Sprintf("%s-cap%dKBps-%dw", s.name, st.bandwidth, w), set: s, workers: w, endpoint: endpoint,
		connName: fmt.Sprintf("bench-%s-cap-%dw", s.name, w),
		capped:   capped{bandwidth: st.bandwidth, variants: variants, base: single},
	}, nil
}

// writeSingleStreamConfig writes, for a case with the single variant, the
// pipeline's configuration with parallel download turned off: the
// connection's download block, appended to the connection (the file ends
// in its importer block).
func (c *benchCase) writeSingleStreamConfig() error {
	if !slices.Contains(c.variants, single) {
		return nil
	}
	b, err := os.ReadFile(c.configFile)
	if err != nil {
		return err
	}
	c.singleConfigFile = strings.TrimSuffix(c.configFile, ".yaml") + "-single.yaml"
	b = append(b, "    download:\n      parallel_threshold: off\n"...)
	return os.WriteFile(c.singleConfigFile, b, 0o600)
}

// forVariant is c as the pipeline's process of variant sees it: the
// single variant reads the configuration with parallel download off.
func (c *benchCase) forVariant(variant string) *benchCase {
	if variant != single {
		return c
	}
	cc := *c
	cc.configFile = c.singleConfigFile
	return &cc
}

// writeLargeGoals prints, for the capped case, goal 3's two figures next
// to their targets: the pipeline's MB/s over the single stream's (≥ 2×),
// and the peak RSS of the pipeline's process against 64 MiB + part size ×
// parts in flight (each worker reading a large file holds up to
// concurrency parts; the first range is streamed, not held).
func writeLargeGoals(w io.Writer, cases []*benchCase, rows []row) {
	for _, c := range cases {
		if c.bandwidth == 0 {
			continue
		}
		var p, s *row
		for i := range rows {
			switch r := &rows[i]; {
			case r.caseName != c.name:
			case r.variant == pipeline:
				p = r
			case r.variant == single:
				s = r
			}
		}
		if p == nil || s == nil {
			continue
		}
		perStream := float64(c.bandwidth) * 1000
		fmt.Fprintf(w, "\nLarge files, %d × %s, each connection capped at %s MB/s (one %s stream: %.1f s), %d workers:\n",
			c.set.n, c.set.size, f1(perStream/1e6), c.set.size, float64(c.set.size)/perStream, c.workers)
		ratio := p.mbPerSec / s.mbPerSec
		fmt.Fprintf(w, "  pipeline %s MB/s vs single-stream GET %s MB/s: %.2f× (goal ≥ 2×: %s)\n", f1(p.mbPerSec), f1(s.mbPerSec), ratio, verdict(ratio >= 2))
		part, conc := int64(config.DefaultDownloadPartSize), config.DefaultDownloadConcurrency
		inFlight := min(c.workers, c.set.n) * conc
		bound := uint64(64<<20 + part*int64(inFlight))
		fmt.Fprintf(w, "  peak RSS of the pipeline's process %s MiB; bound 64 MiB + %s × %d parts in flight (%d workers × concurrency %d) = %s MiB: %s\n",
			f1(mib(p.peakRSS)), config.ByteSize(part), inFlight, min(c.workers, c.set.n), conc, f1(mib(bound)), verdict(p.peakRSS <= bound))
		fmt.Fprintf(w, "  (single stream's peak RSS %s MiB)\n", f1(mib(s.peakRSS)))
	}
}

func verdict(ok bool) string {
	if ok {
		return "met"
	}
	return "NOT met"
}
