package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/s3connector/s3connector/config"
	"github.com/s3connector/s3connector/connector"
	"github.com/s3connector/s3connector/ingest"
	"github.com/s3connector/s3connector/metrics"
)

// closeCounter is a registered importer that is an io.Closer and counts
// what happens to it.
type closeCounter struct {
	t          *testing.T
	connection string
	generation int

	mu      sync.Mutex
	imports int
	closes  int
}

func (c *closeCounter) Import(_ context.Context, f ingest.File, body io.Reader) error {
	c.mu.Lock()
	if c.closes > 0 {
		c.t.Errorf("Import(%q) on the closed importer of %s (generation %d)", f.Key, c.connection, c.generation)
	}
	c.imports++
	c.mu.Unlock()
	_, err := io.Copy(io.Discard, body)
	return err
}

func (c *closeCounter) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closes++
	return nil
}

func (c *closeCounter) counts() (imports, closes int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.imports, c.closes
}

// closeCounters records every importer the factory built.
type closeCounters struct {
	mu    sync.Mutex
	built []*closeCounter
}

func (cs *closeCounters) all() []*closeCounter {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	return append([]*closeCounter(nil), cs.built...)
}

// count returns how many importers of connection conn (and generation gen,
// unless 0) satisfy pred.
func (cs *closeCounters) count(conn string, gen int, pred func(imports, closes int) bool) int {
	n := 0
	for _, c := range cs.all() {
		if c.connection == conn && (gen == 0 || c.generation == gen) {
			if i, cl := c.counts(); pred(i, cl) {
				n++
			}
		}
	}
	return n
}

// The daemon closes each importer it built exactly once when it retires
// it: after a failed validation attempt (the connection "broken", whose
// bucket the platform may not read, builds one per attempt), when a reload
// replaces a connection's runner, and when it stops; a scheduled importer
// stays open while its runner is current.
func TestDaemonClosesRetiredImporters(t *testing.T) {
	counters := &closeCounters{}
	typ := fmt.Sprintf("closecount-%d", time.Now().UnixNano()%1_000_000)
	ingest.Register(typ, func(cfg config.Importer, _ ingest.Deps) (ingest.Importer, error) {
		gen, _ := cfg.Options["generation"].(int)
		conn, _ := cfg.Options["connection"].(string)
		c := &closeCounter{t: t, connection: conn, generation: gen}
		counters.mu.Lock()
		counters.built = append(counters.built, c)
		counters.mu.Unlock()
		return c, nil
	})

	f := newRunFixture(t, map[string]string{"a.csv": "a"})
	addr := freeAddr(t)
	importer := func(conn string, gen int) string {
		return fmt.Sprintf("      type: %s\n      options: {connection: %s, generation: %d}\n", typ, conn, gen)
	}
	path := f.config(t, addr, importer("acme", 1))
	externalID, err := connector.NewExternalID()
	if err != nil {
		t.Fatal(err)
	}
	broken := `  - name: broken
    status: active
    account_id: "123456789012"
    bucket: ` + f.bucket + `-not-ours
    region: ap-southeast-2
    base_path: imports/
    external_id: ` + externalID + `
    endpoint: ` + f.srv.Endpoint + `
    sts_endpoint: ` + f.srv.Endpoint + `
    schedule: "@every 1h"
    importer:
` + importer("broken", 1)
	first, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, append(first, broken...), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	platform, err := connector.LoadPlatformConfig(ctx)
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	m, err := metrics.New(reg)
	if err != nil {
		t.Fatal(err)
	}
	hup := make(chan os.Signal, 1)
	d := &daemon{configFile: path, platform: platform, reg: reg, metrics: m, log: zap.NewNop(), hup: hup}
	served := make(chan error, 1)
	go func() { served <- d.serve(ctx, cfg) }()

	open := func(imports, closes int) bool { return closes == 0 }
	once := func(imports, closes int) bool { return closes == 1 }
	waitFor(t, "a.csv imported by the first importer of acme", func() bool {
		return counters.count("acme", 1, func(i, _ int) bool { return i == 1 }) == 1 && len(f.keys(t, "imports/archive/")) == 1
	})
	waitFor(t, "a failed validation attempt of broken, its importer closed", func() bool {
		return counters.count("broken", 1, once) >= 1
	})
	if n := counters.count("acme", 1, open); n != 1 {
		t.Errorf("%d open importers of acme while scheduled, want 1", n)
	}

	// Reload with acme's importer changed: its runner is replaced.
	if err := os.WriteFile(path, append([]byte(strings.Replace(string(first), importer("acme", 1), importer("acme", 2), 1)), broken...), 0o600); err != nil {
		t.Fatal(err)
	}
	hup <- syscall.SIGHUP
	waitFor(t, "acme's first importer closed after the reload", func() bool { return counters.count("acme", 1, once) == 1 })
	waitFor(t, "acme's second importer built and open", func() bool { return counters.count("acme", 2, open) == 1 })

	cancel()
	select {
	case err := <-served:
		if err != nil {
			t.Fatalf("serve: %v", err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("the daemon did not stop")
	}
	for _, c := range counters.all() {
		if _, closes := c.counts(); closes != 1 {
			t.Errorf("importer of %s (generation %d) closed %d times, want once", c.connection, c.generation, closes)
		}
	}
	if n := len(counters.all()); n < 3 {
		t.Errorf("%d importers built, want at least 3 (acme twice, broken at least once)", n)
	}
}
