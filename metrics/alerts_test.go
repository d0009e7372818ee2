package metrics

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"go.yaml.in/yaml/v3"
)

// The alerting rules, their promtool unit tests and the Grafana dashboard
// ship with the metrics they query; these tests keep the three in step with
// New, so that renaming a metric or a label breaks the build here rather
// than an alert in production.
const (
	rulesFile     = "alerts/s3connector.rules.yml"
	rulesTestFile = "alerts/s3connector.rules.test.yml"
	dashboardFile = "dashboards/s3connector.json"
)

// targetLabels are added by Prometheus when it scrapes a target; the rules
// keep them and the unit-test series carry them.
var targetLabels = []string{"instance", "job"}

func runPromtool(t *testing.T, args ...string) {
	t.Helper()
	cmd := exec.Command(promtoolPath(t), args...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	t.Logf("promtool %s:\n%s", strings.Join(args, " "), out)
}

func TestAlertRulesCheck(t *testing.T) {
	runPromtool(t, "check", "rules", "--lint=all", "--lint-fatal", rulesFile)
}

func TestAlertRulesUnitTests(t *testing.T) {
	runPromtool(t, "test", "rules", rulesTestFile)
}

// ruleFile is the part of a Prometheus rule file these tests read.
type ruleFile struct {
	Groups []struct {
		Name  string `yaml:"name"`
		Rules []rule `yaml:"rules"`
	} `yaml:"groups"`
}

type rule struct {
	Alert       string            `yaml:"alert"`
	Record      string            `yaml:"record"`
	Expr        string            `yaml:"expr"`
	For         string            `yaml:"for"`
	Labels      map[string]string `yaml:"labels"`
	Annotations map[string]string `yaml:"annotations"`
}

// ruleTestFile is the part of a promtool rule test file these tests read.
type ruleTestFile struct {
	Tests []struct {
		Name        string `yaml:"name"`
		InputSeries []struct {
			Series string `yaml:"series"`
		} `yaml:"input_series"`
		AlertRuleTest []struct {
			EvalTime  string `yaml:"eval_time"`
			Alertname string `yaml:"alertname"`
			ExpAlerts []struct {
				ExpLabels map[string]string `yaml:"exp_labels"`
			} `yaml:"exp_alerts"`
		} `yaml:"alert_rule_test"`
	} `yaml:"tests"`
}

func loadYAML(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

func loadAlerts(t *testing.T) []rule {
	t.Helper()
	var f ruleFile
	loadYAML(t, rulesFile, &f)
	if len(f.Groups) != 1 || f.Groups[0].Name != "s3connector" {
		t.Fatalf("%s: want one group named s3connector", rulesFile)
	}
	var alerts []rule
	for _, r := range f.Groups[0].Rules {
		if r.Alert == "" {
			t.Errorf("%s: rule %q is not an alert", rulesFile, r.Record)
			continue
		}
		alerts = append(alerts, r)
	}
	if len(alerts) == 0 {
		t.Fatalf("%s: no alerts", rulesFile)
	}
	return alerts
}

// TestAlertRulesConventions checks what promtool does not: the labels and
// annotations on-call relies on, and that each alert is tested both ways
// (an exp_alerts: [] case alone would pass for a misspelled alert name).
func TestAlertRulesConventions(t *testing.T) {
	alerts := loadAlerts(t)
	var tests ruleTestFile
	loadYAML(t, rulesTestFile, &tests)

	fires := map[string]bool{}
	quiet := map[string]bool{}
	for _, tc := range tests.Tests {
		for _, a := range tc.AlertRuleTest {
			if len(a.ExpAlerts) > 0 {
				fires[a.Alertname] = true
			} else {
				quiet[a.Alertname] = true
			}
		}
	}

	names := map[string]bool{}
	for _, r := range alerts {
		t.Run(r.Alert, func(t *testing.T) {
			if names[r.Alert] {
				t.Errorf("alert defined twice")
			}
			names[r.Alert] = true
			if !strings.HasPrefix(r.Alert, "S3Connector") {
				t.Errorf("name does not start with S3Connector")
			}
			if r.For == "" {
				t.Errorf("no for:")
			}
			if s := r.Labels["severity"]; s != "critical" && s != "warning" {
				t.Errorf("severity label = %q, want critical or warning", s)
			}
			for _, key := range []string{"summary", "description", "runbook"} {
				if strings.TrimSpace(r.Annotations[key]) == "" {
					t.Errorf("no %s annotation", key)
				}
			}
			for _, key := range []string{"summary", "description"} {
				if !strings.Contains(r.Annotations[key], "$labels.connection") {
					t.Errorf("%s annotation does not name the connection ({{ $labels.connection }})", key)
				}
			}
			if !fires[r.Alert] {
				t.Errorf("%s has no case where it fires", rulesTestFile)
			}
			if !quiet[r.Alert] {
				t.Errorf("%s has no case where it does not fire (exp_alerts: [])", rulesTestFile)
			}
		})
	}
	for name := range fires {
		if !names[name] {
			t.Errorf("%s tests unknown alert %q", rulesTestFile, name)
		}
	}
	for name := range quiet {
		if !names[name] {
			t.Errorf("%s tests unknown alert %q", rulesTestFile, name)
		}
	}
}

// dashboard is the part of the Grafana dashboard model these tests read.
type dashboard struct {
	UID           string `json:"uid"`
	Title         string `json:"title"`
	SchemaVersion int    `json:"schemaVersion"`
	Templating    struct {
		List []struct {
			Name       string          `json:"name"`
			Type       string          `json:"type"`
			Query      json.RawMessage `json:"query"`
			Datasource *datasourceRef  `json:"datasource"`
			Multi      bool            `json:"multi"`
			IncludeAll bool            `json:"includeAll"`
		} `json:"list"`
	} `json:"templating"`
	Panels []panel `json:"panels"`
}

type datasourceRef struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

type panel struct {
	ID         int            `json:"id"`
	Type       string         `json:"type"`
	Title      string         `json:"title"`
	Datasource *datasourceRef `json:"datasource"`
	Targets    []struct {
		RefID      string         `json:"refId"`
		Expr       string         `json:"expr"`
		Datasource *datasourceRef `json:"datasource"`
	} `json:"targets"`
	Panels []panel `json:"panels"` // a collapsed row holds its panels
}

// query is one PromQL expression of the dashboard or the rules, with where
// it comes from for error messages.
type query struct {
	where string
	expr  string
	// dashboard queries must honour the connection variable.
	dashboard bool
}

func loadDashboard(t *testing.T) dashboard {
	t.Helper()
	b, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	if !json.Valid(b) {
		t.Fatalf("%s is not valid JSON", dashboardFile)
	}
	var d dashboard
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("%s: %v", dashboardFile, err)
	}
	return d
}

// allPanels flattens rows: top-level panels and those inside collapsed rows.
func allPanels(ps []panel) []panel {
	var out []panel
	for _, p := range ps {
		out = append(out, p)
		out = append(out, allPanels(p.Panels)...)
	}
	return out
}

// dashboardQueries returns every panel target's expression.
func dashboardQueries(d dashboard) []query {
	var qs []query
	for _, p := range allPanels(d.Panels) {
		for _, tg := range p.Targets {
			qs = append(qs, query{
				where:     fmt.Sprintf("%s: panel %q target %s", dashboardFile, p.Title, tg.RefID),
				expr:      tg.Expr,
				dashboard: true,
			})
		}
	}
	return qs
}

// variableQuery returns the query of a template variable, stored either
// as a string or (Grafana 10+) as {"query": "..."}.
func variableQuery(raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	var o struct {
		Query string `json:"query"`
	}
	_ = json.Unmarshal(raw, &o)
	return o.Query
}

const datasourceVar = "${datasource}"

func TestDashboard(t *testing.T) {
	d := loadDashboard(t)
	if d.UID == "" || d.Title == "" {
		t.Errorf("uid %q, title %q: want both", d.UID, d.Title)
	}
	if d.SchemaVersion < 36 {
		t.Errorf("schemaVersion %d: want a Grafana 10/11 dashboard (39)", d.SchemaVersion)
	}

	vars := map[string]bool{}
	for _, v := range d.Templating.List {
		vars[v.Name] = true
		switch v.Name {
		case "datasource":
			if v.Type != "datasource" || variableQuery(v.Query) != "prometheus" {
				t.Errorf("variable datasource: type %q query %q, want a prometheus datasource variable", v.Type, variableQuery(v.Query))
			}
		case "connection":
			if v.Type != "query" || !v.Multi || !v.IncludeAll {
				t.Errorf("variable connection: type %q multi %v includeAll %v, want a multi-value query variable with All", v.Type, v.Multi, v.IncludeAll)
			}
			if v.Datasource == nil || v.Datasource.UID != datasourceVar {
				t.Errorf("variable connection: datasource %+v, want uid %s", v.Datasource, datasourceVar)
			}
			if q := variableQuery(v.Query); q != "label_values(s3connector_workers, connection)" {
				t.Errorf("variable connection: query %q", q)
			}
		}
	}
	for _, name := range []string{"datasource", "connection"} {
		if !vars[name] {
			t.Errorf("no %s variable", name)
		}
	}

	ids := map[int]string{}
	for _, p := range allPanels(d.Panels) {
		if strings.TrimSpace(p.Title) == "" {
			t.Errorf("panel id %d has no title", p.ID)
		}
		if prev, dup := ids[p.ID]; dup {
			t.Errorf("panels %q and %q share id %d", prev, p.Title, p.ID)
		}
		ids[p.ID] = p.Title
		if p.Type == "row" {
			continue
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no target", p.Title)
		}
		// A fixed datasource uid would not exist in the Grafana the
		// dashboard is imported into.
		if p.Datasource == nil || p.Datasource.UID != datasourceVar {
			t.Errorf("panel %q: datasource %+v, want uid %s", p.Title, p.Datasource, datasourceVar)
		}
		refs := map[string]bool{}
		for _, tg := range p.Targets {
			if strings.TrimSpace(tg.Expr) == "" {
				t.Errorf("panel %q target %s has no expr", p.Title, tg.RefID)
			}
			if tg.RefID == "" || refs[tg.RefID] {
				t.Errorf("panel %q: target refId %q empty or repeated", p.Title, tg.RefID)
			}
			refs[tg.RefID] = true
			if tg.Datasource != nil && tg.Datasource.UID != datasourceVar {
				t.Errorf("panel %q target %s: datasource %+v, want uid %s", p.Title, tg.RefID, tg.Datasource, datasourceVar)
			}
		}
	}
}

// grafanaRangeVars stand in for Grafana's interval variables so that
// promtool can parse the dashboard's queries.
var grafanaRangeVars = strings.NewReplacer(
	"$__rate_interval", "5m",
	"${__rate_interval}", "5m",
	"$__interval", "1m",
	"${__interval}", "1m",
	"$__range", "1h",
	"${__range}", "1h",
)

// TestDashboardQueriesParse has promtool parse every dashboard query, as
// recording rules in a scratch rule file.
func TestDashboardQueriesParse(t *testing.T) {
	type record struct {
		Record string `yaml:"record"`
		Expr   string `yaml:"expr"`
	}
	var records []record
	for i, q := range dashboardQueries(loadDashboard(t)) {
		records = append(records, record{
			Record: fmt.Sprintf("s3connector_dashboard_query_%d", i),
			Expr:   grafanaRangeVars.Replace(q.expr),
		})
	}
	b, err := yaml.Marshal(map[string]any{
		"groups": []any{map[string]any{"name": "dashboard", "rules": records}},
	})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "dashboard.rules.yml")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	runPromtool(t, "check", "rules", "--lint=none", path)
}

// family is a registered metric family: what selectors may name and match.
type family struct {
	typ    dto.MetricType
	labels []string
}

// registeredMetrics gathers a registry on which every Metrics method has
// been called, and returns the selectable metric names (histograms by their
// _bucket, _sum and _count series) with their label names.
func registeredMetrics(t *testing.T) map[string]family {
	t.Helper()
	m, reg := newTestMetrics(t)
	m.SetBuildInfo("v1.2.3", "abc1234")
	m.ConfigReload(true, time.Unix(1_700_000_000, 0))
	exercise(m, "alpha")
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]family{}
	for _, mf := range mfs {
		f := family{typ: mf.GetType()}
		for _, metric := range mf.GetMetric() {
			for _, l := range metric.GetLabel() {
				if !slices.Contains(f.labels, l.GetName()) {
					f.labels = append(f.labels, l.GetName())
				}
			}
		}
		name := mf.GetName()
		switch f.typ {
		case dto.MetricType_HISTOGRAM:
			names[name+"_bucket"] = family{typ: f.typ, labels: append(slices.Clone(f.labels), "le")}
			names[name+"_sum"] = f
			names[name+"_count"] = f
		default:
			names[name] = f
		}
	}
	return names
}

// TestQueriesUseRegisteredMetrics: every metric the dashboard, the alerts
// and the alert unit tests name is registered by New, with the labels they
// match on; and every dashboard selector follows the connection variable.
func TestQueriesUseRegisteredMetrics(t *testing.T) {
	registered := registeredMetrics(t)
	d := loadDashboard(t)

	queries := dashboardQueries(d)
	for _, v := range d.Templating.List {
		if v.Type != "query" {
			continue
		}
		sel, ok := labelValuesSelector(variableQuery(v.Query))
		if !ok {
			t.Errorf("%s: variable %s: query %q is not label_values(metric, label)", dashboardFile, v.Name, variableQuery(v.Query))
			continue
		}
		queries = append(queries, query{where: fmt.Sprintf("%s: variable %s", dashboardFile, v.Name), expr: sel})
	}
	for _, r := range loadAlerts(t) {
		queries = append(queries, query{where: fmt.Sprintf("%s: alert %s", rulesFile, r.Alert), expr: r.Expr})
	}
	var tests ruleTestFile
	loadYAML(t, rulesTestFile, &tests)
	for _, tc := range tests.Tests {
		for _, s := range tc.InputSeries {
			queries = append(queries, query{where: fmt.Sprintf("%s: test %q series", rulesTestFile, tc.Name), expr: s.Series})
		}
	}

	for _, q := range queries {
		sels, err := selectors(q.expr)
		if err != nil {
			t.Errorf("%s: %v\n%s", q.where, err, q.expr)
			continue
		}
		if len(sels) == 0 {
			t.Errorf("%s: no metric in %q", q.where, q.expr)
		}
		for _, s := range sels {
			f, ok := registered[s.name]
			if !ok {
				t.Errorf("%s: %s is not a metric registered by metrics.New", q.where, s.name)
				continue
			}
			for _, m := range s.matchers {
				if !slices.Contains(f.labels, m.label) && !slices.Contains(targetLabels, m.label) {
					t.Errorf("%s: %s has no label %q (labels: %v)", q.where, s.name, m.label, f.labels)
				}
			}
			if q.dashboard && !s.has("connection", "=~", "$connection") {
				t.Errorf("%s: %s does not select connection=~\"$connection\"", q.where, s.name)
			}
		}
	}
}

// labelValuesRE matches Grafana's label_values(metric, label) variable
// query; the metric part may be a selector.
var labelValuesRE = regexp.MustCompile(`^\s*label_values\(\s*(.+?)\s*,\s*[a-zA-Z_][a-zA-Z0-9_]*\s*\)\s*$`)

func labelValuesSelector(q string) (string, bool) {
	m := labelValuesRE.FindStringSubmatch(q)
	if m == nil {
		return "", false
	}
	return m[1], true
}

// selector is a metric name selected by an expression, with its matchers.
type selector struct {
	name     string
	matchers []matcher
}

type matcher struct{ label, op, value string }

func (s selector) has(label, op, value string) bool {
	return slices.Contains(s.matchers, matcher{label, op, value})
}

// PromQL words that are not metric names when not followed by "(".
var (
	groupingWords = []string{"by", "without", "on", "ignoring", "group_left", "group_right"}
	aggregators   = []string{
		"sum", "avg", "min", "max", "count", "group", "stddev", "stdvar",
		"topk", "bottomk", "quantile", "count_values", "limitk", "limit_ratio",
	}
	keywords = []string{"and", "or", "unless", "bool", "offset", "atan2", "inf", "nan"}
)

// selectors returns the metric selectors of a PromQL expression (or of a
// promtool input series, which has the same syntax). It is a lexer, not a
// parser (promtool checks the syntax): it skips strings, comments, ranges,
// numbers, Grafana variables and grouping label lists, and takes every
// other identifier not followed by "(" to be a metric name. A selector
// without a metric name ({__name__=...}) is an error, since its metric
// could not be checked.
func selectors(expr string) ([]selector, error) {
	var out []selector
	i := 0
	skipSpace := func() {
		for i < len(expr) && strings.ContainsRune(" \t\r\n", rune(expr[i])) {
			i++
		}
	}
	for i < len(expr) {
		c := expr[i]
		switch {
		case strings.ContainsRune(" \t\r\n", rune(c)):
			i++
		case c == '#':
			for i < len(expr) && expr[i] != '\n' {
				i++
			}
		case c == '"' || c == '\'' || c == '`':
			_, n, err := stringLiteral(expr[i:])
			if err != nil {
				return nil, err
			}
			i += n
		case c == '[':
			end := strings.IndexByte(expr[i:], ']')
			if end < 0 {
				return nil, fmt.Errorf("unclosed [ at %d", i)
			}
			i += end + 1
		case c == '{':
			return nil, fmt.Errorf("selector without a metric name at %d", i)
		case c == '$': // Grafana variable: $name or ${name}
			i++
			if i < len(expr) && expr[i] == '{' {
				end := strings.IndexByte(expr[i:], '}')
				if end < 0 {
					return nil, fmt.Errorf("unclosed ${ at %d", i)
				}
				i += end + 1
				break
			}
			for i < len(expr) && isIdentChar(expr[i]) {
				i++
			}
		case c >= '0' && c <= '9' || c == '.':
			// number or duration: 2, 0.95, 1e3, 0x1f, 5m, 1h30m
			for i < len(expr) && (isIdentChar(expr[i]) || expr[i] == '.') {
				i++
			}
		case isIdentStart(c):
			start := i
			for i < len(expr) && isIdentChar(expr[i]) {
				i++
			}
			word := expr[start:i]
			skipSpace()
			next := byte(0)
			if i < len(expr) {
				next = expr[i]
			}
			lower := strings.ToLower(word)
			switch {
			case slices.Contains(groupingWords, lower):
				if next == '(' {
					end := strings.IndexByte(expr[i:], ')')
					if end < 0 {
						return nil, fmt.Errorf("unclosed %s( at %d", word, i)
					}
					i += end + 1
				}
			case slices.Contains(aggregators, lower), slices.Contains(keywords, lower):
			case next == '(': // function call
			default:
				s := selector{name: word}
				if next == '{' {
					ms, n, err := matchers(expr[i:])
					if err != nil {
						return nil, fmt.Errorf("%s: %w", word, err)
					}
					s.matchers = ms
					i += n
				}
				out = append(out, s)
			}
		default:
			i++
		}
	}
	return out, nil
}

// matchers parses {label op "value", ...} at the start of s and returns
// the matchers and the length consumed.
func matchers(s string) ([]matcher, int, error) {
	var out []matcher
	i := 1 // past '{'
	skipSpace := func() {
		for i < len(s) && strings.ContainsRune(" \t\r\n", rune(s[i])) {
			i++
		}
	}
	for {
		skipSpace()
		if i >= len(s) {
			return nil, 0, fmt.Errorf("unclosed {")
		}
		if s[i] == '}' {
			return out, i + 1, nil
		}
		start := i
		for i < len(s) && isIdentChar(s[i]) {
			i++
		}
		label := s[start:i]
		if label == "" {
			return nil, 0, fmt.Errorf("label name expected at %q", s[i:])
		}
		if label == "__name__" {
			return nil, 0, fmt.Errorf("__name__ matcher: name the metric instead")
		}
		skipSpace()
		var op string
		for _, candidate := range []string{"=~", "!~", "!=", "="} {
			if strings.HasPrefix(s[i:], candidate) {
				op = candidate
				break
			}
		}
		if op == "" {
			return nil, 0, fmt.Errorf("matcher operator expected after %s", label)
		}
		i += len(op)
		skipSpace()
		value, n, err := stringLiteral(s[i:])
		if err != nil {
			return nil, 0, fmt.Errorf("%s%s: %w", label, op, err)
		}
		i += n
		out = append(out, matcher{label: label, op: op, value: value})
		skipSpace()
		if i < len(s) && s[i] == ',' {
			i++
		}
	}
}

// stringLiteral reads the quoted string at the start of s ('…', "…" or
// `…`) and returns its content (escapes kept as written) and the length
// consumed.
func stringLiteral(s string) (string, int, error) {
	if s == "" || !strings.ContainsRune("\"'`", rune(s[0])) {
		return "", 0, fmt.Errorf("string expected at %q", s)
	}
	quote := s[0]
	var b bytes.Buffer
	for i := 1; i < len(s); i++ {
		switch {
		case s[i] == '\\' && quote != '`' && i+1 < len(s):
			b.WriteByte(s[i])
			b.WriteByte(s[i+1])
			i++
		case s[i] == quote:
			return b.String(), i + 1, nil
		default:
			b.WriteByte(s[i])
		}
	}
	return "", 0, fmt.Errorf("unclosed string %s", s)
}

func isIdentStart(c byte) bool {
	return c == '_' || c == ':' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}

func isIdentChar(c byte) bool { return isIdentStart(c) || c >= '0' && c <= '9' }

func TestSelectors(t *testing.T) {
	tests := []struct {
		name    string
		expr    string
		want    []selector
		wantErr bool
	}{
		{
			name: "rate with grafana variables",
			expr: `sum by (connection, outcome) (rate(s3connector_files_total{connection=~"$connection", outcome=~"errored|retry"}[$__rate_interval]))`,
			want: []selector{{name: "s3connector_files_total", matchers: []matcher{
				{"connection", "=~", "$connection"}, {"outcome", "=~", "errored|retry"},
			}}},
		},
		{
			name: "histogram quantile",
			expr: `histogram_quantile(0.95, sum without (instance) (rate(s3connector_run_duration_seconds_bucket[1h])))`,
			want: []selector{{name: "s3connector_run_duration_seconds_bucket"}},
		},
		{
			name: "vector matching and keywords",
			expr: "time() - a > 2 * b\nor\n(c offset 5m unless ignoring(result) group_left (x, y) d)",
			want: []selector{{name: "a"}, {name: "b"}, {name: "c"}, {name: "d"}},
		},
		{
			name: "strings comments and functions",
			expr: "# s3connector_in_a_comment\nlabel_replace(m{a!~'x\\'y'}, \"dst\", \"$1\", \"src\", \"(.*)\") and on() vector(1)",
			want: []selector{{name: "m", matchers: []matcher{{"a", "!~", `x\'y`}}}},
		},
		{
			name: "promtool series",
			expr: `s3connector_workers{connection="alpha",instance="acme:9464"}`,
			want: []selector{{name: "s3connector_workers", matchers: []matcher{
				{"connection", "=", "alpha"}, {"instance", "=", "acme:9464"},
			}}},
		},
		{name: "selector without a name", expr: `{__name__=~"s3connector_.*"}`, wantErr: true},
		{name: "name matcher", expr: `m{__name__="x"}`, wantErr: true},
		{name: "unclosed string", expr: `m{a="x}`, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := selectors(tt.expr)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("selectors(%q) = %v, want an error", tt.expr, got)
				}
				return
			}
			if err != nil {
				t.Fatalf("selectors(%q): %v", tt.expr, err)
			}
			if fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Errorf("selectors(%q)\n got %v\nwant %v", tt.expr, got, tt.want)
			}
		})
	}
}
