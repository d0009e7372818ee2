package main

// The million-key case (issue 10, goal 4): `s3connector-bench million`
// seeds one inbox of -keys small objects in a local MinIO with a fast
// parallel seeder, runs the real daemon over it with the discard importer,
// and measures what a bucket of that size costs the connector: how soon
// the first file is imported after the run starts (the listing must be
// streamed into the workers, not read first), the process's RSS when 10 k,
// 100 k and 1 M files have been processed (it must stay flat), and files/s
// against a run over -baseline files of the same binary, settings and
// server, before and after the big run. Every run is checked: the inbox
// empty, archive/ holding each seeded file exactly once, error/ empty.
//
// Progress is read from the daemon's own /metrics (s3connector_files_total
// and s3connector_import_duration_seconds_count), scraped on the loopback
// listener every -poll (every 20 ms until the first import): nothing is
// logged per file and the run is the product's, unchanged. RSS comes from
// /proc/PID/status (VmRSS, and VmHWM: the peak so far). MinIO runs on the
// same 2 shared cores as the daemon and the bench: compare the runs of one
// invocation, not with another machine.

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/s3connector/s3connector/config"
)

// millionSettings are the flags of the million-key case.
type millionSettings struct {
	keys, workers, seedParallel, baseline int
	size                                  byteSize
	minioDir, binary, out                 string
	keep                                  bool
	poll, timeLimit                       time.Duration
}

// Buckets of the million-key case: the big inbox and the baseline's.
const (
	millionBucket  = "bench-million"
	baselineBucket = "bench-million-baseline"
	// millionFolder is the inbox's one subfolder: every key is
	// inbox/million/NNNNNNN.bin, as an upload tool dropping files into one
	// folder makes them.
	millionFolder = "million/"
)

func runMillion(ctx context.Context, argv []string, out io.Writer) error {
	start := time.Now()
	st := millionSettings{size: 1 << 10}
	fset := flag.NewFlagSet(argv[0], flag.ContinueOnError)
	fset.IntVar(&st.keys, "keys", 1_000_000, "objects in the big inbox")
	fset.IntVar(&st.workers, "workers", config.DefaultWorkers, "the connection's workers (default: the daemon's default)")
	fset.Var(&st.size, "size", "size of each object (bytes, or with KiB); MinIO keeps objects up to 128 KiB inline in their metadata")
	fset.IntVar(&st.seedParallel, "seed-parallel", 64, "concurrent PutObject calls of the seeder")
	fset.IntVar(&st.baseline, "baseline", 2000, "files of the baseline runs (before and after the big one); 0: none")
	fset.StringVar(&st.minioDir, "minio-dir", os.TempDir(), "parent directory of MinIO's data (on disk: keep it off /dev/shm, the memory is shared); needs about 6 inodes and 24 KiB per key")
	fset.BoolVar(&st.keep, "keep", false, "keep MinIO's data in <minio-dir>/s3connector-bench-million between invocations: the next one seeds only the keys missing from the inbox")
	fset.StringVar(&st.binary, "binary", "", "s3connector binary (default: built from ./cmd/s3connector)")
	fset.StringVar(&st.out, "out", filepath.Join("bench", "out"), "directory for million.csv, million-progress.csv and million-timeline.csv (none if empty)")
	fset.DurationVar(&st.poll, "poll", 500*time.Millisecond, "how often /metrics and /proc/PID/status are read during a run")
	fset.DurationVar(&st.timeLimit, "time-limit", 0, "stop the big run (SIGTERM, a graceful stop) after this long and report what it did (0: none)")
	if err := fset.Parse(argv[1:]); err != nil {
		return err
	}
	switch {
	case st.keys < 1 || st.keys > 9_999_999:
		return errors.New("-keys: want 1..9999999")
	case st.workers < 1 || st.workers > 1024:
		return errors.New("-workers: want 1..1024")
	case st.seedParallel < 1:
		return errors.New("-seed-parallel: want at least 1")
	case st.baseline < 0:
		return errors.New("-baseline: want 0 or more")
	case st.poll < 20*time.Millisecond:
		return errors.New("-poll: want at least 20ms")
	}

	fmt.Fprintf(out, "s3connector-bench million: one inbox of %d keys, the daemon over it, against %d-file runs\n", st.keys, st.baseline)
	fmt.Fprintf(out, "command:  %s\n", shellJoin(append([]string{"s3connector-bench"}, os.Args[1:]...)))
	var all []string
	fset.VisitAll(func(f *flag.Flag) { all = append(all, "-"+f.Name+" "+f.Value.String()) })
	fmt.Fprintf(out, "settings: %s\n", strings.Join(all, " "))
	fmt.Fprintf(out, "machine:  %s %s/%s, %d CPUs, GOMAXPROCS %d, load average %s\n", runtime.Version(), runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), runtime.GOMAXPROCS(0), loadAverage())
	fmt.Fprintf(out, "minio:    %s\n", minioVersion(ctx))

	root := filepath.Join(st.minioDir, "s3connector-bench-million")
	if st.keep {
		if err := os.MkdirAll(root, 0o755); err != nil {
			return err
		}
	} else {
		var err error
		if root, err = os.MkdirTemp(st.minioDir, "s3connector-bench-million-"); err != nil {
			return err
		}
		defer os.RemoveAll(root)
	}
	room, err := checkRoom(root, st.keys+st.baseline)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "data:     %s (%s; %s)\n", root, fsKind(root), room)

	if st.binary == "" {
		if st.binary, err = buildBinary(ctx, root); err != nil {
			return err
		}
	}
	if st.binary, err = filepath.Abs(st.binary); err != nil {
		return err
	}
	fmt.Fprintf(out, "daemon:   %s run --config ... (workers %d, discard importer, log level info, /metrics on loopback)\n", st.binary, st.workers)

	srv, err := startKeptMinIO(ctx, root)
	if err != nil {
		return err
	}
	defer srv.close()
	fmt.Fprintf(out, "          MinIO at %s, region ap-southeast-2, data in %s\n", srv.endpoint, srv.dataDir)
	if err := srv.addPlatformUser(ctx); err != nil {
		return err
	}
	m := &million{st: st, srv: srv, out: out, admin: srv.seedClient(st.seedParallel),
		requests: newServerRequests(srv.endpoint, srv.rootUser, srv.rootPass)}
	for _, b := range []string{millionBucket, baselineBucket} {
		if err := m.createBucket(ctx, b); err != nil {
			return err
		}
	}

	var runs []*millionRun
	base := func(label string) error {
		if st.baseline == 0 {
			return nil
		}
		r, err := m.measure(ctx, label, baselineBucket, st.baseline)
		if err != nil {
			return fmt.Errorf("%s: %w", label, err)
		}
		runs = append(runs, r)
		return nil
	}
	if err := base("before"); err != nil {
		return err
	}
	big, err := m.measure(ctx, "big", millionBucket, st.keys)
	if err != nil {
		return fmt.Errorf("%d keys: %w", st.keys, err)
	}
	runs = append(runs, big)
	if err := base("after"); err != nil {
		return err
	}

	fmt.Fprintf(out, "\nfirst file = from the run's start (s3connector_last_run_start_timestamp_seconds) to the first /metrics\n")
	fmt.Fprintf(out, "scrape showing an import (polled every 20 ms until then); list page = a bare ListObjectsV2 (1,000 keys)\n")
	fmt.Fprintf(out, "on the inbox just before the run; files/s = files / the run's own duration (its \"run finished\" log line);\n")
	fmt.Fprintf(out, "RSS @N = VmRSS when N files were archived (VmHWM, the peak so far, in brackets); CPU = user+sys of\n")
	fmt.Fprintf(out, "the daemon's process over its life (start-up and validation included); requests counted by MinIO.\n\n")
	rows := millionTable(runs, st)
	writeMillionTable(out, rows)
	fmt.Fprintf(out, "\nprogress of the %d-key run (interval files/s between the rows):\n\n", st.keys)
	writeProgress(out, big)
	for _, r := range runs {
		fmt.Fprintf(out, "\n%s run, S3 requests as MinIO counted them: %s\n", r.label, r.requests)
		if len(r.logProblems) > 0 {
			fmt.Fprintf(out, "  %d warning/error log lines; first: %s\n", r.problemCount, strings.Join(r.logProblems, "\n    "))
		}
	}
	if st.out != "" {
		paths, err := writeMillionOutputs(st.out, rows, big)
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "\nwrote %s\n", strings.Join(paths, ", "))
	}
	if st.keep {
		fmt.Fprintf(out, "kept %s: the next -keep run seeds only what its inbox misses; remove it when done\n", root)
	}
	fmt.Fprintf(out, "total wall time: %s, load average %s\n", time.Since(start).Round(time.Second), loadAverage())
	return nil
}

// millionRow is one line of the table.
type millionRow struct {
	label                  string
	files                  int
	seeded                 int
	seedRate               float64 // PUT/s; 0 when nothing was seeded
	listPage, firstFile    time.Duration
	firstFileAfter         time.Duration // lower bound: the scrape before
	runSeconds, filesPerS  float64
	ratio                  float64 // files/s over the baselines' mean
	rssAt                  [3]checkpoint
	peakRSS                uint64
	cpuPerFile, reqPerFile float64
}

// rssTargets are the files-processed counts the table reports RSS at.
var rssTargets = [3]int{10_000, 100_000, 1_000_000}

func millionTable(runs []*millionRun, st millionSettings) []millionRow {
	var baseSum float64
	var nBase int
	for _, r := range runs {
		if r.bucket == baselineBucket {
			baseSum += r.filesPerSec()
			nBase++
		}
	}
	rows := make([]millionRow, 0, len(runs))
	for _, r := range runs {
		row := millionRow{
			label: fmt.Sprintf("%d keys, %s", r.keys, r.label), files: r.files,
			seeded: r.seeded, listPage: r.listPage, firstFile: r.firstImport, firstFileAfter: r.firstImportAfter,
			runSeconds: r.runDuration.Seconds(), filesPerS: r.filesPerSec(),
			peakRSS: r.hwmEnd, cpuPerFile: float64(r.cpu) / float64(time.Millisecond) / float64(max(r.files, 1)),
			reqPerFile: float64(r.requests.total()) / float64(max(r.files, 1)),
		}
		if r.bucket == millionBucket {
			row.label = fmt.Sprintf("%d keys", r.keys)
			if r.partial {
				row.label += " (stopped)"
			}
		}
		if r.seeded > 0 {
			row.seedRate = float64(r.seeded) / r.seedTime.Seconds()
		}
		row.ratio = row.filesPerS / (baseSum / float64(max(nBase, 1)))
		for i, n := range rssTargets {
			row.rssAt[i] = r.at(n)
		}
		rows = append(rows, row)
	}
	return rows
}

const millionRowFormat = "%-20s  %7v  %9v  %9v  %10v  %8v  %8v  %7v  %15v  %15v  %15v  %8v  %11v  %8v\n"

func writeMillionTable(w io.Writer, rows []millionRow) {
	fmt.Fprintf(w, millionRowFormat, "run", "files", "seed/s", "list page", "first file", "run s", "files/s", "vs base",
		"RSS @10k MiB", "RSS @100k MiB", "RSS @1M MiB", "peak RSS", "CPU ms/file", "req/file")
	for _, r := range rows {
		seed := "-"
		if r.seeded > 0 {
			seed = f1(r.seedRate)
		}
		var rss [3]string
		for i, c := range r.rssAt {
			rss[i] = "-"
			if c.files > 0 {
				rss[i] = fmt.Sprintf("%s [%s]", f1(mib(c.rss)), f1(mib(c.hwm)))
			}
		}
		fmt.Fprintf(w, millionRowFormat, r.label, r.files, seed, f3(r.listPage.Seconds())+"s",
			"≤"+f3(r.firstFile.Seconds())+"s", f1(r.runSeconds), f1(r.filesPerS), f2(r.ratio)+"×",
			rss[0], rss[1], rss[2], f1(mib(r.peakRSS)), f3(r.cpuPerFile), f2(r.reqPerFile))
	}
}

func writeProgress(w io.Writer, r *millionRun) {
	const format = "  %10v  %10v  %10v  %10v  %10v\n"
	fmt.Fprintf(w, format, "archived", "elapsed s", "files/s", "VmRSS MiB", "VmHWM MiB")
	var prev checkpoint
	for _, c := range r.progress() {
		rate := float64(c.files-prev.files) / (c.elapsed - prev.elapsed).Seconds()
		fmt.Fprintf(w, format, c.files, f1(c.elapsed.Seconds()), f1(rate), f1(mib(c.rss)), f1(mib(c.hwm)))
		prev = c
	}
}

// writeMillionOutputs writes the table, the big run's progress and its
// every sample as CSV files under dir.
func writeMillionOutputs(dir string, rows []millionRow, big *millionRun) ([]string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	table := [][]string{{"run", "files", "seeded", "seed_put_per_s", "list_page_s", "first_file_s_max", "first_file_s_min", "run_s", "files_per_s", "ratio_to_baseline",
		"rss_10k_mib", "hwm_10k_mib", "rss_100k_mib", "hwm_100k_mib", "rss_1m_mib", "hwm_1m_mib", "peak_rss_mib", "cpu_ms_per_file", "requests_per_file"}}
	for _, r := range rows {
		rec := []string{r.label, strconv.Itoa(r.files), strconv.Itoa(r.seeded), f1(r.seedRate), f3(r.listPage.Seconds()),
			f3(r.firstFile.Seconds()), f3(r.firstFileAfter.Seconds()), f3(r.runSeconds), f1(r.filesPerS), f3(r.ratio)}
		for _, c := range r.rssAt {
			if c.files == 0 {
				rec = append(rec, "", "")
				continue
			}
			rec = append(rec, f1(mib(c.rss)), f1(mib(c.hwm)))
		}
		rec = append(rec, f1(mib(r.peakRSS)), f3(r.cpuPerFile), f2(r.reqPerFile))
		table = append(table, rec)
	}
	progress := [][]string{{"archived", "elapsed_s", "vmrss_mib", "vmhwm_mib"}}
	for _, c := range big.progress() {
		progress = append(progress, []string{strconv.Itoa(c.files), f3(c.elapsed.Seconds()), f1(mib(c.rss)), f1(mib(c.hwm))})
	}
	timeline := [][]string{{"elapsed_s", "archived", "vmrss_mib", "vmhwm_mib"}}
	for _, c := range big.samples {
		timeline = append(timeline, []string{f3(c.elapsed.Seconds()), strconv.Itoa(c.files), f1(mib(c.rss)), f1(mib(c.hwm))})
	}
	var paths []string
	for _, f := range []struct {
		name string
		recs [][]string
	}{{"million.csv", table}, {"million-progress.csv", progress}, {"million-timeline.csv", timeline}} {
		p := filepath.Join(dir, f.name)
		if err := writeCSV(p, f.recs); err != nil {
			return nil, err
		}
		paths = append(paths, p)
	}
	return paths, nil
}

// loadAverage is /proc/loadavg's first three fields: how busy the shared
// machine was.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}
