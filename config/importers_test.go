package config

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
)

// registerImporterTypeForTest makes Validate accept names (as a Go
// program's ingest.Register would, through SetImporterTypes) until the test
// ends.
func registerImporterTypeForTest(t *testing.T, names ...string) {
	t.Helper()
	var mu sync.Mutex
	registered := slices.Clone(names)
	prev := importerTypes.Load()
	SetImporterTypes(func() []string {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(registered)
	})
	t.Cleanup(func() { importerTypes.Store(prev) })
}

const registeredConn = `principal_arn: arn:aws:iam::111122223333:root
connections:
  - name: acme
    status: active
    account_id: "123456789012"
    bucket: acme-exports
    region: eu-central-1
    external_id: abcdefghijklmnopqrstuvwxyz234567
`

func TestRegisteredImporterType(t *testing.T) {
	registerImporterTypeForTest(t, "my-sink_2")

	tests := []struct {
		name     string
		importer string
		check    func(t *testing.T, imp Importer)
		wantErr  []string
	}{
		{
			name:     "options and other keys are the factory's business",
			importer: "{type: my-sink_2, url: kafka://broker:9092, path: relative/dir, headers: {a b: c}, timeout: 5s, options: {topic: files, acks: [1, 2], tls: {enabled: true}}}",
			check: func(t *testing.T, imp Importer) {
				if imp.Options["topic"] != "files" || !slices.Equal(imp.Options["acks"].([]any), []any{1, 2}) {
					t.Errorf("options = %#v", imp.Options)
				}
				if tls, ok := imp.Options["tls"].(map[string]any); !ok || tls["enabled"] != true {
					t.Errorf("options.tls = %#v, want map[string]any{enabled: true}", imp.Options["tls"])
				}
			},
		},
		{
			name:     "no options",
			importer: "{type: my-sink_2}",
			check: func(t *testing.T, imp Importer) {
				if imp.Options != nil {
					t.Errorf("options = %#v, want nil", imp.Options)
				}
			},
		},
		{
			name:     "timeout still not negative",
			importer: "{type: my-sink_2, timeout: -1s}",
			wantErr:  []string{"connections[0].importer.timeout: must not be negative, got -1s"},
		},
		{
			name:     "listed among the types",
			importer: "{type: my-sikn_2}",
			wantErr:  []string{`connections[0].importer.type: unknown importer type "my-sikn_2"; must be one of dir, discard, exec, http, my-sink_2; did you mean "my-sink_2"?`},
		},
		{
			name:     "listed when the type is missing",
			importer: "{}",
			wantErr:  []string{"connections[0].importer.type: is required for an active connection; one of dir, discard, exec, http, my-sink_2"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := Parse([]byte(registeredConn + "    importer: " + tt.importer + "\n"))
			if tt.wantErr != nil {
				if err == nil {
					t.Fatalf("Parse succeeded, want %q", tt.wantErr)
				}
				if got := strings.Split(err.Error(), "\n"); !slices.Equal(got, tt.wantErr) {
					t.Fatalf("Parse error =\n%s\nwant\n%s", err, strings.Join(tt.wantErr, "\n"))
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, cfg.Connections[0].Importer)
		})
	}
}

func TestImporterTypes(t *testing.T) {
	want := []string{ImporterDir, ImporterDiscard, ImporterExec, ImporterHTTP}
	if got := ImporterTypes(); !slices.Equal(got, want) {
		t.Fatalf("ImporterTypes() = %q, want %q", got, want)
	}
	// The hook may list the built-in types too (ingest's environments do):
	// each is listed once.
	registerImporterTypeForTest(t, "zeta", ImporterDir, "alpha")
	want = []string{"alpha", ImporterDir, ImporterDiscard, ImporterExec, ImporterHTTP, "zeta"}
	if got := ImporterTypes(); !slices.Equal(got, want) {
		t.Errorf("ImporterTypes() = %q, want %q", got, want)
	}
}

// TestImporterTypesHookConcurrent is for -race: types registered (the hook
// asked) while configurations are validated; a type counts from the
// validation after its registration on.
func TestImporterTypesHookConcurrent(t *testing.T) {
	var mu sync.Mutex
	var names []string
	prev := importerTypes.Load()
	t.Cleanup(func() { importerTypes.Store(prev) })
	SetImporterTypes(func() []string {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(names)
	})
	var wg sync.WaitGroup
	for i := range 8 {
		name := fmt.Sprintf("sink%d", i)
		wg.Go(func() {
			mu.Lock()
			names = append(names, name)
			mu.Unlock()
		})
		wg.Go(func() {
			// Valid or not depending on the race; only the data race matters.
			_, _ = Parse([]byte(registeredConn + "    importer: {type: " + name + "}\n"))
		})
	}
	wg.Wait()
	if got := len(ImporterTypes()); got != 4+8 {
		t.Errorf("%d types after registering 8, want 12", got)
	}
	if _, err := Parse([]byte(registeredConn + "    importer: {type: sink7, options: {a: 1}}\n")); err != nil {
		t.Errorf("registered type rejected: %v", err)
	}
}

func TestImporterPermanentStatusAndEnv(t *testing.T) {
	tests := []struct {
		name     string
		importer string
		check    func(t *testing.T, imp Importer)
		wantErr  []string
	}{
		{
			name:     "permanent_status left out: nil, the importer applies the default",
			importer: "{type: http, url: https://sink.example/files}",
			check: func(t *testing.T, imp Importer) {
				if imp.PermanentStatus != nil {
					t.Errorf("permanent_status = %v, want nil", imp.PermanentStatus)
				}
			},
		},
		{
			name:     "permanent_status listed",
			importer: "{type: http, url: https://sink.example/files, permanent_status: [400, 422, 599]}",
			check: func(t *testing.T, imp Importer) {
				if !slices.Equal(imp.PermanentStatus, []int{400, 422, 599}) {
					t.Errorf("permanent_status = %v", imp.PermanentStatus)
				}
			},
		},
		{
			name:     "permanent_status empty: nothing is permanent",
			importer: "{type: http, url: https://sink.example/files, permanent_status: []}",
			check: func(t *testing.T, imp Importer) {
				if imp.PermanentStatus == nil || len(imp.PermanentStatus) != 0 {
					t.Errorf("permanent_status = %#v, want an empty list", imp.PermanentStatus)
				}
			},
		},
		{
			name:     "permanent_status out of range",
			importer: "{type: http, url: https://sink.example/files, permanent_status: [200, 399, 400, 599, 600, -1]}",
			wantErr: []string{
				"connections[0].importer.permanent_status[0]: must be an HTTP error status between 400 and 599, got 200",
				"connections[0].importer.permanent_status[1]: must be an HTTP error status between 400 and 599, got 399",
				"connections[0].importer.permanent_status[4]: must be an HTTP error status between 400 and 599, got 600",
				"connections[0].importer.permanent_status[5]: must be an HTTP error status between 400 and 599, got -1",
			},
		},
		{
			name:     "permanent_status not a list of numbers",
			importer: "{type: http, url: https://sink.example/files, permanent_status: [bad]}",
			wantErr:  []string{"line 9: connections[0].importer.permanent_status[0]: cannot unmarshal !!str `bad` into int"},
		},
		{
			name:     "permanent_status only for http",
			importer: "{type: exec, command: [/bin/true], permanent_status: [400]}",
			wantErr:  []string{`connections[0].importer.permanent_status: not used by importer type "exec"`},
		},
		{
			name:     "env given as is",
			importer: `{type: exec, command: [/bin/true], env: {DSN: "postgres://u:p@db/x?sslmode=require", PATH: /opt/bin, _x1: ""}}`,
			check: func(t *testing.T, imp Importer) {
				want := map[string]string{"DSN": "postgres://u:p@db/x?sslmode=require", "PATH": "/opt/bin", "_x1": ""}
				if !maps.Equal(imp.Env, want) {
					t.Errorf("env = %v, want %v", imp.Env, want)
				}
			},
		},
		{
			name:     "env names checked, values never echoed",
			importer: `{type: exec, command: [/bin/true], env: {"A B": hunter2, "A=B": hunter2, "": hunter2, S3CONNECTOR_ETAG: hunter2, NUL: "hunter2\0"}}`,
			wantErr: []string{
				`connections[0].importer.env[""]: invalid variable name: letters, digits and underscores, not starting with a digit`,
				`connections[0].importer.env["A B"]: invalid variable name: letters, digits and underscores, not starting with a digit`,
				`connections[0].importer.env["A=B"]: invalid variable name: letters, digits and underscores, not starting with a digit`,
				`connections[0].importer.env["NUL"]: value must not contain NUL`,
				`connections[0].importer.env["S3CONNECTOR_ETAG"]: the S3CONNECTOR_* variables describe the file and are set by s3connector`,
			},
		},
		{
			name:     "env only for exec",
			importer: "{type: http, url: https://sink.example/files, env: {A: b}}",
			wantErr:  []string{`connections[0].importer.env: not used by importer type "http"`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := Parse([]byte(registeredConn + "    importer: " + tt.importer + "\n"))
			if tt.wantErr != nil {
				if err == nil {
					t.Fatalf("Parse succeeded, want %q", tt.wantErr)
				}
				if strings.Contains(err.Error(), "hunter2") {
					t.Errorf("error shows a value: %v", err)
				}
				if got := strings.Split(err.Error(), "\n"); !slices.Equal(got, tt.wantErr) {
					t.Fatalf("Parse error =\n%s\nwant\n%s", err, strings.Join(tt.wantErr, "\n"))
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, cfg.Connections[0].Importer)
		})
	}
}

func TestDefaultPermanentStatusIsACopy(t *testing.T) {
	DefaultPermanentStatus()[0] = 999
	if got := DefaultPermanentStatus(); !slices.Equal(got, []int{400, 413, 415, 422}) {
		t.Errorf("DefaultPermanentStatus() = %v", got)
	}
}
