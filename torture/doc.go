// Package torture is the torture suite (issue 12): it attacks the built
// s3connector binary the way production will — SIGKILLs, network faults,
// throttling, two writers on one connection, and more — against a real
// MinIO, and ends every scenario with one shared checker of the move
// protocol's invariants (ARCHITECTURE.md I1–I12).
//
// The tests carry the build tag torture, so `go test ./...` (make test)
// skips them; `make torture` builds the tools and runs them in two
// processes, long uptime (ten minutes) apart from the rest, then the four
// fuzz targets while long uptime goes on (see the Makefile):
//
//	go test -tags torture -race=false -count=1 -timeout 14m -v -run '^TestLongUptime$' ./torture/ &
//	go test -tags torture -race=false -count=1 -timeout 14m -v -parallel 3 -skip '^TestLongUptime$' ./torture/
//	go test -run '^$' -fuzz '^FuzzParse$' -fuzztime 45s -parallel 1 ./config   # and the other three
//
// Each scenario prints one line with its figures, collected again at the
// end of the run ("torture summary"); any broken invariant fails the test
// and the command exits non-zero.
//
// Knobs (environment): S3CONNECTOR_TORTURE_UPTIME (long uptime's
// duration, default 10m), S3CONNECTOR_TORTURE_FULL_DISK (how the sink
// scenario fills the dir importer's disk: tmpfs, the default as root, or
// fsize, a file size limit that needs no root), and
// S3CONNECTOR_TORTURE_KEEP_LOGS=1 (keep every process's output, as on a
// failure). The scenarios set the daemon's test-only knobs themselves
// (connector/testknobs.go).
//
// The framework (in the _test.go files of this package):
//   - NewFixture: a bucket of its own, an import directory, a platform user
//     holding exactly the generated permissions policy.
//   - Fixture.Seed: files of random content (some multi-MiB), each version
//     recorded with its SHA-256, ETag, LastModified (and version id).
//   - Fixture.Config: a config file for the binary (dir importer by default).
//   - Fixture.Start / RunOnce / StartDaemon: the built binary, with its
//     output kept for the checker.
//   - Fixture.Check: the shared checker; Figures.String its standard line.
//   - StartToxiproxy: toxiproxy-server and its toxics.
//   - Report: the scenario's one line for the summary.
package torture
