package main

import (
	"encoding/csv"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// row is the medians of one variant in one case.
type row struct {
	caseName, set, variant string
	latency                time.Duration
	workers, files, runs   int
	bandwidth              int // KB/s per connection; 0: no cap
	filesPerSec, mbPerSec  float64
	// ratio is filesPerSec over the base variant's in the same case, the
	// plain loop's unless the case says otherwise (NaN without it).
	ratio      float64
	base       string
	cpuPerFile float64 // ms
	reqPerFile float64
	peakRSS    uint64
}

func summarize(cases []*benchCase, variants []string, results []result) []row {
	var rows []row
	for _, c := range cases {
		var caseRows []row
		for _, v := range c.variantsOf(variants) {
			var fps, mbps, cpu, req []float64
			r := row{caseName: c.name, set: c.set.name, variant: v, latency: c.latency, workers: c.workers, files: c.set.n,
				bandwidth: c.bandwidth, base: c.ratioBase()}
			for _, res := range results {
				if res.caseName == c.name && res.variant == v {
					fps = append(fps, res.filesPerSec())
					mbps = append(mbps, res.mbPerSec())
					cpu = append(cpu, res.cpuPerFile())
					req = append(req, res.requestsPerFile())
					r.peakRSS = max(r.peakRSS, res.maxRSS)
					r.runs++
				}
			}
			r.filesPerSec, r.mbPerSec, r.cpuPerFile, r.reqPerFile = median(fps), median(mbps), median(cpu), median(req)
			caseRows = append(caseRows, r)
		}
		base := math.NaN()
		for _, r := range caseRows {
			if r.variant == r.base {
				base = r.filesPerSec
			}
		}
		for i := range caseRows {
			caseRows[i].ratio = caseRows[i].filesPerSec / base
		}
		rows = append(rows, caseRows...)
	}
	return rows
}

func writeTable(w io.Writer, rows []row) {
	const f = "%-9s  %-8s  %7v  %11v  %9v  %8v  %12v  %11v  %8v  %8v\n"
	fmt.Fprintf(w, f, "set", "variant", "workers", "latency/cap", "files/s", "MB/s", "ratio", "CPU ms/file", "req/file", "peak RSS")
	for _, r := range rows {
		ratio := "-"
		if !math.IsNaN(r.ratio) {
			ratio = fmt.Sprintf("%.2f× %s", r.ratio, r.base)
		}
		lat := latencyName(r.latency)
		if r.bandwidth > 0 {
			lat = f1(float64(r.bandwidth)/1000) + " MB/s" // toxiproxy's KB are 1,000 bytes
		}
		fmt.Fprintf(w, f, fmt.Sprintf("%s %d", r.set, r.files), r.variant, r.workers, lat, f1(r.filesPerSec), f1(r.mbPerSec),
			ratio, f3(r.cpuPerFile), f2(r.reqPerFile), f1(mib(r.peakRSS))+" MiB")
	}
}

// writeOutputs writes summary.csv (the table), runs.csv (every run) and
// throughput.svg under dir.
func writeOutputs(dir string, rows []row, results []result, latency time.Duration) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	summary := [][]string{{"set", "files", "variant", "workers", "latency_ms", "bandwidth_kb_per_s", "runs", "files_per_s", "mb_per_s", "ratio", "ratio_over", "cpu_ms_per_file", "requests_per_file", "peak_rss_mib"}}
	for _, r := range rows {
		summary = append(summary, []string{r.set, strconv.Itoa(r.files), r.variant, strconv.Itoa(r.workers), strconv.FormatInt(r.latency.Milliseconds(), 10),
			strconv.Itoa(r.bandwidth), strconv.Itoa(r.runs), f1(r.filesPerSec), f1(r.mbPerSec), f3(r.ratio), r.base, f3(r.cpuPerFile), f2(r.reqPerFile), f1(mib(r.peakRSS))})
	}
	runs := [][]string{{"round", "set", "variant", "workers", "latency_ms", "files", "bytes", "seconds", "files_per_s", "cpu_ms_per_file", "requests", "peak_rss_mib", "requests_by_api"}}
	for _, r := range results {
		runs = append(runs, []string{strconv.Itoa(r.round), r.set, r.variant, strconv.Itoa(r.workers), strconv.FormatInt(r.latency.Milliseconds(), 10),
			strconv.Itoa(r.files), strconv.FormatInt(r.bytes, 10), f3(r.elapsed.Seconds()), f1(r.filesPerSec()), f3(r.cpuPerFile()),
			strconv.Itoa(r.requests.total()), f1(mib(r.maxRSS)), r.requests.String()})
	}
	for name, recs := range map[string][][]string{"summary.csv": summary, "runs.csv": runs} {
		if err := writeCSV(filepath.Join(dir, name), recs); err != nil {
			return err
		}
	}
	return os.WriteFile(filepath.Join(dir, "throughput.svg"), []byte(chart(rows, latency)), 0o644)
}

func writeCSV(path string, recs [][]string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := csv.NewWriter(f)
	if err := w.WriteAll(recs); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// chart draws files/s against workers (log scale) of the small set at the
// added latency, one line per variant.
func chart(rows []row, latency time.Duration) string {
	var pts []row
	for _, r := range rows {
		if r.set == "small" && r.latency == latency && latency > 0 {
			pts = append(pts, r)
		}
	}
	const w, h, left, right, top, bottom = 640, 400, 70, 130, 40, 50
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" font-size="12">`+"\n", w, h)
	fmt.Fprintf(&b, `<rect width="%d" height="%d" fill="white"/>`+"\n", w, h)
	fmt.Fprintf(&b, `<text x="%d" y="20" font-size="14">Small files (4 KiB) with +%s latency: files/s against workers</text>`+"\n", left, latency)
	if len(pts) == 0 {
		b.WriteString(`<text x="70" y="200">no latency case in this run</text></svg>` + "\n")
		return b.String()
	}
	var workers []int
	ymax := 0.0
	for _, p := range pts {
		if !slices.Contains(workers, p.workers) {
			workers = append(workers, p.workers)
		}
		ymax = max(ymax, p.filesPerSec)
	}
	slices.Sort(workers)
	ymax = niceCeil(ymax)
	pw, ph := float64(w-left-right), float64(h-top-bottom)
	x := func(n int) float64 {
		if len(workers) == 1 {
			return float64(left) + pw/2
		}
		lo, hi := math.Log(float64(workers[0])), math.Log(float64(workers[len(workers)-1]))
		return float64(left) + pw*(math.Log(float64(n))-lo)/(hi-lo)
	}
	y := func(v float64) float64 { return float64(top) + ph*(1-v/ymax) }
	fmt.Fprintf(&b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="black"/>`+"\n", left, h-bottom, w-right, h-bottom)
	fmt.Fprintf(&b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="black"/>`+"\n", left, top, left, h-bottom)
	for i := 0; i <= 5; i++ {
		v := ymax * float64(i) / 5
		fmt.Fprintf(&b, `<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#ddd"/><text x="%d" y="%.1f" text-anchor="end">%.0f</text>`+"\n",
			left, y(v), w-right, y(v), left-6, y(v)+4, v)
	}
	for _, n := range workers {
		fmt.Fprintf(&b, `<text x="%.1f" y="%d" text-anchor="middle">%d</text>`+"\n", x(n), h-bottom+18, n)
	}
	fmt.Fprintf(&b, `<text x="%.1f" y="%d" text-anchor="middle">workers</text>`+"\n", float64(left)+pw/2, h-12)
	fmt.Fprintf(&b, `<text x="16" y="%.1f" transform="rotate(-90 16 %.1f)" text-anchor="middle">files/s (median)</text>`+"\n", float64(top)+ph/2, float64(top)+ph/2)
	colors := map[string]string{pipeline: "#d62728", plain: "#1f77b4", naive: "#7f7f7f", runner: "#ff7f0e", sdkPath: "#2ca02c"}
	var variants []string
	for _, p := range pts {
		if !slices.Contains(variants, p.variant) {
			variants = append(variants, p.variant)
		}
	}
	for i, v := range variants {
		var coords []string
		for _, p := range pts {
			if p.variant == v {
				coords = append(coords, fmt.Sprintf("%.1f,%.1f", x(p.workers), y(p.filesPerSec)))
				fmt.Fprintf(&b, `<circle cx="%.1f" cy="%.1f" r="3" fill="%s"/>`+"\n", x(p.workers), y(p.filesPerSec), colors[v])
			}
		}
		fmt.Fprintf(&b, `<polyline points="%s" fill="none" stroke="%s" stroke-width="2"/>`+"\n", strings.Join(coords, " "), colors[v])
		ly := top + 10 + 20*i
		fmt.Fprintf(&b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="%s" stroke-width="2"/><text x="%d" y="%d">%s</text>`+"\n",
			w-right+10, ly, w-right+30, ly, colors[v], w-right+36, ly+4, v)
	}
	b.WriteString("</svg>\n")
	return b.String()
}

// niceCeil rounds v up to 1, 2 or 5 times a power of ten.
func niceCeil(v float64) float64 {
	if v <= 0 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if v <= m*p {
			return m * p
		}
	}
	return 10 * p
}

func f2(x float64) string { return strconv.FormatFloat(x, 'f', 2, 64) }
