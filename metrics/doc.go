// Package metrics defines the Prometheus metrics of s3connector.
//
// Every metric is created by New on a Registerer passed in by the caller (the
// daemon shares one registry; tests use prometheus.NewRegistry()); nothing is
// registered globally. All per-connection metrics carry a `connection` label
// whose values are the connection names from the configuration, so the label
// is bounded; an object key or an error message is never a label value.
//
// Metrics (type, labels: meaning):
//
//	s3connector_files_total                            counter    connection, outcome
//	    Files finished by a run. outcome is "archived" (imported and moved to
//	    archive/), "errored" (rejected by the importer, moved to error/) or
//	    "retry" (left in the inbox by a transient failure, tried again next run).
//	s3connector_bytes_total                            counter    connection, outcome
//	    Bytes of the files counted in s3connector_files_total, same outcomes.
//	s3connector_import_duration_seconds                histogram  connection
//	    Time to stream one file into the importer, from GetObject to its verdict.
//	    Buckets from 1ms to 10min.
//	s3connector_runs_total                             counter    connection, result
//	    Finished runs; result is "success" or "failure".
//	s3connector_run_duration_seconds                   histogram  connection
//	    Wall time of a run, listing to last move. Buckets from 100ms to 3h.
//	s3connector_last_run_timestamp_seconds             gauge      connection
//	    Unix time the last run (successful or not) finished.
//	s3connector_last_successful_run_timestamp_seconds  gauge      connection
//	    Unix time the last successful run finished. Alert on
//	    time() - s3connector_last_successful_run_timestamp_seconds.
//	s3connector_runs_skipped_total                     counter    connection, reason
//	    Scheduled runs skipped. reason is "overlap" (the previous run of the
//	    connection was still going; a steady rate means the schedule is too
//	    tight) or "lease_held" (another process holds the connection's lease).
//	s3connector_last_run_start_timestamp_seconds       gauge      connection
//	    Unix time the last run started; a run is going while this is later
//	    than s3connector_last_run_timestamp_seconds (a run skipped for the
//	    lease records a start and no end).
//	s3connector_next_run_timestamp_seconds             gauge      connection
//	    Unix time of the next scheduled run, set by the scheduler whenever it
//	    (re)schedules the connection and at every tick.
//	s3connector_last_scheduled_run_timestamp_seconds   gauge      connection
//	    Unix time of the latest scheduled run that came due, whether it ran
//	    or was skipped. With next_run it gives the alerts the schedule's
//	    current spacing, and tells a missed run from a quiet stretch of the
//	    schedule (a weekend).
//	s3connector_inbox_files                            gauge      connection
//	    Files the last run's listing found waiting in the inbox (the backlog;
//	    at most max_files when that is set; files younger than min_age and
//	    those excluded by include/exclude are not counted).
//	s3connector_files_skipped_total                    counter    connection, reason
//	    Files a run could not read or copy at all and left in the inbox
//	    without failing the run. reason is "sse_c" (encrypted with a
//	    customer-provided key) or "archived_storage_class" (Glacier Flexible
//	    Retrieval or Deep Archive).
//	s3connector_files_skipped                          gauge      connection
//	    Skipped files the last run found.
//	s3connector_moves_blocked_total                    counter    connection, operation
//	    Move steps denied by permissions, a bucket policy Deny or Object
//	    Lock; operation is "copy" or "delete".
//	s3connector_files_blocked                          gauge      connection
//	    Files whose move was blocked in the last run (alert:
//	    S3ConnectorMoveBlocked).
//	s3connector_importer_panics_total                  counter    connection
//	    Panics inside an importer (Import, Precheck) that were recovered; the
//	    file went to error/ (reason code importer_crashed).
//	s3connector_processing_panics_total                counter    connection
//	    Panics in s3connector's own processing of a file, outside the
//	    importer (reading it, its ranged download, its move), that were
//	    recovered: a bug in s3connector, not in a sink. The file went to
//	    error/ (reason code processing_crashed), or, when the panic came
//	    after the importer's verdict, its attempt was recorded and only its
//	    move is retried.
//	s3connector_workers                                gauge      connection
//	    Configured number of import workers.
//	s3connector_workers_busy                           gauge      connection
//	    Workers currently processing a file; compare with s3connector_workers.
//	s3connector_s3_requests_total                      counter    connection, operation, result
//	    S3 API requests. operation is the S3 API name (GetObject, CopyObject,
//	    DeleteObjects, ...); result is one of "ok", "access_denied",
//	    "not_found", "precondition_failed", "throttled", "wrong_region",
//	    "canceled", "error" (connector.ResultLabel). Every attempt counts,
//	    retries included.
//	s3connector_assume_role_total                      counter    connection, result
//	    STS AssumeRole calls for the connection's role; result is "success"
//	    or "failure".
//	s3connector_credentials_expiry_timestamp_seconds   gauge      connection
//	    Unix time the connection's current temporary credentials expire
//	    (set on each successful AssumeRole).
//	s3connector_schedule_interval_seconds              gauge      connection
//	    Seconds between two scheduled runs (cron: between its next two
//	    ticks, as of when the connection was scheduled). The alerts use
//	    next_run - last_scheduled_run instead, which follows the schedule.
//	s3connector_connection_up                          gauge      connection
//	    1 when the connection passed validation and is scheduled, 0 while it
//	    fails validation (retried with backoff; none of its files is touched).
//	s3connector_config_last_reload_successful          gauge      (none)
//	    1 if the last configuration (re)load succeeded, 0 otherwise.
//	s3connector_config_last_reload_success_timestamp_seconds gauge (none)
//	    Unix time of the last successful configuration (re)load.
//	s3connector_build_info                             gauge      version, revision, goversion
//	    Always 1; its labels describe the running binary (see SetBuildInfo).
//
// Series of a connection are created at zero by Init, so rate() and increase()
// work from the first scrape; gauges that hold a time or a count that is not
// known yet (timestamps, inbox, skipped and blocked files, credentials
// expiry) appear only once they are set. Forget deletes every series of a connection that was removed
// from the configuration.
//
// All methods are safe for concurrent use, and a nil *Metrics records nothing,
// so code that does not care about metrics (tests of other packages) may pass nil.
package metrics
