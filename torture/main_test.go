//go:build torture

package torture

import (
	"context"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/s3connector/s3connector/connector/miniotest"
	"github.com/s3connector/s3connector/internal/proctest"
)

// suite is what every scenario shares: one MinIO (each scenario has its
// own bucket and user) and the binary, built once.
var suite struct {
	srv *miniotest.Server
	bin string

	mu    sync.Mutex
	lines []string
}

func TestMain(m *testing.M) {
	os.Exit(runSuite(m))
}

func runSuite(m *testing.M) int {
	dir, err := os.MkdirTemp("", "s3connector-torture-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	if suite.bin, err = proctest.Build(dir); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	suite.srv, err = miniotest.Start(ctx)
	cancel()
	if err != nil {
		fmt.Fprintf(os.Stderr, "start MinIO: %v\n", err)
		return 1
	}
	code := m.Run()
	suite.srv.Close()
	suite.mu.Lock()
	defer suite.mu.Unlock()
	if len(suite.lines) > 0 {
		fmt.Println("\n=== torture summary")
		for _, l := range suite.lines {
			fmt.Println(l)
		}
	}
	return code
}

// Report records the scenario's one line of figures (Figures.String and
// what the scenario did). It is printed when the test ends, and again in
// the summary at the end of the run, marked FAILED if the test failed.
func Report(t *testing.T, line string) {
	t.Helper()
	t.Cleanup(func() {
		if t.Failed() {
			line += " — FAILED"
		}
		t.Log(line)
		suite.mu.Lock()
		defer suite.mu.Unlock()
		suite.lines = append(suite.lines, line)
	})
}
