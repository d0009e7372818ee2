package config

import (
	"strings"
	"testing"
)

var defaultDownload = Download{
	ParallelThreshold: Threshold{Size: DefaultDownloadParallelThreshold},
	PartSize:          DefaultDownloadPartSize,
	Concurrency:       DefaultDownloadConcurrency,
}

func TestDownload(t *testing.T) {
	const conn = `principal_arn: arn:aws:iam::111122223333:root
connections:
  - name: acme
    account_id: "123456789012"
    bucket: acme-exports
    region: eu-central-1
`
	tests := []struct {
		name string
		yaml string
		want Download
		errs []string // every problem, in order
	}{
		{name: "defaults", yaml: "", want: defaultDownload},
		{name: "empty block", yaml: "    download: {}\n", want: defaultDownload},
		{
			name: "every key",
			yaml: "    download:\n      parallel_threshold: 1GiB\n      part_size: 16MiB\n      concurrency: 8\n",
			want: Download{ParallelThreshold: Threshold{Size: 1 << 30}, PartSize: 16 << 20, Concurrency: 8},
		},
		{
			name: "off",
			yaml: "    download: {parallel_threshold: off}\n",
			want: Download{ParallelThreshold: Off, PartSize: DefaultDownloadPartSize, Concurrency: DefaultDownloadConcurrency},
		},
		{
			name: "off quoted, any case",
			yaml: "    download: {parallel_threshold: \"OFF\"}\n",
			want: Download{ParallelThreshold: Off, PartSize: DefaultDownloadPartSize, Concurrency: DefaultDownloadConcurrency},
		},
		{
			name: "threshold equal to the part size",
			yaml: "    download: {parallel_threshold: 8MiB}\n",
			want: Download{ParallelThreshold: Threshold{Size: 8 << 20}, PartSize: DefaultDownloadPartSize, Concurrency: DefaultDownloadConcurrency},
		},
		{
			name: "from the environment",
			yaml: "    download: {parallel_threshold: \"${S3C_TEST_THRESHOLD}\"}\n",
			want: Download{ParallelThreshold: Threshold{Size: 128 << 20}, PartSize: DefaultDownloadPartSize, Concurrency: DefaultDownloadConcurrency},
		},
		{
			name: "zero threshold",
			yaml: "    download: {parallel_threshold: 0}\n",
			errs: []string{"connections[0].download.parallel_threshold: 0 is not a threshold: write off to read every file with a single GET, or a size such as 64MiB (the default)"},
		},
		{
			name: "threshold below the part size",
			yaml: "    download: {parallel_threshold: 1MiB, part_size: 4MiB}\n",
			errs: []string{"connections[0].download.parallel_threshold: must be at least part_size (4MiB), got 1MiB: a file of one part is read with a single GET anyway; write off to turn parallel downloads off"},
		},
		{
			name: "threshold not a size",
			yaml: "    download: {parallel_threshold: never}\n",
			errs: []string{`line 7: connections[0].download.parallel_threshold: "never" is not a size: use a number of bytes or a number with a unit (KB, MB, GB, TB, KiB, MiB, GiB, TiB), e.g. 512MiB, or off`},
		},
		{
			name: "threshold a list",
			yaml: "    download: {parallel_threshold: [1, 2]}\n",
			errs: []string{"line 7: connections[0].download.parallel_threshold: a size must be a number or a string such as 512MiB, or off"},
		},
		{
			name: "part size and concurrency out of range",
			yaml: "    download: {part_size: 64KiB, concurrency: 65}\n",
			errs: []string{
				"connections[0].download.part_size: must be between 1MiB and 1GiB, got 64KiB",
				"connections[0].download.concurrency: must be between 1 and 64, got 65",
			},
		},
		{
			name: "part size too large, negative concurrency",
			yaml: "    download: {part_size: 2GiB, concurrency: -1}\n",
			errs: []string{
				"connections[0].download.part_size: must be between 1MiB and 1GiB, got 2GiB",
				"connections[0].download.concurrency: must be between 1 and 64, got -1",
			},
		},
		{
			name: "part size off",
			yaml: "    download: {part_size: off}\n",
			errs: []string{`line 7: connections[0].download.part_size: "off" is not a size`},
		},
		{
			name: "unknown key with hint",
			yaml: "    download: {part_sise: 16MiB}\n",
			errs: []string{`line 7: unknown key "part_sise" in a download block; did you mean "part_size"?`},
		},
	}
	t.Setenv("S3C_TEST_THRESHOLD", "128MiB")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := Parse([]byte(conn + tt.yaml))
			if tt.errs != nil {
				if err == nil {
					t.Fatalf("Parse = %+v, want errors %q", cfg.Connections[0].Download, tt.errs)
				}
				got := strings.Split(err.Error(), "\n")
				if len(got) != len(tt.errs) {
					t.Fatalf("Parse errors:\n%s\nwant %d: %q", err, len(tt.errs), tt.errs)
				}
				for i, w := range tt.errs {
					if !strings.HasPrefix(got[i], w) {
						t.Errorf("problem %d = %q, want it to start with %q", i, got[i], w)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := cfg.Connections[0].Download; got != tt.want {
				t.Errorf("download = %+v, want %+v", got, tt.want)
			}
		})
	}
}

// TestDownloadTemplate: the admin template's download block reaches the
// stored connections, its problems named with their admin.template path.
func TestDownloadTemplate(t *testing.T) {
	const base = `principal_arn: arn:aws:iam::111122223333:root
data_dir: /var/lib/s3connector
admin:
  template:
    importer: {type: discard}
`
	cfg, err := Parse([]byte(base + "    download: {parallel_threshold: off, concurrency: 2}\n"))
	if err != nil {
		t.Fatal(err)
	}
	want := Download{ParallelThreshold: Off, PartSize: DefaultDownloadPartSize, Concurrency: 2}
	if got := cfg.Admin.Template.Connection().Download; got != want {
		t.Errorf("template download = %+v, want %+v", got, want)
	}
	_, err = Parse([]byte(base + "    download: {concurrency: 100}\n"))
	if err == nil || err.Error() != "admin.template.download.concurrency: must be between 1 and 64, got 100" {
		t.Errorf("Parse error = %v, want the template's concurrency problem", err)
	}
}

func TestThresholdString(t *testing.T) {
	if s := Off.String(); s != "off" {
		t.Errorf("Off.String() = %q", s)
	}
	if s := (Threshold{Size: 64 << 20}).String(); s != "64MiB" {
		t.Errorf("String() = %q", s)
	}
}
