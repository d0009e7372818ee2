package config

import (
	"fmt"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Defaults and limits of a connection's download block. The part size
// follows AWS's guidance for byte-range fetches ("typical sizes for
// byte-range requests are 8 MB or 16 MB", Best Practices Design Patterns:
// Optimizing Amazon S3 Performance, "Use byte-range fetches",
// https://docs.aws.amazon.com/whitepapers/latest/s3-optimizing-performance-best-practices/use-byte-range-fetches.html):
// concurrent connections, each fetching its own range of the object, get a
// higher aggregate throughput than one request for the whole object.
const (
	DefaultDownloadParallelThreshold ByteSize = 64 << 20
	DefaultDownloadPartSize          ByteSize = 8 << 20
	DefaultDownloadConcurrency                = 4

	// MinDownloadPartSize keeps a large file from costing a GET request
	// (billed per request) for every few kilobytes.
	MinDownloadPartSize ByteSize = 1 << 20
	// MaxDownloadPartSize bounds one part buffer: a worker reading a large
	// file holds up to concurrency of them.
	MaxDownloadPartSize    ByteSize = 1 << 30
	MaxDownloadConcurrency          = 64
)

// Download tunes how a connection reads a file's body. A file of at least
// ParallelThreshold is read as ranged GETs of PartSize, Concurrency of them
// fetched ahead at a time, every range pinned to the listed ETag, and
// handed to the importer in order; a smaller file is one streamed GET. A
// worker reading a large file holds up to Concurrency part buffers, so the
// memory of a connection grows by at most workers × concurrency × part_size.
type Download struct {
	// ParallelThreshold is a size, or off to read every file with a single
	// GET. Default DefaultDownloadParallelThreshold; at least PartSize.
	ParallelThreshold Threshold `yaml:"parallel_threshold"`
	// PartSize is the size of each range, MinDownloadPartSize to
	// MaxDownloadPartSize; default DefaultDownloadPartSize.
	PartSize ByteSize `yaml:"part_size"`
	// Concurrency is how many ranges of one file are in memory or in
	// flight at once, 1 to MaxDownloadConcurrency; default
	// DefaultDownloadConcurrency.
	Concurrency int `yaml:"concurrency"`
}

// Threshold is a size or, written "off" in YAML, no threshold at all.
// An explicit 0 is refused by Validate: it could mean either.
type Threshold struct {
	Size ByteSize
	Off  bool
	// zero records an explicit 0, told apart from an unset value (which
	// takes the default) only so that Validate can refuse it.
	zero bool
}

// Off is the Threshold that turns the feature off.
var Off = Threshold{Off: true}

// UnmarshalYAML implements yaml.Unmarshaler.
func (t *Threshold) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode && strings.EqualFold(strings.TrimSpace(n.Value), "off") {
		*t = Off
		return nil
	}
	var size ByteSize
	if err := size.UnmarshalYAML(n); err != nil {
		return fmt.Errorf("%w, or off", err)
	}
	*t = Threshold{Size: size, zero: size == 0 && !strings.Contains(n.Value, "${")}
	return nil
}

// String is "off" or the size.
func (t Threshold) String() string {
	if t.Off {
		return "off"
	}
	return t.Size.String()
}

func (d *Download) applyDefaults() {
	if !d.ParallelThreshold.Off && d.ParallelThreshold.Size == 0 && !d.ParallelThreshold.zero {
		d.ParallelThreshold.Size = DefaultDownloadParallelThreshold
	}
	if d.PartSize == 0 {
		d.PartSize = DefaultDownloadPartSize
	}
	if d.Concurrency == 0 {
		d.Concurrency = DefaultDownloadConcurrency
	}
}

func (d *Download) validate(path string, p *problems) {
	partOK := d.PartSize >= MinDownloadPartSize && d.PartSize <= MaxDownloadPartSize
	if !partOK {
		p.addf(path+".part_size", "must be between %s and %s, got %s", MinDownloadPartSize, MaxDownloadPartSize, d.PartSize)
	}
	if d.Concurrency < 1 || d.Concurrency > MaxDownloadConcurrency {
		p.addf(path+".concurrency", "must be between 1 and %d, got %d", MaxDownloadConcurrency, d.Concurrency)
	}
	t := d.ParallelThreshold
	switch {
	case t.Off:
	case t.zero:
		p.addf(path+".parallel_threshold", "0 is not a threshold: write off to read every file with a single GET, or a size such as %s (the default)", DefaultDownloadParallelThreshold)
	case partOK && t.Size < d.PartSize:
		p.addf(path+".parallel_threshold", "must be at least part_size (%s), got %s: a file of one part is read with a single GET anyway; write off to turn parallel downloads off", d.PartSize, t.Size)
	}
}
