//! Every setting's default in one place, and the effective configuration with each value's
//! source, for `groved --help`, `grove conf` and the admin port's `/conf`.

use std::path::PathBuf;

use super::Settings;

impl Settings {
    /// Every default, in one place: what `resolve` falls back to, what `groved --help`
    /// shows and what `grove conf` reports as `default`.
    pub fn defaults() -> Settings {
        Settings {
            peers: Some(String::new()),
            observers: Some(String::new()),
            id_from_hostname: Some(false),
            id_offset: Some(0),
            join: Some(false),
            auto_join: Some(false),
            log_format: Some("text".into()),
            tls_require_client_cert: Some(false),
            data_dir: Some(PathBuf::from("grove-data")),
            listen: Some("127.0.0.1:7181".into()),
            peer_listen: Some("127.0.0.1:7281".into()),
            admin_listen: Some("127.0.0.1:7381".into()),
            advertise: Some(String::new()),
            advertise_peer: Some(String::new()),
            min_session_timeout_ms: Some(4_000),
            max_session_timeout_ms: Some(40_000),
            max_data_bytes: Some(1 << 20),
            max_request_bytes: Some(4 << 20),
            max_multi_ops: Some(1_000),
            max_page_size: Some(10_000),
            request_timeout_ms: Some(5_000),
            heartbeat_ms: Some(100),
            election_timeout_min_ms: Some(500),
            election_timeout_max_ms: Some(1_000),
            snapshot_entries: Some(50_000),
            keep_log_entries: Some(5_000),
            watch_history_entries: Some(100_000),
            watch_history_bytes: Some(8 << 20),
            watch_queue: Some(10_000),
            watch_queue_bytes: Some(16 << 20),
            max_watches_per_stream: Some(10_000),
            max_watches: Some(1_000_000),
            max_connections: Some(10_000),
            max_connections_per_ip: Some(2_000),
            max_sessions: Some(100_000),
            max_lock_waiters: Some(10_000),
            max_lock_waiters_per_session: Some(1_000),
            max_session_request_rate: Some(10_000),
            watch_progress_ms: Some(10_000),
            reap_interval_ms: Some(10_000),
            cache_mib: Some(8),
            health_listen: Some(String::new()),
            console: Some("auto".into()),
            ..Default::default()
        }
    }
}

/// One setting as the server runs with it: its value and where it came from (`flag`,
/// `env`, `file` or `default`), for `grove conf` and the admin port's `/conf`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Effective {
    pub name: String,
    pub value: String,
    pub source: String,
}

/// Settings whose values are never shown.
const SECRETS: &[&str] = &["peer_secret", "super_digest"];

/// Every setting that has a value, with its source. `from_env(name)`: the flag layer's
/// value came from the environment rather than the command line.
pub fn effective(flags: &Settings, file: &Settings, from_env: &dyn Fn(&str) -> bool) -> Vec<Effective> {
    let map = |s: &Settings| match serde_json::to_value(s) {
        Ok(serde_json::Value::Object(m)) => m,
        _ => serde_json::Map::new(),
    };
    let (flags, file, defaults) = (map(flags), map(file), map(&Settings::defaults()));
    let mut out = Vec::new();
    for name in defaults.keys() {
        // The id is reported as resolved (it may come from the host name).
        if name == "id" {
            continue;
        }
        let pick = |m: &serde_json::Map<String, serde_json::Value>| m.get(name).filter(|v| !v.is_null()).cloned();
        let (value, source) = if let Some(v) = pick(&flags) {
            (v, if from_env(name) { "env" } else { "flag" })
        } else if let Some(v) = pick(&file) {
            (v, "file")
        } else if let Some(v) = pick(&defaults) {
            (v, "default")
        } else {
            continue;
        };
        let value = if SECRETS.contains(&name.as_str()) {
            "(set, not shown)".to_string()
        } else {
            match value {
                serde_json::Value::String(s) => s,
                v => v.to_string(),
            }
        };
        out.push(Effective { name: name.replace('_', "-"), value, source: source.to_string() });
    }
    out
}
