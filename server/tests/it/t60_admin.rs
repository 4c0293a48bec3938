//! The admin endpoint and graceful shutdown.

use crate::harness::Server;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_ready_status_and_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = Server::start(dir.path(), &[]);
    let c = s.connect();
    c.create("/m", "x", &grove_client::CreateOptions::default()).await.unwrap();
    c.get("/m").await.unwrap();
    let _ = c.get("/missing").await;
    assert_eq!(s.admin_get("/health"), (200, "ok\n".into()));
    assert_eq!(s.admin_get("/ready").0, 200);
    let (code, body) = s.admin_get("/status");
    assert_eq!(code, 200);
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["mode"], "standalone");
    assert_eq!(v["server_id"], 1);
    assert_eq!(v["ready"], true);
    assert_eq!(v["node_count"], 2);
    // /status says what `grove status` says.
    let cli: serde_json::Value = serde_json::from_str(&s.grove_ok(&["--json", "status"])).unwrap();
    for key in ["mode", "server_id", "leader_id", "term", "node_count"] {
        assert_eq!(v[key], cli[key], "{key}");
    }
    let (code, metrics) = s.admin_get("/metrics");
    assert_eq!(code, 200);
    for needle in [
        "grove_requests_total{method=\"Create\",code=\"OK\"}",
        "grove_requests_total{method=\"Get\",code=\"NO_NODE\"}",
        "grove_request_duration_seconds_bucket",
        "grove_raft_term",
        "grove_log_entries_per_fsync",
        "grove_nodes 2",
    ] {
        assert!(metrics.contains(needle), "missing {needle} in\n{metrics}");
    }
    assert_eq!(s.admin_get("/nope").0, 404);
    // SIGTERM: a clean exit, with an open watch stream in the way.
    let mut w = c.watch_stream().await.unwrap();
    w.watch(grove_client::WatchSpec::new("/m", grove_client::WatchKind::Node)).await.unwrap();
    let status = s.terminate();
    assert!(status.success(), "{status}");
}

#[test]
fn bad_configuration_is_refused_with_a_clear_message() {
    let out = std::process::Command::new(crate::harness::groved_bin()).args(["--peers", "1=a"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("needs a port"));
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("grove.toml");
    std::fs::write(&cfg, "listen = 7\n").unwrap();
    let out = std::process::Command::new(crate::harness::groved_bin()).arg("--config").arg(&cfg).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("grove.toml"));
}
