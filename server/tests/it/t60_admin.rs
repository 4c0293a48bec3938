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

/// ZooKeeper's four-letter words as commands and as the admin port's JSON, ADMIN-protected.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_watches_connections_and_conf_as_commands_and_json() {
    use grove_client::acl::{digest, entry, perms};
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start_process(dir.path(), &["--max-data-bytes", "2000000"]);
    let c = s.connect();
    let session = c.open_session(std::time::Duration::from_secs(12)).await.unwrap();
    let ephemeral = grove_client::CreateOptions::mode(grove_client::CreateMode::Ephemeral);
    c.create("/e", "x", &ephemeral).await.unwrap();
    let mut w = c.watch_stream().await.unwrap();
    w.watch(grove_client::WatchSpec::new("/e", grove_client::WatchKind::Node)).await.unwrap();

    let json = |args: &[&str]| -> serde_json::Value {
        serde_json::from_str(&s.grove_ok(&[&["--json"][..], args].concat())).unwrap()
    };
    let id = format!("0x{:x}", session.id);
    let sessions = json(&["sessions"]);
    let mine = sessions["sessions"].as_array().unwrap().iter().find(|r| r["id"] == id.as_str()).cloned();
    let mine = mine.unwrap_or_else(|| panic!("{id} not in {sessions}"));
    assert_eq!((mine["timeout_ms"].as_i64(), mine["ephemerals"].as_u64()), (Some(12_000), Some(1)));
    let watches = json(&["watches"]);
    assert!(
        watches["watches"].as_array().unwrap().iter().any(|x| x["path"] == "/e" && x["kind"] == "node"),
        "{watches}"
    );
    let conns = json(&["connections"]);
    assert!(
        conns["connections"]
            .as_array()
            .unwrap()
            .iter()
            .any(|x| x["remote"].as_str().unwrap().starts_with("127.0.0.1:"))
    );
    // The effective configuration names where each value came from.
    let conf = json(&["conf"]);
    let setting =
        |name: &str| conf["settings"].as_array().unwrap().iter().find(|x| x["name"] == name).cloned().unwrap();
    assert_eq!(setting("max-data-bytes")["source"], "flag");
    assert_eq!(setting("max-data-bytes")["value"], "2000000");
    assert_eq!(setting("snapshot-entries")["source"], "default");
    assert_eq!(setting("election-timeout-min-ms")["value"], "500");
    // The admin port says the same, as JSON.
    let (code, body) = s.admin_get("/sessions");
    assert_eq!(code, 200, "{body}");
    assert!(body.contains(&id), "{body}");
    assert_eq!(s.admin_get("/conf").0, 200);

    // Once the root is locked down, both need ADMIN there: the CLI with --auth, the admin
    // port with HTTP Basic credentials.
    use base64::Engine;
    c.add_auth("digest", "admin:pw").unwrap();
    let admin_only = vec![entry("digest", &digest("admin", "pw"), perms::ALL), entry("world", "anyone", perms::READ)];
    c.set_acl("/", admin_only, None).await.unwrap();
    let out = s.grove(&["conf"]);
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("not authorized"), "{out:?}");
    assert!(s.grove_ok(&["--auth", "admin:pw", "conf"]).contains("max-data-bytes"));
    // Without credentials: 401, asking for them; with too few: 403.
    let (code, body) = s.admin_get("/conf");
    assert_eq!(code, 401, "{body}");
    let nobody = base64::engine::general_purpose::STANDARD.encode("nobody:pw");
    let (code, body) = crate::harness::http_get_with(&s.admin, "/conf", &format!("Authorization: Basic {nobody}\r\n"));
    assert_eq!(code, 403, "{body}");
    let basic = base64::engine::general_purpose::STANDARD.encode("admin:pw");
    let (code, body) =
        crate::harness::http_get_with(&s.admin, "/watches", &format!("Authorization: Basic {basic}\r\n"));
    assert_eq!(code, 200, "{body}");
    assert!(body.contains("\"/e\""), "{body}");
}

#[test]
fn bad_configuration_is_refused_with_a_clear_message() {
    // `groved --help` shows every default.
    let out = std::process::Command::new(crate::harness::groved_bin()).arg("--help").output().unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    for default in ["[default: 127.0.0.1:7181]", "[default: 4000]", "[default: 500]", "[default: 50000]"] {
        assert!(help.contains(default), "{default} not in\n{help}");
    }
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
