package ingest_test

import (
	"bytes"
	"encoding/hex"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/s3connector/s3connector/config"
	"github.com/s3connector/s3connector/ingest"
	"github.com/s3connector/s3connector/ingest/ingesttest"
)

// The built-in importers run the conformance suite, each built the way the
// daemon builds it (ingest.New from its configuration).

func TestConformanceDir(t *testing.T) {
	ingesttest.Run(t, func(t *testing.T) ingesttest.Harness {
		h := &dirHarness{root: filepath.Join(t.TempDir(), "imports")}
		t.Cleanup(func() { noLeftovers(t, h.root, func(name string) bool { return strings.HasSuffix(name, ".tmp") }) })
		return h
	})
}

type dirHarness struct{ root string }

func (h *dirHarness) New(*testing.T) (ingest.Importer, error) {
	return ingest.New(config.Importer{Type: config.ImporterDir, Path: h.root}, ingest.Deps{})
}

func (h *dirHarness) Delivered(t *testing.T, f ingest.File) ([]byte, bool) {
	return readDelivered(t, filepath.Join(h.root, filepath.FromSlash(f.RelKey)))
}

// Features: dir writes any bytes; only keys can be bad (ingest/dir_test.go).
func (h *dirHarness) Features() ingesttest.Features { return ingesttest.Features{} }

func TestConformanceExec(t *testing.T) {
	// No check for the script's temp files: a cancelled import kills the
	// command's process group with SIGKILL, which leaves it no chance to
	// remove one. They are never delivered: the final name comes last.
	ingesttest.Run(t, func(t *testing.T) ingesttest.Harness { return &execHarness{out: t.TempDir()} })
}

// execScript is an import command written as the exec importer's
// documentation asks: it checks that it got S3CONNECTOR_SIZE bytes (stdin
// ends early, with no error, when the body breaks: the command cannot tell
// otherwise), publishes atomically, and exits 65 for bad content (a first
// line "REJECT").
const execScript = `set -eu
tmp="$OUT/.tmp.$$"
cat > "$tmp"
size=$(wc -c < "$tmp")
if [ "$size" -ne "$S3CONNECTOR_SIZE" ]; then
	rm -f "$tmp"
	echo "got $size of $S3CONNECTOR_SIZE bytes" >&2
	exit 1
fi
if [ "$(head -n 1 "$tmp")" = REJECT ]; then
	rm -f "$tmp"
	echo "rejected" >&2
	exit 65
fi
mv "$tmp" "$OUT/$(printf %s "$S3CONNECTOR_KEY" | od -An -tx1 | tr -d ' \n')"
`

type execHarness struct{ out string }

func (h *execHarness) New(*testing.T) (ingest.Importer, error) {
	return ingest.New(config.Importer{Type: config.ImporterExec, Command: []string{"/bin/sh", "-c", execScript}, Env: map[string]string{"OUT": h.out}}, ingest.Deps{})
}

func (h *execHarness) Delivered(t *testing.T, f ingest.File) ([]byte, bool) {
	return readDelivered(t, filepath.Join(h.out, hex.EncodeToString([]byte(f.Key))))
}

func (h *execHarness) Features() ingesttest.Features {
	return ingesttest.Features{BadContent: rejectBody()}
}

// rejectBody is bad content for the exec and http harnesses' sinks: 1 MiB
// whose first line is REJECT.
func rejectBody() []byte {
	return append([]byte("REJECT\n"), bytes.Repeat([]byte("x,y\n"), 1<<18)...)
}

func TestConformanceHTTP(t *testing.T) {
	ingesttest.Run(t, func(t *testing.T) ingesttest.Harness {
		h := &httpHarness{got: map[string][]byte{}}
		h.srv = httptest.NewServer(http.HandlerFunc(h.serve))
		t.Cleanup(h.srv.Close)
		return h
	})
}

// httpHarness is a sink keeping the latest body per key. It judges content
// from the first line, answering 422 without reading the rest, as a sink
// may (413 for a large file, a bad header line).
type httpHarness struct {
	srv *httptest.Server
	mu  sync.Mutex
	got map[string][]byte
}

func (h *httpHarness) serve(w http.ResponseWriter, r *http.Request) {
	head := make([]byte, len("REJECT\n"))
	n, _ := io.ReadFull(r.Body, head)
	if string(head[:n]) == "REJECT\n" {
		http.Error(w, "first line REJECT", http.StatusUnprocessableEntity)
		return
	}
	rest, err := io.ReadAll(r.Body)
	if err != nil {
		// The request broke off: nothing is kept.
		return
	}
	body := append(head[:n:n], rest...)
	if r.Header.Get(ingest.IdempotencyHeader) == "" {
		http.Error(w, "no idempotency key", http.StatusBadRequest)
		return
	}
	h.mu.Lock()
	h.got[r.Header.Get("X-S3connector-Key")] = body
	h.mu.Unlock()
	w.WriteHeader(http.StatusCreated)
}

func (h *httpHarness) New(*testing.T) (ingest.Importer, error) {
	return ingest.New(config.Importer{Type: config.ImporterHTTP, URL: h.srv.URL + "/files"}, ingest.Deps{Workers: 16})
}

func (h *httpHarness) Delivered(_ *testing.T, f ingest.File) ([]byte, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	b, ok := h.got[f.Key]
	return b, ok
}

func (h *httpHarness) Features() ingesttest.Features {
	return ingesttest.Features{BadContent: rejectBody()}
}

func TestConformanceDiscard(t *testing.T) {
	ingesttest.Run(t, func(*testing.T) ingesttest.Harness { return discardHarness{} })
}

type discardHarness struct{}

func (discardHarness) New(*testing.T) (ingest.Importer, error) {
	return ingest.New(config.Importer{Type: config.ImporterDiscard}, ingest.Deps{})
}

func (discardHarness) Delivered(*testing.T, ingest.File) ([]byte, bool) { return nil, false }

func (discardHarness) Features() ingesttest.Features {
	return ingesttest.Features{NoDeliveries: true}
}

// readDelivered reads a delivered file; missing is not delivered.
func readDelivered(t *testing.T, path string) ([]byte, bool) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		if !os.IsNotExist(err) {
			t.Errorf("read delivered file: %v", err)
		}
		return nil, false
	}
	return b, true
}

// noLeftovers fails the test for temp files left under dir.
func noLeftovers(t *testing.T, dir string, isTemp func(name string) bool) {
	t.Helper()
	filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && isTemp(d.Name()) {
			t.Errorf("temp file left behind: %s", path)
		}
		return nil
	})
}
