//! Prometheus metrics. One recorder per process (metrics' recorder is global); every server
//! in the process reports to it, which only matters for in-process tests.
//!
//! Every metric is described here (its HELP line); counters end in `_total`; the process
//! metrics (`process_cpu_seconds_total`, `process_resident_memory_bytes`,
//! `process_open_fds`, ...) come from `metrics-process`, read at each scrape.

use std::sync::OnceLock;

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

use crate::node::Node;

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Installs the recorder once and returns its handle.
pub fn handle() -> PrometheusHandle {
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets(&[
                    0.00005, 0.0001, 0.00025, 0.0005, 0.00075, 0.001, 0.0015, 0.0025, 0.005, 0.0075, 0.01, 0.025, 0.05,
                    0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                ])
                .expect("static buckets")
                .build_recorder();
            let handle = recorder.handle();
            // Another recorder may already be installed (tests); the handle still renders ours.
            let _ = metrics::set_global_recorder(recorder);
            describe();
            handle
        })
        .clone()
}

/// How often histogram samples are folded into their buckets when nobody scrapes.
const UPKEEP_EVERY: std::time::Duration = std::time::Duration::from_secs(5);

/// Folds recorded histogram samples into their buckets every few seconds until `stopped`.
/// The exporter keeps every sample until a render or an upkeep drains it, so a server that
/// is not scraped would otherwise grow by ~8 bytes per sample (several per write) without
/// end. Each running server has one (several in a test process do no harm).
pub fn upkeep(stopped: impl std::future::Future<Output = ()> + Send + 'static) {
    let handle = handle();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(UPKEEP_EVERY);
        tokio::pin!(stopped);
        loop {
            tokio::select! {
                _ = tick.tick() => handle.run_upkeep(),
                _ = &mut stopped => return,
            }
        }
    });
}

fn process() -> &'static metrics_process::Collector {
    static COLLECTOR: OnceLock<metrics_process::Collector> = OnceLock::new();
    COLLECTOR.get_or_init(metrics_process::Collector::default)
}

/// The HELP line of every metric Grove exports (the Helm chart's alerts and dashboard are
/// written against these names: `tests/helm/test_chart.py`'s `METRICS`).
fn describe() {
    use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
    process().describe();
    // Requests.
    describe_counter!("grove_requests_total", "Client requests answered, by gRPC method and Grove error code");
    describe_histogram!("grove_request_duration_seconds", Unit::Seconds, "Time to answer a client request, by method");
    describe_counter!("grove_limit_refusals_total", "Requests refused by a configured limit, by limit");
    describe_counter!("grove_quota_exceeded_total", "Writes that exceeded a soft quota (logged, allowed)");
    describe_gauge!("grove_request_records", "Request results remembered for retries (request-id dedup)");
    // The tree, sessions and watches.
    describe_gauge!("grove_nodes", "Znodes in the tree");
    describe_gauge!("grove_sessions", "Live sessions");
    describe_counter!("grove_sessions_expired_total", "Sessions expired by this server as leader");
    describe_counter!("grove_nodes_reaped_total", "Container and TTL nodes deleted by this server as leader");
    describe_gauge!("grove_watches", "Watches registered on this server");
    describe_gauge!("grove_watch_streams", "Open Watch streams on this server");
    describe_counter!("grove_watch_streams_total", "Watch streams opened on this server");
    describe_counter!(
        "grove_watch_slow_consumer_cancels_total",
        "Watch streams cancelled because their client did not keep up"
    );
    describe_gauge!("grove_client_connections", "Open client connections");
    describe_counter!("grove_tls_handshake_failures_total", "TLS handshakes that failed, by port");
    describe_counter!("grove_tls_reloads_total", "Certificate reloads, by port");
    describe_counter!("grove_tls_reload_errors_total", "Certificate reloads that failed (the old ones stay), by port");
    // Consensus and replication.
    describe_gauge!("grove_ready", "1 while this server serves reads and writes");
    describe_gauge!("grove_has_quorum", "1 while this server is in touch with a leader that has a quorum");
    describe_gauge!("grove_raft_term", "Raft term this server is in");
    describe_gauge!("grove_raft_leader_id", "Id of the leader this server knows (0: none)");
    describe_gauge!("grove_raft_is_leader", "1 while this server leads");
    describe_gauge!("grove_raft_last_log_index", "Last index in this server's Raft log");
    describe_gauge!("grove_raft_commit_index", "Last index this server knows committed");
    describe_gauge!("grove_raft_applied_index", "Last index applied to this server's state");
    describe_gauge!("grove_applied_zxid", "Last zxid applied to this server's state");
    describe_gauge!("grove_peer_replication_lag", "On the leader: entries each member is behind its log");
    describe_counter!("grove_peer_secret_refusals_total", "Peer calls refused for a missing or wrong peer secret");
    describe_counter!(
        "grove_peer_cluster_refusals_total",
        "Peer calls refused because the sender belongs to another cluster"
    );
    describe_histogram!("grove_batch_operations", "Writes per proposed log entry");
    describe_histogram!(
        "grove_write_stage_seconds",
        Unit::Seconds,
        "Time a write spends in each stage: queued, log_commit, replicate, follower_append, raft, apply"
    );
    // Storage.
    describe_histogram!("grove_log_fsync_seconds", Unit::Seconds, "Time of one Raft log commit with its fsync");
    describe_histogram!("grove_log_entries_per_fsync_batch", "Log entries made durable by one fsync");
    describe_counter!("grove_log_fsyncs_total", "Raft log fsyncs");
    describe_counter!("grove_log_entries_synced_total", "Raft log entries made durable");
    describe_gauge!("grove_log_entries_per_fsync", "Mean log entries per fsync since start");
    describe_counter!("grove_storage_errors_total", "Storage operations that failed, by store (log, state, snapshot)");
    describe_counter!("grove_snapshots_built_total", "Raft snapshots built");
    describe_counter!("grove_snapshots_installed_total", "Raft snapshots installed from a leader");
    describe_gauge!("grove_snapshot_bytes", Unit::Bytes, "Size of the last snapshot built");
    describe_histogram!("grove_snapshot_build_seconds", Unit::Seconds, "Time to build a snapshot");
    describe_histogram!("grove_snapshot_install_seconds", Unit::Seconds, "Time to install a snapshot");
}

/// Refreshes the gauges that are cheaper to read at scrape time than to maintain.
pub fn refresh(node: &Node) {
    process().collect();
    let st = node.status();
    metrics::gauge!("grove_has_quorum").set(if st.quorum { 1.0 } else { 0.0 });
    metrics::gauge!("grove_nodes").set(st.node_count as f64);
    metrics::gauge!("grove_sessions").set(st.session_count as f64);
    metrics::gauge!("grove_watches").set(st.watch_count as f64);
    metrics::gauge!("grove_watch_streams").set(node.hub.stream_count() as f64);
    metrics::gauge!("grove_ready").set(if st.ready { 1.0 } else { 0.0 });
    metrics::gauge!("grove_applied_zxid").set(st.zxid as f64);
    let (fsyncs, entries, _) = crate::raft::fsync_figures(&node.log_stats());
    metrics::counter!("grove_log_fsyncs_total").absolute(fsyncs);
    metrics::counter!("grove_log_entries_synced_total").absolute(entries);
    if fsyncs > 0 {
        metrics::gauge!("grove_log_entries_per_fsync").set(entries as f64 / fsyncs as f64);
    }
    for m in &st.raft.members {
        if let Some(matched) = m.matched {
            let lag = st.raft.last_log_index.saturating_sub(matched);
            metrics::gauge!("grove_peer_replication_lag", "peer" => m.id.to_string()).set(lag as f64);
        }
    }
}
