//go:build torture

package torture

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/s3connector/s3connector/internal/proctest"
)

// Proc is one run of the built binary. Its stdout and stderr are kept
// (the checker reads every process's output for panics and secrets).
type Proc struct {
	Args   []string
	cmd    *exec.Cmd
	out    proctest.Buffer // stdout and stderr, interleaved
	stdout proctest.Buffer
	done   chan struct{}
	err    error
	killed bool
}

// Start starts the binary with args and the fixture's environment. The
// process is killed when the test ends if it still runs.
func (f *Fixture) Start(args ...string) *Proc {
	t := f.T
	t.Helper()
	p := &Proc{Args: args, done: make(chan struct{})}
	p.cmd = exec.Command(suite.bin, args...)
	p.cmd.Env = f.Env()
	p.cmd.Stdout = io.MultiWriter(&p.out, &p.stdout)
	p.cmd.Stderr = &p.out
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	f.mu.Lock()
	f.procs = append(f.procs, p)
	f.mu.Unlock()
	t.Cleanup(func() { p.Kill() })
	return p
}

// Kill sends SIGKILL (if the process still runs) and waits for it.
// It reports whether the process was still running.
func (p *Proc) Kill() bool {
	select {
	case <-p.done:
		return false
	default:
	}
	p.killed = true
	_ = p.cmd.Process.Kill()
	<-p.done
	return true
}

// Signal sends sig without waiting.
func (p *Proc) Signal(sig syscall.Signal) { _ = p.cmd.Process.Signal(sig) }

// Wait waits up to timeout for the process to exit; ok is false on a
// timeout (the process is then killed).
func (p *Proc) Wait(timeout time.Duration) (err error, ok bool) {
	select {
	case <-p.done:
		return p.err, true
	case <-time.After(timeout):
		p.Kill()
		return p.err, false
	}
}

// Done is closed when the process has exited.
func (p *Proc) Done() <-chan struct{} { return p.done }

// Running reports whether the process has not exited yet.
func (p *Proc) Running() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// Output is everything the process wrote so far (stdout and stderr).
func (p *Proc) Output() string { return p.out.String() }

// Stdout is what the process wrote to stdout (run --once's summary).
func (p *Proc) Stdout() string { return p.stdout.String() }

// ExitCode is the exit code after the process ended (-1 if killed).
func (p *Proc) ExitCode() int {
	if p.cmd.ProcessState == nil {
		return -1
	}
	return p.cmd.ProcessState.ExitCode()
}

// Count counts the log lines whose text contains sub.
func (p *Proc) Count(sub string) int { return strings.Count(p.Output(), sub) }

// HoldsLease guesses from the log whether the process held the
// connection's lease when it stopped: a "run started" not followed by a
// "run finished" or "run stopped early". A killed holder blocks the
// connection for lease_ttl plus min(30s, lease_ttl).
func (p *Proc) HoldsLease() bool {
	out := p.Output()
	return strings.Count(out, `"msg":"run started"`) > strings.Count(out, `"msg":"run finished"`)+strings.Count(out, `"msg":"run stopped early"`)
}

// RunOnce runs `run --once --config cfg` to its end (at most timeout).
func (f *Fixture) RunOnce(cfg string, timeout time.Duration) *Proc {
	f.T.Helper()
	p := f.Start("run", "--once", "--config", cfg)
	if _, ok := p.Wait(timeout); !ok {
		f.T.Errorf("run --once still running after %s; killed", timeout)
	}
	return p
}

// Daemon is a running `s3connector run` with its HTTP address.
type Daemon struct {
	*Proc
	Addr string
}

// StartDaemon starts `run --config cfg`; addr is the config's listen
// address (ConfigOptions.Listen).
func (f *Fixture) StartDaemon(cfg, addr string) *Daemon {
	f.T.Helper()
	return &Daemon{Proc: f.Start("run", "--config", cfg), Addr: addr}
}

// Get fetches a path of the daemon's HTTP server.
func (d *Daemon) Get(path string) (int, string) {
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get("http://" + d.Addr + path)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// Metrics scrapes /metrics into series → value (series as exposed, e.g.
// `s3connector_files_total{connection="acme",outcome="archived"}`); nil
// when the daemon does not answer.
func (d *Daemon) Metrics() Metrics {
	code, body := d.Get("/metrics")
	if code != http.StatusOK {
		return nil
	}
	m := Metrics{}
	sc := bufio.NewScanner(strings.NewReader(body))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err == nil {
			m[line[:i]] = v
		}
	}
	return m
}

// Metrics are scraped series.
type Metrics map[string]float64

// Sum adds the series of metric name whose labels contain every one of
// labels (each written as in the exposition: `result="throttled"`).
func (m Metrics) Sum(name string, labels ...string) float64 {
	var sum float64
	for series, v := range m {
		if series != name && !strings.HasPrefix(series, name+"{") {
			continue
		}
		ok := true
		for _, l := range labels {
			if !strings.Contains(series, l) {
				ok = false
				break
			}
		}
		if ok {
			sum += v
		}
	}
	return sum
}

// FreeAddr is a free loopback address for a listener.
func FreeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}
