//! Prometheus metrics. One recorder per process (metrics' recorder is global); every server
//! in the process reports to it, which only matters for in-process tests.

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
            handle
        })
        .clone()
}

/// Refreshes the gauges that are cheaper to read at scrape time than to maintain.
pub fn refresh(node: &Node) {
    let st = node.status();
    metrics::gauge!("grove_nodes").set(st.node_count as f64);
    metrics::gauge!("grove_sessions").set(st.session_count as f64);
    metrics::gauge!("grove_watches").set(st.watch_count as f64);
    metrics::gauge!("grove_watch_streams").set(node.hub.stream_count() as f64);
    metrics::gauge!("grove_ready").set(if st.ready { 1.0 } else { 0.0 });
    metrics::gauge!("grove_applied_zxid").set(st.zxid as f64);
    let (fsyncs, entries, micros) = crate::raft::fsync_figures(&node.log_stats());
    metrics::gauge!("grove_log_fsyncs").set(fsyncs as f64);
    metrics::gauge!("grove_log_entries_synced").set(entries as f64);
    metrics::gauge!("grove_log_fsync_seconds_total").set(micros as f64 / 1e6);
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
