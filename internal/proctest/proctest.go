// Package proctest is for tests that run the built s3connector binary
// (cmd/s3connector, web and torture): it builds the binary once per test
// binary and collects a process's output safely.
package proctest

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

// DaemonPackage is the import path of the daemon's main package.
const DaemonPackage = "github.com/s3connector/s3connector/cmd/s3connector"

// Build builds the daemon into dir and returns the binary's path.
func Build(dir string) (string, error) {
	bin := filepath.Join(dir, "s3connector")
	if out, err := exec.Command("go", "build", "-o", bin, DaemonPackage).CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build: %v\n%s", err, out)
	}
	return bin, nil
}

var (
	once    sync.Once
	binPath string
	binErr  error
)

// Daemon builds the daemon once per test binary (into a temporary
// directory that outlives the test, as every test of the binary shares it;
// TestMain removes it with Cleanup) and returns its path; a failed build
// fails t.
func Daemon(t testing.TB) string {
	t.Helper()
	once.Do(func() {
		dir, err := os.MkdirTemp("", "s3connector-bin-")
		if err != nil {
			binErr = err
			return
		}
		binPath, binErr = Build(dir)
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binPath
}

// Cleanup removes the binary Daemon built, if it built one.
func Cleanup() {
	if binPath != "" {
		os.RemoveAll(filepath.Dir(binPath))
	}
}

// Buffer is a bytes.Buffer for a process's output, read while the process
// still writes.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *Buffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *Buffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
