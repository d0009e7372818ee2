package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/s3connector/s3connector/connector"
	"github.com/s3connector/s3connector/connector/miniotest"
)

// millionRun is one daemon run over one inbox.
type millionRun struct {
	label, bucket string
	keys, files   int
	seeded        int
	seedTime      time.Duration
	listPage      time.Duration
	// runStart is the run's start as the daemon exported it
	// (s3connector_last_run_start_timestamp_seconds).
	runStart time.Time
	// firstImport is from runStart to the first scrape that showed an
	// import; firstImportAfter to the scrape before it (a lower bound).
	firstImport, firstImportAfter time.Duration
	// runDuration is the run's own, from its "run finished" log line.
	runDuration time.Duration
	// partial: stopped at -time-limit; files is what it archived.
	partial  bool
	samples  []checkpoint
	cpu      time.Duration // user+sys of the daemon's whole life
	hwmEnd   uint64        // VmHWM when the run had finished
	requests requestCounts
	// logProblems are the first warning and error lines; problemCount
	// counts them all.
	logProblems  []string
	problemCount int
}

// checkpoint is one sample of a run: files archived so far, time since the
// run's start, VmRSS and VmHWM of the daemon.
type checkpoint struct {
	files    int
	elapsed  time.Duration
	rss, hwm uint64
}

func (r *millionRun) filesPerSec() float64 { return float64(r.files) / r.runDuration.Seconds() }

// at is the first sample with at least n files archived; zero when the
// run had fewer keys.
func (r *millionRun) at(n int) checkpoint {
	if n > r.keys {
		return checkpoint{}
	}
	for _, c := range r.samples {
		if c.files >= n {
			return c
		}
	}
	return checkpoint{}
}

// progress is the samples at 1,000, 10,000 and 100,000 files and at every
// tenth of the keys.
func (r *millionRun) progress() []checkpoint {
	targets := []int{1000, 10_000, 100_000}
	for k := 1; k <= 10; k++ {
		targets = append(targets, r.keys*k/10)
	}
	slices.Sort(targets)
	var out []checkpoint
	for _, n := range slices.Compact(targets) {
		if c := r.at(n); c.files > 0 && (len(out) == 0 || out[len(out)-1].files != c.files) {
			out = append(out, c)
		}
	}
	return out
}

// measure seeds bucket's inbox with n objects (or tops it up), runs the
// daemon over it and checks the result.
func (m *million) measure(ctx context.Context, label, bucket string, n int) (*millionRun, error) {
	r := &millionRun{label: label, bucket: bucket, keys: n}
	var err error
	if r.seeded, r.seedTime, err = m.prepare(ctx, bucket, n); err != nil {
		return nil, err
	}
	if r.seeded > 0 {
		fmt.Fprintf(m.out, "%s: seeded %d objects of %s in %s: %.0f PUT/s with %d in parallel\n", bucket, r.seeded, m.st.size,
			r.seedTime.Round(time.Millisecond), float64(r.seeded)/r.seedTime.Seconds(), m.st.seedParallel)
	}
	if r.listPage, err = m.probeListPage(ctx, bucket); err != nil {
		return nil, err
	}
	before, err := m.requests.snapshot(ctx)
	if err != nil {
		return nil, err
	}
	_ = os.Remove(filepath.Join(m.srv.root, stopFile))
	fmt.Fprintf(m.out, "%s: running the daemon over %d files (load average %s)\n", bucket, n, loadAverage())
	if err := m.runDaemon(ctx, r); err != nil {
		return nil, err
	}
	after, err := m.requests.snapshot(ctx)
	if err != nil {
		return nil, err
	}
	r.requests = diffCounts(before, after)
	fmt.Fprintf(m.out, "%s: %d files in %s, %.1f files/s, first file within %s of the run's start, peak RSS %.1f MiB\n",
		bucket, r.files, r.runDuration.Round(time.Millisecond), r.filesPerSec(), r.firstImport.Round(time.Millisecond), mib(r.hwmEnd))
	desc, err := m.check(ctx, bucket, n, r.files)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(m.out, "%s: checked: %s\n", bucket, desc)
	return r, nil
}

// daemonConfig is the configuration of the daemon's run over bucket: one
// active connection with the discard importer and the product's defaults
// otherwise, /metrics on a loopback port, and a schedule that does not
// come due again during the run (the daemon runs a connection once at
// start).
func daemonConfig(dir, bucket, endpoint string, workers, port int) (string, error) {
	externalID, err := connector.NewExternalID()
	if err != nil {
		return "", err
	}
	yaml := `listen: 127.0.0.1:` + strconv.Itoa(port) + `
principal_arn: arn:aws:iam::049579744830:root
connections:
  - name: ` + bucket + `
    status: active
    account_id: "123456789012"
    bucket: ` + bucket + `
    region: ` + miniotest.Region + `
    base_path: ` + basePath + `
    role_name: s3connector-bench
    external_id: ` + externalID + `
    endpoint: ` + endpoint + `
    sts_endpoint: ` + endpoint + `
    schedule: "@every 24h"
    workers: ` + strconv.Itoa(workers) + `
    importer:
      type: discard
`
	path := filepath.Join(dir, bucket+".yaml")
	return path, os.WriteFile(path, []byte(yaml), 0o600)
}

// daemonEnv is the environment of the daemon: the platform identity from
// the environment, as in production (see pipelineRun).
func daemonEnv() []string {
	env := envWithout("AWS_PROFILE=", "AWS_SESSION_TOKEN=", "AWS_ACCESS_KEY_ID=", "AWS_SECRET_ACCESS_KEY=", "AWS_REGION=")
	return append(env, "AWS_ACCESS_KEY_ID="+platformUser, "AWS_SECRET_ACCESS_KEY="+platformSecret, "AWS_REGION="+miniotest.Region,
		"AWS_CONFIG_FILE="+os.DevNull, "AWS_SHARED_CREDENTIALS_FILE="+os.DevNull, "AWS_EC2_METADATA_DISABLED=true")
}

// stopFile, created in the data directory, ends the big run as
// -time-limit does (the bench removes it when it starts the run).
const stopFile = "stop-big-run"

// errTimeLimit ends following a run at -time-limit (or stopFile).
var errTimeLimit = errors.New("time limit reached")

// stallTimeout fails a run in which no file was archived for this long.
const stallTimeout = 3 * time.Minute

// runDaemon starts `s3connector run` over r's bucket, follows the run on
// /metrics and /proc until it has finished, stops the daemon with SIGTERM
// and fills r.
func (m *million) runDaemon(ctx context.Context, r *millionRun) error {
	port, err := freeLoopbackPort()
	if err != nil {
		return err
	}
	cfg, err := daemonConfig(m.srv.root, r.bucket, m.srv.endpoint, m.st.workers, port)
	if err != nil {
		return err
	}
	logFile, err := os.Create(filepath.Join(m.srv.root, "daemon-"+r.bucket+"-"+r.label+".log"))
	if err != nil {
		return err
	}
	defer logFile.Close()
	cmd := exec.Command(m.st.binary, "run", "--config", cfg)
	cmd.Env = daemonEnv()
	cmd.Stdout = logFile
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return err
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", m.st.binary, err)
	}
	// The log ends when the process exits (or closes stderr): eof tells
	// follow the daemon is gone; the parsed log arrives on logs.
	logs, eof := make(chan daemonLog, 1), make(chan struct{})
	go func() {
		defer close(eof)
		logs <- readDaemonLog(io.TeeReader(stderr, logFile))
	}()
	// stop ends the daemon with SIGTERM (SIGKILL after 90 s) and waits
	// for it, after its log is read to the end (os/exec's rule for
	// StderrPipe).
	stop := func() (daemonLog, error) {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		t := time.AfterFunc(90*time.Second, func() { _ = cmd.Process.Kill() })
		defer t.Stop()
		dl := <-logs
		return dl, cmd.Wait()
	}

	if err := m.follow(ctx, r, cmd.Process.Pid, port, eof); errors.Is(err, errTimeLimit) {
		r.partial = true
	} else if err != nil {
		_, _ = stop()
		return fmt.Errorf("%w (daemon log: %s)", err, logFile.Name())
	}
	if r.hwmEnd, err = procStatus(cmd.Process.Pid, "VmHWM:"); err != nil {
		_, _ = stop()
		return err
	}
	dl, waitErr := stop()
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		r.cpu = cpuTime(ru)
	}
	if waitErr != nil {
		return fmt.Errorf("s3connector run: %w (after SIGTERM; log %s)", waitErr, logFile.Name())
	}
	r.logProblems, r.problemCount = dl.problems, dl.problemCount
	f := dl.finished
	switch {
	case f == nil:
		return fmt.Errorf("no \"run finished\" line in the daemon's log %s", logFile.Name())
	case r.partial:
		// Stopped by SIGTERM at -time-limit: the run ends as a graceful
		// stop says (files in progress finish, the rest stay).
		if f.Msg != "run stopped early" || f.Errored != 0 || f.Archived == 0 {
			return fmt.Errorf("stopped at -time-limit: %s: listed %d, archived %d, errored %d (log %s)", f.Msg, f.Listed, f.Archived, f.Errored, logFile.Name())
		}
	case f.Msg != "run finished" || f.Archived != r.keys || f.Listed != r.keys || f.Errored+f.Retry != 0:
		return fmt.Errorf("%s: listed %d, archived %d, errored %d, left %d for retry; want %d archived (log %s)",
			f.Msg, f.Listed, f.Archived, f.Errored, f.Retry, r.keys, logFile.Name())
	}
	r.files = f.Archived
	r.runDuration = time.Duration(f.Duration * float64(time.Second))
	return nil
}

// follow scrapes the daemon's /metrics and its /proc status until the run
// has finished, recording the run's start, the first import and a sample
// per scrape.
func (m *million) follow(ctx context.Context, r *millionRun, pid, port int, exited <-chan struct{}) error {
	client := &http.Client{Timeout: 10 * time.Second}
	url := fmt.Sprintf("http://127.0.0.1:%d/metrics", port)
	interval := 20 * time.Millisecond
	started := time.Now()
	var lastScrape time.Time
	lastProgress, lastFiles := time.Now(), -1
	// Progress lines at these counts, for the log of a long run.
	targets := []int{1000, 10_000, 50_000}
	for n := 100_000; n <= r.keys; n += 100_000 {
		targets = append(targets, n)
	}
	var last checkpoint
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-exited:
			return errors.New("the daemon exited before its run finished")
		case <-time.After(interval):
		}
		now := time.Now()
		mv, err := scrapeDaemon(ctx, client, url)
		if err != nil {
			if r.runStart.IsZero() && time.Since(started) < 2*time.Minute {
				continue // not listening yet
			}
			return err
		}
		if r.runStart.IsZero() && mv.runStart > 0 {
			sec, frac := math.Modf(mv.runStart)
			r.runStart = time.Unix(int64(sec), int64(frac*1e9))
		}
		if !r.runStart.IsZero() {
			rss, err := procStatus(pid, "VmRSS:")
			if err != nil {
				return err
			}
			hwm, err := procStatus(pid, "VmHWM:")
			if err != nil {
				return err
			}
			if r.firstImport == 0 && mv.imports > 0 {
				r.firstImport = now.Sub(r.runStart)
				r.firstImportAfter = max(lastScrape.Sub(r.runStart), 0)
				interval = m.st.poll
			}
			c := checkpoint{files: mv.archived, elapsed: now.Sub(r.runStart), rss: rss, hwm: hwm}
			r.samples = append(r.samples, c)
			for len(targets) > 0 && c.files >= targets[0] {
				fmt.Fprintf(m.out, "  %s: %d archived at %.1f s (%.1f files/s since the last line), VmRSS %.1f MiB, VmHWM %.1f MiB, load average %s\n",
					r.bucket, c.files, c.elapsed.Seconds(), float64(c.files-last.files)/(c.elapsed-last.elapsed).Seconds(), mib(c.rss), mib(c.hwm), loadAverage())
				last = c
				for len(targets) > 0 && c.files >= targets[0] {
					targets = targets[1:]
				}
			}
			if r.bucket == millionBucket && mv.runs == 0 {
				if m.st.timeLimit > 0 && c.elapsed > m.st.timeLimit {
					fmt.Fprintf(m.out, "  %s: -time-limit %s reached at %d archived: stopping the daemon (SIGTERM)\n", r.bucket, m.st.timeLimit, c.files)
					return errTimeLimit
				}
				if _, err := os.Stat(filepath.Join(m.srv.root, stopFile)); err == nil {
					fmt.Fprintf(m.out, "  %s: %s found at %d archived: stopping the daemon (SIGTERM)\n", r.bucket, stopFile, c.files)
					return errTimeLimit
				}
			}
		}
		lastScrape = now
		if mv.runs >= 1 {
			return nil
		}
		if mv.archived != lastFiles {
			lastProgress, lastFiles = now, mv.archived
		} else if time.Since(lastProgress) > stallTimeout {
			return fmt.Errorf("no file archived for %s (at %d)", stallTimeout, mv.archived)
		}
	}
}

// daemonMetrics are the few series the bench follows.
type daemonMetrics struct {
	archived, imports, runs int
	runStart                float64 // Unix seconds; 0 before the first run
}

func scrapeDaemon(ctx context.Context, client *http.Client, url string) (daemonMetrics, error) {
	var mv daemonMetrics
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return mv, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return mv, fmt.Errorf("scrape the daemon: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return mv, fmt.Errorf("scrape the daemon: %s", resp.Status)
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		name, rest, ok := strings.Cut(line, "{")
		if !ok || !strings.HasPrefix(name, "s3connector_") {
			continue
		}
		labels, value, ok := strings.Cut(rest, "} ")
		if !ok {
			continue
		}
		v, err := strconv.ParseFloat(strings.Fields(value)[0], 64)
		if err != nil {
			continue
		}
		switch name {
		case "s3connector_files_total":
			if strings.Contains(labels, `outcome="archived"`) {
				mv.archived = int(v)
			}
		case "s3connector_import_duration_seconds_count":
			mv.imports = int(v)
		case "s3connector_runs_total":
			mv.runs += int(v)
		case "s3connector_last_run_start_timestamp_seconds":
			mv.runStart = v
		}
	}
	return mv, sc.Err()
}

// procStatus reads one kB field (VmRSS:, VmHWM:) of /proc/PID/status, in bytes.
func procStatus(pid int, field string) (uint64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, field); ok {
			kb, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("%s %s: %w", field, rest, err)
			}
			return kb << 10, nil
		}
	}
	return 0, fmt.Errorf("no %s in /proc/%d/status", field, pid)
}

// daemonLog is what the bench reads from the daemon's JSON log.
type daemonLog struct {
	finished     *runFinished
	problems     []string
	problemCount int
}

// runFinished are the counts of the "run finished" (or "run stopped
// early") line; Duration is in seconds (zap's production encoder).
type runFinished struct {
	Msg                                        string
	Listed, Imported, Archived, Errored, Retry int
	Duration                                   float64
}

func readDaemonLog(r io.Reader) daemonLog {
	var dl daemonLog
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	for sc.Scan() {
		var line struct {
			Level    string  `json:"level"`
			Msg      string  `json:"msg"`
			Listed   int     `json:"listed"`
			Imported int     `json:"imported"`
			Archived int     `json:"archived"`
			Errored  int     `json:"errored"`
			Retry    int     `json:"retry"`
			Duration float64 `json:"duration"`
		}
		if json.Unmarshal(sc.Bytes(), &line) != nil {
			continue
		}
		if line.Level == "warn" || line.Level == "error" {
			dl.problemCount++
			if len(dl.problems) < 5 {
				dl.problems = append(dl.problems, tail(sc.Text(), 400))
			}
		}
		if line.Msg == "run finished" || line.Msg == "run stopped early" {
			dl.finished = &runFinished{Msg: line.Msg, Listed: line.Listed, Imported: line.Imported, Archived: line.Archived,
				Errored: line.Errored, Retry: line.Retry, Duration: line.Duration}
		}
	}
	_, _ = io.Copy(io.Discard, r)
	return dl
}
