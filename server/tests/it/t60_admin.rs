//! The admin endpoint and graceful shutdown.

use crate::harness::Server;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_ready_status_and_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = Server::start_process(dir.path(), &[]);
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
    // Every field `grove status --json` prints, members included, is in /status with the same value
    // (nothing writes in between).
    let fields = cli.as_object().unwrap();
    assert!(fields.len() >= 12, "{cli}");
    for (key, value) in fields {
        assert_eq!(&v[key], value, "{key}");
    }
    let (code, metrics) = s.admin_get("/metrics");
    assert_eq!(code, 200);
    for needle in [
        "grove_requests_total{method=\"Create\",code=\"OK\"}",
        "grove_requests_total{method=\"Get\",code=\"NO_NODE\"}",
        "grove_request_duration_seconds_bucket",
        "grove_raft_term",
        "grove_log_entries_per_fsync",
        "grove_log_fsync_seconds_bucket",
        "grove_nodes 2",
        "grove_has_quorum 1",
        "grove_log_fsyncs_total ",
        "process_cpu_seconds_total ",
        "process_resident_memory_bytes ",
        "process_open_fds ",
    ] {
        assert!(metrics.contains(needle), "missing {needle} in\n{metrics}");
    }
    // Prometheus' conventions: every family has a HELP and a TYPE line, and a counter's name
    // ends in _total (a gauge's never does).
    let mut families = std::collections::BTreeMap::new();
    for line in metrics.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap();
            families.insert(name.to_string(), kind.to_string());
        }
    }
    assert!(families.len() > 20, "{metrics}");
    for (name, kind) in &families {
        assert!(metrics.contains(&format!("# HELP {name} ")), "no HELP line for {name}");
        match kind.as_str() {
            "counter" => assert!(name.ends_with("_total"), "counter {name} does not end in _total"),
            _ => assert!(!name.ends_with("_total"), "{kind} {name} is named like a counter"),
        }
    }
    // Logs written to a file carry no colour codes.
    let log = std::fs::read_to_string(dir.path().join("groved.log")).unwrap();
    assert!(log.contains("grove server ready") && !log.contains('\u{1b}'), "{log}");
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_logs_carry_the_session_in_request_spans() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start_logging(dir.path(), &["--log-format", "json"], "info,grove_server=debug,openraft=warn");
    let c = s.connect();
    c.open_session(std::time::Duration::from_secs(10)).await.unwrap();
    let id = format!("0x{:x}", c.session().unwrap().id);
    let ephemeral = grove_client::CreateOptions::mode(grove_client::CreateMode::Ephemeral);
    c.create("/logged", "x", &ephemeral).await.unwrap();
    let _ = c.get("/missing").await;
    let log = dir.path().join("groved.log");
    let what = "the Create request in the log";
    crate::harness::eventually(std::time::Duration::from_secs(10), what, async || {
        std::fs::read_to_string(&log).unwrap().contains("\"method\":\"Create\"")
    })
    .await;
    // Every line is one JSON object; the ephemeral create's "request done" names its session.
    let text = std::fs::read_to_string(&log).unwrap();
    let mut create_done = None;
    for line in text.lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        if v["fields"]["message"] == "request done" && v["span"]["method"] == "Create" {
            create_done = Some(v);
        }
    }
    let v = create_done.unwrap_or_else(|| panic!("no Create request line in:\n{text}"));
    assert_eq!(v["span"]["session"], id.as_str(), "{v}");
    assert_eq!(v["fields"]["code"], "OK", "{v}");
    assert!(text.contains("\"code\":\"NO_NODE\""), "the failed Get is logged with its code:\n{text}");
}
