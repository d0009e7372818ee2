# s3connector — build, test and demo. Everything the tests need (MinIO, mc)
# is built from the Go module proxy into .cache/bin on first use.

GO      ?= go
TOOLS   := $(CURDIR)/.cache/bin
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT  ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
LDFLAGS := -s -w -X main.version=$(VERSION) -X main.commit=$(COMMIT)

# Pinned test servers. MinIO: S3 + STS + SSE-KMS; mc: users and policies.
MINIO_VERSION := v0.0.0-20260212201848-7aac2a2c5b7c
MC_VERSION    := v0.0.0-20250313080218-cf909e1063a9
# staticcheck runs in `make check`.
STATICCHECK_VERSION := v0.8.2
# promtool lints the scraped metrics (metrics/metrics_test.go).
PROMTOOL_VERSION := v0.315.0
# kubeconform validates deploy/ (deploy/deploy_test.go) against JSON schemas
# the test makes from the Kubernetes OpenAPI spec and the Prometheus Operator
# CRDs of these releases, copied out of their Go modules.
KUBECONFORM_VERSION         := v0.7.0
KUBERNETES_VERSION          := v1.34.2
PROMETHEUS_OPERATOR_VERSION := v0.85.0
# toxiproxy puts S3-like latency between the bench and MinIO (make bench).
TOXIPROXY_VERSION := v2.5.0
K8S_OPENAPI := $(TOOLS)/k8s-openapi

export S3CONNECTOR_TOOLS := $(TOOLS)

.PHONY: all build test check demo bench bench-quick bench-listing bench-large bench-tools tools clean

all: build

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "$(LDFLAGS)" -o bin/s3connector ./cmd/s3connector

# The test command (README, .ci/run): installs the tools, checks formatting
# and vet, then runs every test with the race detector against real MinIO.
test: tools check
	$(GO) test -race -count=1 -timeout 15m ./...

check: $(TOOLS)/.staticcheck-$(STATICCHECK_VERSION)
	@unformatted=$$(gofmt -l .); if [ -n "$$unformatted" ]; then echo "gofmt needed:"; echo "$$unformatted"; exit 1; fi
	$(GO) vet -tags torture ./...
	$(TOOLS)/staticcheck -tags torture ./...

# staticcheck, built from the Go module proxy.
$(TOOLS)/.staticcheck-$(STATICCHECK_VERSION):
	@mkdir -p $(TOOLS)
	GOBIN=$(TOOLS) $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)
	@rm -f $(TOOLS)/.staticcheck-* && touch $@

# The demo: a local MinIO with a bucket of testdata files and the daemon with
# a data_dir and an admin token; the admin API driven step by step (create,
# IAM setup, a failing then a passing validation once the platform user has
# exactly the printed permissions policy, activate), the daemon archiving the
# files, and the wizard page's URL. It builds only what it needs: MinIO, mc
# and the binary. `make demo DEMO_FLAGS=-keep` keeps it running for the page.
DEMO_FLAGS ?=
demo: $(TOOLS)/.minio-$(MINIO_VERSION) $(TOOLS)/.mc-$(MC_VERSION) build
	$(GO) run ./cmd/s3connector-demo -binary bin/s3connector $(DEMO_FLAGS)

# The benchmarks, not part of `make test` (the first part about 15 minutes on
# 2 cores; with the cases below an estimated hour, not yet timed whole), on
# a local MinIO whose data is in /dev/shm when there is one (disk fsyncs make
# small-file runs noisy): the pipeline (`s3connector run --once`, discard
# importer) against a plain S3 loop with its deletes batched at the end and a
# naive loop (GET + COPY + DELETE per file), variants alternating round by
# round: 2,000 small files on loopback at 16 workers and behind toxiproxy
# adding 20 ms at 16, 64 and 256 workers, then 20 large files on loopback.
# One table, also written as CSV and an SVG chart to bench/out/; sdk-path is
# the pipeline with S3CONNECTOR_S3_SHORT_PATH=off, beside it. Then the Go
# heap of one run over a 1 MiB and a 1 GiB object, bench-listing,
# bench-large (12 minutes), and the million-key case over 100,000 keys
# (estimated from the million run's rates: 5 minutes of seeding, 7 of run;
# `make bench-million` alone runs the full million: 36 minutes of seeding
# and 52 of run measured on a quiet machine).
BENCH_SMALL := -small 2000 -latency 20ms -latency-workers 16,64,256 -workers 16 -out bench/out \
	-variants pipeline,sdk-path,plain,naive \
	-binary bin/s3connector $(if $(wildcard /dev/shm),-minio-dir /dev/shm)
bench: bench-tools build
	$(GO) run ./cmd/s3connector-bench $(BENCH_SMALL) -large 20 -large-size 64MiB -rounds 5
	$(GO) test -run '^$$' -bench RunPeakHeap -benchtime 2x ./ingest
	$(MAKE) bench-listing bench-large
	$(MAKE) bench-million MILLION_FLAGS="-keys 100000"

# Large files behind a per-connection bandwidth cap (toxiproxy's bandwidth
# toxic at 8 MB/s, S3's per-connection throughput stand-in): 20 × 64 MiB,
# the binary's parallel ranged download against the same binary with
# download.parallel_threshold off and the plain loop, 2 workers, 2 rounds
# (about 12 minutes). MinIO's data on disk: the sets are 1.3 GB.
bench-large: bench-tools build
	$(GO) run ./cmd/s3connector-bench -small 0 -large 20 -large-size 64MiB -bandwidth 8000 -rounds 2 \
		-binary bin/s3connector -minio-dir /tmp -out bench/out/large

# One round of the small-file and latency cases (under 3 minutes).
bench-quick: bench-tools build
	$(GO) run ./cmd/s3connector-bench $(BENCH_SMALL) -large 0 -rounds 1

bench-tools: $(TOOLS)/.minio-$(MINIO_VERSION) $(TOOLS)/.toxiproxy-$(TOXIPROXY_VERSION)

# A run over a 10-file inbox next to an empty archive/ and one of 100,000
# files: run time and LIST requests side by side (about 2 minutes, most of
# it seeding). MinIO's data goes to /dev/shm when there is one.
bench-listing: $(TOOLS)/.minio-$(MINIO_VERSION)
	$(if $(wildcard /dev/shm),TMPDIR=/dev/shm) $(GO) test -run '^$$' -bench RunArchiveHistory -benchtime 20x -v ./ingest

# The million-key case (issue 10, goal 4; make bench runs it over 100,000
# keys): one inbox
# of 1,000,000 objects of 1 KiB in a local MinIO with its data on disk under
# /tmp (not /dev/shm: the memory is shared; it checks for about 23 GiB and 6
# million inodes), the daemon over it with the discard importer, followed on
# its /metrics: the first import after the run's start, VmRSS at 10 k, 100 k
# and 1 M files, files/s against 2,000-file runs before and after; every
# file checked in archive/. Seeding alone takes about 45 minutes at the
# 350-400 PUT/s of 2 shared cores, the run longer. MILLION_FLAGS="-keys
# 100000" for a shorter one, -keep to seed only what the inbox misses on the
# next run, -time-limit 20m to stop the big run and report what it did.
MILLION_FLAGS ?=
.PHONY: bench-million
bench-million: $(TOOLS)/.minio-$(MINIO_VERSION) $(TOOLS)/.mc-$(MC_VERSION) build
	$(GO) run ./cmd/s3connector-bench million -binary bin/s3connector -minio-dir /tmp -out bench/out $(MILLION_FLAGS)

# tools also installs Debian's chromium when it is missing, for the wizard
# page's browser test (web/browser_test.go, which CI must run): as root, as
# on these machines and in CI.
tools: $(TOOLS)/.minio-$(MINIO_VERSION) $(TOOLS)/.mc-$(MC_VERSION) $(TOOLS)/.promtool-$(PROMTOOL_VERSION) \
	$(TOOLS)/.kubeconform-$(KUBECONFORM_VERSION) $(K8S_OPENAPI)/.$(KUBERNETES_VERSION)-$(PROMETHEUS_OPERATOR_VERSION)
	@command -v chromium >/dev/null 2>&1 || (apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium)

# Stamp files tie the cached binaries to their pinned versions.
$(TOOLS)/.minio-$(MINIO_VERSION):
	@mkdir -p $(TOOLS)
	@echo "building MinIO $(MINIO_VERSION) from the Go module proxy (about 4 minutes the first time)"
	GOBIN=$(TOOLS) $(GO) install github.com/minio/minio@$(MINIO_VERSION)
	@rm -f $(TOOLS)/.minio-* && touch $@

$(TOOLS)/.mc-$(MC_VERSION):
	@mkdir -p $(TOOLS)
	@echo "building mc $(MC_VERSION) from the Go module proxy"
	GOBIN=$(TOOLS) $(GO) install github.com/minio/mc@$(MC_VERSION)
	@rm -f $(TOOLS)/.mc-* && touch $@

# Prometheus's go.mod has replace directives, which `go install pkg@version`
# refuses (the one release without them, v0.316.0, needs module versions the
# proxy does not serve). So promtool is built in a throwaway module that
# requires the pinned release and repeats its one replace directive.
$(TOOLS)/.promtool-$(PROMTOOL_VERSION):
	@mkdir -p $(TOOLS)
	@echo "building promtool $(PROMTOOL_VERSION) from the Go module proxy (about 7 minutes the first time)"
	tmp=$$(mktemp -d) && trap 'rm -rf "$$tmp"' EXIT && cd "$$tmp" && \
	$(GO) mod init s3connector-tools >/dev/null 2>&1 && \
	$(GO) mod edit -replace cloud.google.com/go=cloud.google.com/go@v0.123.0 && \
	$(GO) get github.com/prometheus/prometheus/cmd/promtool@$(PROMTOOL_VERSION) && \
	GOBIN=$(TOOLS) $(GO) install github.com/prometheus/prometheus/cmd/promtool
	@rm -f $(TOOLS)/.promtool-* && touch $@

# toxiproxy's commands install as `server` and `cli`: renamed here.
$(TOOLS)/.toxiproxy-$(TOXIPROXY_VERSION):
	@mkdir -p $(TOOLS)
	@echo "building toxiproxy $(TOXIPROXY_VERSION) from the Go module proxy"
	tmp=$$(mktemp -d) && trap 'rm -rf "$$tmp"' EXIT && \
	GOBIN=$$tmp $(GO) install github.com/Shopify/toxiproxy/v2/cmd/server@$(TOXIPROXY_VERSION) github.com/Shopify/toxiproxy/v2/cmd/cli@$(TOXIPROXY_VERSION) && \
	mv $$tmp/server $(TOOLS)/toxiproxy-server && mv $$tmp/cli $(TOOLS)/toxiproxy-cli
	@rm -f $(TOOLS)/.toxiproxy-* && touch $@

$(TOOLS)/.kubeconform-$(KUBECONFORM_VERSION):
	@mkdir -p $(TOOLS)
	GOBIN=$(TOOLS) $(GO) install github.com/yannh/kubeconform/cmd/kubeconform@$(KUBECONFORM_VERSION)
	@rm -f $(TOOLS)/.kubeconform-* && touch $@

# The sources of kubeconform's schemas: swagger.json of k8s.io/kubernetes and
# the ServiceMonitor and PrometheusRule CRDs of prometheus-operator.
$(K8S_OPENAPI)/.$(KUBERNETES_VERSION)-$(PROMETHEUS_OPERATOR_VERSION):
	rm -rf $(K8S_OPENAPI) && mkdir -p $(K8S_OPENAPI)
	k8s=$$($(GO) mod download -json k8s.io/kubernetes@$(KUBERNETES_VERSION) | sed -n 's/^.*"Dir": "\(.*\)",$$/\1/p') && \
	cp "$$k8s/api/openapi-spec/swagger.json" $(K8S_OPENAPI)/
	po=$$($(GO) mod download -json github.com/prometheus-operator/prometheus-operator@$(PROMETHEUS_OPERATOR_VERSION) | sed -n 's/^.*"Dir": "\(.*\)",$$/\1/p') && \
	cp "$$po/example/prometheus-operator-crd/monitoring.coreos.com_servicemonitors.yaml" \
	   "$$po/example/prometheus-operator-crd/monitoring.coreos.com_prometheusrules.yaml" $(K8S_OPENAPI)/
	chmod u+w $(K8S_OPENAPI)/*
	echo $(KUBERNETES_VERSION) > $(K8S_OPENAPI)/KUBERNETES_VERSION
	@touch $@

clean:
	rm -rf bin

# Fuzz targets (issue: hostile input), each for FUZZTIME; not part of
# `make test`, which runs their seed corpora (the f.Add cases) as tests.
# FUZZ_TARGETS: name:package of each, also run by `make torture`.
FUZZTIME ?= 30s
FUZZ_TARGETS := FuzzParse:./config FuzzDirKeys:./ingest FuzzDestKey:./archive FuzzListedKey:./connector
.PHONY: fuzz
fuzz:
	@for t in $(FUZZ_TARGETS); do \
	  echo "$(GO) test -run '^$$' -fuzz '^$${t%%:*}$$' -fuzztime $(FUZZTIME) $${t#*:}"; \
	  $(GO) test -run '^$$' -fuzz "^$${t%%:*}\$$" -fuzztime $(FUZZTIME) $${t#*:} || exit 1; \
	done

# The torture suite (issue 12), not part of `make test`: the built binary
# under SIGKILLs, network faults, throttling, expiring credentials, sink
# failures, two writers and long uptime, against MinIO (data in /dev/shm
# when there is one), each scenario ending with one shared checker of the
# invariants; one line of figures per scenario, non-zero exit if any breaks.
# The ten-minute long-uptime scenario runs in a process of its own next to
# the others (go test would start it only once two of the others ended,
# past the 15-minute budget); those run three at a time (-parallel 3: most
# of their time is spent waiting out faults, about 0.4 of a core each).
# Once they have ended, while long uptime still runs (it is light: 3 files
# a second), the four fuzz targets run one after another for
# TORTURE_FUZZTIME each, with one fuzzing worker (-parallel 1, a core left
# to the uptime daemon), and print one line ("8 hostile input"). Long
# uptime's output follows. About 11 minutes on 2 cores.
TORTURE_FUZZTIME ?= 45s
TORTURE_GO = $(if $(wildcard /dev/shm),TMPDIR=/dev/shm) $(GO) test -tags torture -race=false -count=1 -timeout 14m -v
.PHONY: torture
torture: tools $(TOOLS)/.toxiproxy-$(TOXIPROXY_VERSION)
	@out=$$(mktemp); fz=$$(mktemp); \
	$(TORTURE_GO) -run '^TestLongUptime$$' ./torture/ > $$out 2>&1 & up=$$!; \
	$(TORTURE_GO) -parallel 3 -skip '^TestLongUptime$$' ./torture/; rest=$$?; \
	fuzz=0; line=""; \
	for t in $(FUZZ_TARGETS); do \
	  if $(GO) test -run '^$$' -fuzz "^$${t%%:*}\$$" -fuzztime $(TORTURE_FUZZTIME) -parallel 1 $${t#*:} > $$fz 2>&1; then \
	    line="$$line $${t%%:*} ($${t#*:}) ok ($$(grep -o 'execs: .*' $$fz | tail -1));"; \
	  else fuzz=1; line="$$line $${t%%:*} ($${t#*:}) FAILED;"; echo "==> $${t%%:*} failed:"; cat $$fz; fi; \
	done; \
	wait $$up; uptime=$$?; echo "==> long uptime (its own process)"; cat $$out; rm -f $$out $$fz; \
	echo "8 hostile input: go test -fuzz, $(TORTURE_FUZZTIME) each, one worker:$$line" | sed 's/;$$//'; \
	test $$rest -eq 0 && test $$uptime -eq 0 && test $$fuzz -eq 0
