//! `groved`'s configuration: defaults < TOML file (`--config`) < `GROVE_*` environment <
//! command-line flags.
//!
//! One struct, `Settings`, is both the clap argument set (whose fields also read their
//! `GROVE_*` variable) and the TOML file's schema, so a setting has one name everywhere:
//! `--data-dir`, `GROVE_DATA_DIR`, `data_dir = "..."`. `Config` is the resolved result.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use crate::transport::tls::TlsFiles;
pub use console::Console;

mod console;
mod effective;
pub use effective::{Effective, effective};

/// Every setting, all optional: unset ones fall back to the next layer.
#[derive(Debug, Default, Clone, clap::Args, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// This server's id in the ensemble (1 for a standalone node).
    #[arg(long, env = "GROVE_ID")]
    pub id: Option<u64>,

    /// Take the id from the host name's trailing ordinal plus one: StatefulSet pod
    /// `grove-2` is server 3 (the Helm chart uses this). The host name is $HOSTNAME, or
    /// the kernel's.
    #[arg(long, env = "GROVE_ID_FROM_HOSTNAME", num_args = 0..=1, default_missing_value = "true")]
    pub id_from_hostname: Option<bool>,

    /// Added to the id taken from the host name (observers' StatefulSet: its pod 0 is
    /// server replicas + 1).
    #[arg(long, env = "GROVE_ID_OFFSET")]
    pub id_offset: Option<u64>,

    /// Directory for the Raft log, the state database and snapshots.
    #[arg(long, env = "GROVE_DATA_DIR")]
    pub data_dir: Option<PathBuf>,

    /// Client gRPC address to listen on.
    #[arg(long, env = "GROVE_LISTEN")]
    pub listen: Option<String>,

    /// Peer gRPC address to listen on (election and replication).
    #[arg(long, env = "GROVE_PEER_LISTEN")]
    pub peer_listen: Option<String>,

    /// Admin HTTP address to listen on (/health, /ready, /status, /metrics).
    #[arg(long, env = "GROVE_ADMIN_LISTEN")]
    pub admin_listen: Option<String>,

    /// Client address other servers and clients should use for this server, if it differs
    /// from --listen (e.g. when listening on 0.0.0.0).
    #[arg(long, env = "GROVE_ADVERTISE")]
    pub advertise: Option<String>,

    /// Peer address other servers should use for this server, if it differs from
    /// --peer-listen.
    #[arg(long, env = "GROVE_ADVERTISE_PEER")]
    pub advertise_peer: Option<String>,

    /// The voters' peer addresses: `1=host:port,2=host:port,3=host:port`, this server
    /// included. Empty: a standalone node.
    #[arg(long, env = "GROVE_PEERS")]
    pub peers: Option<String>,

    /// Observers (non-voting members): `4=host:port,...`.
    #[arg(long, env = "GROVE_OBSERVERS")]
    pub observers: Option<String>,

    /// Join an existing ensemble: start empty and wait to be added (`grove member add`)
    /// instead of forming a new ensemble from --peers.
    #[arg(long, env = "GROVE_JOIN", num_args = 0..=1, default_missing_value = "true")]
    pub join: Option<bool>,

    /// Join when needed: a server with an empty data directory whose peers already form an
    /// ensemble without it asks the leader to add it as a voter instead of refusing to
    /// start; while none exists yet it forms one from --peers (the Helm chart's voters).
    #[arg(long, env = "GROVE_AUTO_JOIN", num_args = 0..=1, default_missing_value = "true")]
    pub auto_join: Option<bool>,

    /// Make this server a member of a NEW cluster restored from a backup (`grove snapshot
    /// save`): fills the empty --data-dir from FILE, then starts. Restore every member of
    /// the new cluster from the same file with the same --peers. Sessions, ephemeral nodes
    /// and lock holders are not restored. A restart with the same FILE starts normally.
    #[arg(long, env = "GROVE_RESTORE", value_name = "FILE")]
    pub restore: Option<PathBuf>,

    /// Smallest session timeout granted, in ms.
    #[arg(long, env = "GROVE_MIN_SESSION_TIMEOUT_MS")]
    pub min_session_timeout_ms: Option<u64>,

    /// Largest session timeout granted, in ms.
    #[arg(long, env = "GROVE_MAX_SESSION_TIMEOUT_MS")]
    pub max_session_timeout_ms: Option<u64>,

    /// Largest node data, in bytes.
    #[arg(long, env = "GROVE_MAX_DATA_BYTES")]
    pub max_data_bytes: Option<usize>,

    /// Largest gRPC request, in bytes.
    #[arg(long, env = "GROVE_MAX_REQUEST_BYTES")]
    pub max_request_bytes: Option<usize>,

    /// Most operations in one Multi.
    #[arg(long, env = "GROVE_MAX_MULTI_OPS")]
    pub max_multi_ops: Option<usize>,

    /// Most children in one GetChildren page.
    #[arg(long, env = "GROVE_MAX_PAGE_SIZE")]
    pub max_page_size: Option<usize>,

    /// How long a write or a linearizable read may wait for a leader and a quorum before
    /// failing with UNAVAILABLE, in ms.
    #[arg(long, env = "GROVE_REQUEST_TIMEOUT_MS")]
    pub request_timeout_ms: Option<u64>,

    /// Raft heartbeat interval, in ms.
    #[arg(long, env = "GROVE_HEARTBEAT_MS")]
    pub heartbeat_ms: Option<u64>,

    /// Lower bound of the Raft election timeout, in ms.
    #[arg(long, env = "GROVE_ELECTION_TIMEOUT_MIN_MS")]
    pub election_timeout_min_ms: Option<u64>,

    /// Upper bound of the Raft election timeout, in ms.
    #[arg(long, env = "GROVE_ELECTION_TIMEOUT_MAX_MS")]
    pub election_timeout_max_ms: Option<u64>,

    /// Build a snapshot after this many log entries since the last one.
    #[arg(long, env = "GROVE_SNAPSHOT_ENTRIES")]
    pub snapshot_entries: Option<u64>,

    /// Log entries kept behind a snapshot for slow followers.
    #[arg(long, env = "GROVE_KEEP_LOG_ENTRIES")]
    pub keep_log_entries: Option<u64>,

    /// Most zxids of watch events kept for resuming watches.
    #[arg(long, env = "GROVE_WATCH_HISTORY_ENTRIES")]
    pub watch_history_entries: Option<usize>,

    /// Most bytes of watch events (as held in memory) kept for resuming watches.
    #[arg(long, env = "GROVE_WATCH_HISTORY_BYTES")]
    pub watch_history_bytes: Option<usize>,

    /// Most messages queued on one watch stream before its watches are cancelled.
    #[arg(long, env = "GROVE_WATCH_QUEUE")]
    pub watch_queue: Option<usize>,

    /// Most bytes of events queued on one watch stream before its watches are cancelled.
    #[arg(long, env = "GROVE_WATCH_QUEUE_BYTES")]
    pub watch_queue_bytes: Option<usize>,

    /// Most watches on one watch stream.
    #[arg(long, env = "GROVE_MAX_WATCHES_PER_STREAM")]
    pub max_watches_per_stream: Option<usize>,

    /// Most watches on this server, all streams together.
    #[arg(long, env = "GROVE_MAX_WATCHES")]
    pub max_watches: Option<usize>,

    /// Most open client connections (0: no limit). Past it, a new connection is answered
    /// with RESOURCE_EXHAUSTED and closed.
    #[arg(long, env = "GROVE_MAX_CONNECTIONS")]
    pub max_connections: Option<usize>,

    /// Most open client connections from one IP address (0: no limit; ZooKeeper's
    /// maxClientCnxns).
    #[arg(long, env = "GROVE_MAX_CONNECTIONS_PER_IP")]
    pub max_connections_per_ip: Option<usize>,

    /// Most live sessions in the ensemble; opening one more is refused (0: no limit).
    #[arg(long, env = "GROVE_MAX_SESSIONS")]
    pub max_sessions: Option<usize>,

    /// Most lock, semaphore and election requests waiting on this server (0: no limit).
    #[arg(long, env = "GROVE_MAX_LOCK_WAITERS")]
    pub max_lock_waiters: Option<usize>,

    /// Most lock, semaphore and election requests one session may have waiting (0: no
    /// limit).
    #[arg(long, env = "GROVE_MAX_LOCK_WAITERS_PER_SESSION")]
    pub max_lock_waiters_per_session: Option<usize>,

    /// Requests per second one session may make, in bursts of up to a second's worth
    /// (0: no limit). Past it: RESOURCE_EXHAUSTED with the time to wait.
    #[arg(long, env = "GROVE_MAX_SESSION_REQUEST_RATE")]
    pub max_session_request_rate: Option<u64>,

    /// Interval of progress notifications on idle watch streams, in ms (0: off).
    #[arg(long, env = "GROVE_WATCH_PROGRESS_MS")]
    pub watch_progress_ms: Option<u64>,

    /// How often the leader looks for container and TTL nodes to delete, in ms.
    #[arg(long, env = "GROVE_REAP_INTERVAL_MS")]
    pub reap_interval_ms: Option<u64>,

    /// Page cache of the state database, in MiB (more serves a large tree from memory).
    #[arg(long, env = "GROVE_CACHE_MIB")]
    pub cache_mib: Option<usize>,

    /// Log output: `text` or `json`. Filter with RUST_LOG.
    #[arg(long, env = "GROVE_LOG_FORMAT")]
    pub log_format: Option<String>,

    /// TLS on the client port: this server's certificate chain (PEM). Needs --tls-key.
    /// Files are re-read when they change.
    #[arg(long, env = "GROVE_TLS_CERT")]
    pub tls_cert: Option<PathBuf>,

    /// The private key (PEM) for --tls-cert.
    #[arg(long, env = "GROVE_TLS_KEY")]
    pub tls_key: Option<PathBuf>,

    /// CA (PEM) that client certificates must chain to. A verified client certificate gives
    /// its caller the `x509:<subject>` identity. Clients without one are let in unless
    /// --tls-require-client-cert.
    #[arg(long, env = "GROVE_TLS_CLIENT_CA")]
    pub tls_client_ca: Option<PathBuf>,

    /// Refuse clients that present no certificate signed by --tls-client-ca.
    #[arg(long, env = "GROVE_TLS_REQUIRE_CLIENT_CERT", num_args = 0..=1, default_missing_value = "true")]
    pub tls_require_client_cert: Option<bool>,

    /// Mutual TLS on the peer port: this server's peer certificate (PEM), also presented when
    /// it connects to other servers. Needs --peer-tls-key and --peer-tls-ca.
    #[arg(long, env = "GROVE_PEER_TLS_CERT")]
    pub peer_tls_cert: Option<PathBuf>,

    /// The private key (PEM) for --peer-tls-cert.
    #[arg(long, env = "GROVE_PEER_TLS_KEY")]
    pub peer_tls_key: Option<PathBuf>,

    /// CA (PEM) every ensemble member's peer certificate chains to: a peer without one is
    /// refused in the handshake, so it can neither vote nor replicate.
    #[arg(long, env = "GROVE_PEER_TLS_CA")]
    pub peer_tls_ca: Option<PathBuf>,

    /// A file holding the secret every member presents on the peer port (the same file on
    /// all of them). Required, unless peer TLS is on, when the peer port listens beyond
    /// loopback: otherwise any host could forward writes, vote, or keep sessions alive.
    #[arg(long, env = "GROVE_PEER_SECRET_FILE")]
    pub peer_secret_file: Option<PathBuf>,

    /// The peer secret itself, for environments that pass secrets as variables (Kubernetes
    /// Secrets); `--peer-secret-file` is preferred on a command line.
    #[arg(long, env = "GROVE_PEER_SECRET", hide_env_values = true)]
    pub peer_secret: Option<String>,

    /// The super user, as `user:base64(sha1(user:password))` (ZooKeeper's superDigest):
    /// requests authenticated as this digest user pass every ACL check. Compute it with
    /// `grove digest user:password`.
    #[arg(long, env = "GROVE_SUPER_DIGEST")]
    pub super_digest: Option<String>,

    /// A plaintext gRPC port serving only grpc.health.v1.Health, for Kubernetes probes when
    /// the client port needs TLS. Off unless given.
    #[arg(long, env = "GROVE_HEALTH_LISTEN")]
    pub health_listen: Option<String>,

    /// The web console at /ui on the admin port: `auto` (read-write on a loopback admin
    /// port, else read-only, or off when the client port requires client certificates),
    /// `on`, `read-only` or `off` (docs/security.md).
    #[arg(long, env = "GROVE_CONSOLE")]
    pub console: Option<String>,
}

/// A parsed `id=address` list.
pub type Members = Vec<(u64, String)>;

#[derive(Debug, Clone)]
pub struct Config {
    pub id: u64,
    pub data_dir: PathBuf,
    pub listen: String,
    pub peer_listen: String,
    pub admin_listen: String,
    pub advertise: Option<String>,
    pub advertise_peer: Option<String>,
    pub peers: Members,
    pub observers: Members,
    pub join: bool,
    /// `--auto-join`: join instead of refusing when the peers formed an ensemble without it.
    pub auto_join: bool,
    /// The backup a new cluster is restored from (`--restore`).
    pub restore: Option<PathBuf>,
    /// Every setting's value and source, as reported by `grove conf`.
    pub effective: Vec<Effective>,
    pub min_session_timeout: Duration,
    pub max_session_timeout: Duration,
    pub max_data_bytes: usize,
    pub max_request_bytes: usize,
    pub max_multi_ops: usize,
    pub max_page_size: usize,
    pub request_timeout: Duration,
    pub heartbeat: Duration,
    pub election_timeout_min: Duration,
    pub election_timeout_max: Duration,
    pub snapshot_entries: u64,
    pub keep_log_entries: u64,
    pub watch_history_entries: usize,
    pub watch_history_bytes: usize,
    pub watch_queue: usize,
    pub watch_queue_bytes: usize,
    pub max_watches_per_stream: usize,
    pub max_watches: usize,
    /// Connection limits; 0: none.
    pub max_connections: usize,
    pub max_connections_per_ip: usize,
    pub max_sessions: usize,
    pub max_lock_waiters: usize,
    pub max_lock_waiters_per_session: usize,
    pub max_session_request_rate: u64,
    pub watch_progress: Option<Duration>,
    pub reap_interval: Duration,
    pub cache_bytes: usize,
    pub log_json: bool,
    /// TLS on the client port (`ca`: the CA for client certificates).
    pub client_tls: Option<TlsFiles>,
    pub require_client_cert: bool,
    /// Mutual TLS on the peer port (`ca` always set).
    pub peer_tls: Option<TlsFiles>,
    pub health_listen: Option<String>,
    /// `user:digest` of the super user.
    pub super_digest: Option<String>,
    /// The shared secret of the peer port (`--peer-secret-file`, `GROVE_PEER_SECRET`).
    pub peer_secret: Option<String>,
    pub console: Console,
}

impl Default for Config {
    fn default() -> Self {
        Config::resolve(Settings::default(), Settings::default()).expect("defaults are valid")
    }
}

fn parse_members(flag: &str, s: &str) -> Result<Members, String> {
    let mut out = Vec::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (id, addr) =
            part.split_once('=').ok_or_else(|| format!("--{flag}: expected id=host:port, got {part:?}"))?;
        let id: u64 = id.trim().parse().map_err(|_| format!("--{flag}: server id {id:?} is not a positive integer"))?;
        if id == 0 {
            return Err(format!("--{flag}: server ids start at 1"));
        }
        let addr = addr.trim();
        if !addr.contains(':') {
            return Err(format!("--{flag}: address {addr:?} of server {id} needs a port"));
        }
        if out.iter().any(|(i, _)| *i == id) {
            return Err(format!("--{flag}: server id {id} appears twice"));
        }
        out.push((id, addr.to_string()));
    }
    Ok(out)
}

fn hostname() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| std::fs::read_to_string("/proc/sys/kernel/hostname").ok())
        .unwrap_or_default()
        .trim()
        .to_string()
}

/// `grove-2` (or `grove-2.grove-peers.ns.svc`) is server 3.
fn id_from_hostname(host: &str) -> Result<u64, String> {
    let short = host.split('.').next().unwrap_or_default();
    short
        .rsplit_once('-')
        .and_then(|(_, n)| n.parse::<u64>().ok())
        .and_then(|n| n.checked_add(1))
        .ok_or_else(|| format!("--id-from-hostname: host name {host:?} does not end in -<ordinal>"))
}

impl Config {
    /// Resolves flags (with their environment fallback) over the file over the defaults.
    pub fn resolve(flags: Settings, file: Settings) -> Result<Config, String> {
        let defaults = Settings::defaults();
        macro_rules! pick {
            ($f:ident) => {
                flags
                    .$f
                    .clone()
                    .or(file.$f.clone())
                    .or(defaults.$f.clone())
                    .expect("Settings::defaults has every default")
            };
        }
        macro_rules! given {
            ($f:ident) => {
                flags.$f.clone().or(file.$f.clone())
            };
        }
        let ms = Duration::from_millis;
        let peers = parse_members("peers", &pick!(peers))?;
        let observers = parse_members("observers", &pick!(observers))?;
        let from_hostname = pick!(id_from_hostname);
        let id = match (flags.id.or(file.id), from_hostname) {
            (Some(_), true) => return Err("--id and --id-from-hostname exclude each other".into()),
            (Some(id), false) => id,
            (None, true) => id_from_hostname(&hostname())?.saturating_add(pick!(id_offset)),
            (None, false) => 1,
        };
        if id == 0 {
            return Err("--id: server ids start at 1".into());
        }
        let join = pick!(join);
        if !join
            && !peers.is_empty()
            && !peers.iter().any(|(i, _)| *i == id)
            && !observers.iter().any(|(i, _)| *i == id)
        {
            return Err(format!("--id {id} is neither in --peers nor in --observers (use --join to join an ensemble)"));
        }
        if join && given!(restore).is_some() {
            return Err("--join and --restore exclude each other: a restore makes a new cluster".into());
        }
        if let Some((dup, _)) = observers.iter().find(|(i, _)| peers.iter().any(|(p, _)| p == i)) {
            return Err(format!("server {dup} is both a voter (--peers) and an observer"));
        }
        let console =
            Console::resolve(&pick!(console), is_loopback(&pick!(admin_listen)), pick!(tls_require_client_cert))?;
        let log_format = pick!(log_format);
        if log_format != "text" && log_format != "json" {
            return Err(format!("--log-format must be text or json, not {log_format:?}"));
        }
        let client_tls = match (given!(tls_cert), given!(tls_key)) {
            (Some(cert), Some(key)) => Some(TlsFiles { cert, key, ca: given!(tls_client_ca) }),
            (None, None) => None,
            _ => return Err("--tls-cert and --tls-key go together".into()),
        };
        let require_client_cert = pick!(tls_require_client_cert);
        if client_tls.as_ref().is_none_or(|t| t.ca.is_none())
            && (require_client_cert || given!(tls_client_ca).is_some())
        {
            return Err("--tls-client-ca and --tls-require-client-cert need --tls-cert and --tls-key".into());
        }
        let peer_tls = match (given!(peer_tls_cert), given!(peer_tls_key), given!(peer_tls_ca)) {
            (Some(cert), Some(key), Some(ca)) => Some(TlsFiles { cert, key, ca: Some(ca) }),
            (None, None, None) => None,
            _ => return Err("--peer-tls-cert, --peer-tls-key and --peer-tls-ca go together".into()),
        };
        let cfg = Config {
            id,
            data_dir: pick!(data_dir),
            listen: pick!(listen),
            peer_listen: pick!(peer_listen),
            admin_listen: pick!(admin_listen),
            advertise: pick!(advertise).into_some(),
            advertise_peer: pick!(advertise_peer).into_some(),
            peers,
            observers,
            join,
            auto_join: pick!(auto_join),
            restore: given!(restore),
            effective: effective(&flags, &file, &|_| false),
            min_session_timeout: ms(pick!(min_session_timeout_ms)),
            max_session_timeout: ms(pick!(max_session_timeout_ms)),
            max_data_bytes: pick!(max_data_bytes),
            max_request_bytes: pick!(max_request_bytes),
            max_multi_ops: pick!(max_multi_ops),
            max_page_size: pick!(max_page_size),
            request_timeout: ms(pick!(request_timeout_ms)),
            // A follower refuses votes for a lease (the maximum election timeout) after it last
            // heard from the leader, and a candidate refused retries a timeout later: a leader
            // is replaced within about twice the maximum election timeout.
            heartbeat: ms(pick!(heartbeat_ms)),
            election_timeout_min: ms(pick!(election_timeout_min_ms)),
            election_timeout_max: ms(pick!(election_timeout_max_ms)),
            snapshot_entries: pick!(snapshot_entries),
            keep_log_entries: pick!(keep_log_entries),
            watch_history_entries: pick!(watch_history_entries),
            watch_history_bytes: pick!(watch_history_bytes),
            watch_queue: pick!(watch_queue),
            watch_queue_bytes: pick!(watch_queue_bytes),
            max_watches_per_stream: pick!(max_watches_per_stream),
            max_watches: pick!(max_watches),
            max_connections: pick!(max_connections),
            max_connections_per_ip: pick!(max_connections_per_ip),
            max_sessions: pick!(max_sessions),
            max_lock_waiters: pick!(max_lock_waiters),
            max_lock_waiters_per_session: pick!(max_lock_waiters_per_session),
            max_session_request_rate: pick!(max_session_request_rate),
            watch_progress: Some(ms(pick!(watch_progress_ms))).filter(|d| !d.is_zero()),
            reap_interval: ms(pick!(reap_interval_ms)),
            cache_bytes: pick!(cache_mib) << 20,
            log_json: log_format == "json",
            client_tls,
            require_client_cert,
            peer_tls,
            health_listen: pick!(health_listen).into_some(),
            super_digest: match given!(super_digest) {
                Some(d) if d.split_once(':').is_some_and(|(u, h)| !u.is_empty() && h.len() == 28) => Some(d),
                Some(_) => {
                    return Err(
                        "--super-digest must be user:base64(sha1(user:password)) (grove digest prints it)".into()
                    );
                }
                None => None,
            },
            peer_secret: match (given!(peer_secret_file), given!(peer_secret)) {
                (Some(_), Some(_)) => {
                    return Err("give the peer secret once: --peer-secret-file or GROVE_PEER_SECRET".into());
                }
                (Some(file), None) => Some(
                    std::fs::read_to_string(&file)
                        .map_err(|e| format!("--peer-secret-file {}: {e}", file.display()))?
                        .trim()
                        .to_string(),
                ),
                (None, secret) => secret.map(|s| s.trim().to_string()),
            },
            console,
        };
        cfg.validate()?;
        Ok(cfg)
    }

    fn validate(&self) -> Result<(), String> {
        if self.min_session_timeout.is_zero() || self.min_session_timeout > self.max_session_timeout {
            return Err("session timeouts: need 0 < min-session-timeout-ms <= max-session-timeout-ms".into());
        }
        if self.heartbeat.is_zero() || self.heartbeat >= self.election_timeout_min {
            return Err("raft timing: need 0 < heartbeat-ms < election-timeout-min-ms".into());
        }
        if self.election_timeout_min >= self.election_timeout_max {
            return Err("raft timing: need election-timeout-min-ms < election-timeout-max-ms".into());
        }
        if self.max_data_bytes + 64 * 1024 > self.max_request_bytes {
            return Err("limits: max-request-bytes must exceed max-data-bytes by at least 64 KiB".into());
        }
        if self.max_multi_ops == 0 || self.max_page_size == 0 || self.watch_queue == 0 || self.watch_queue_bytes == 0 {
            return Err(
                "limits: max-multi-ops, max-page-size, watch-queue and watch-queue-bytes must be positive".into()
            );
        }
        if self.request_timeout.is_zero() || self.reap_interval.is_zero() {
            return Err("request-timeout-ms and reap-interval-ms must be positive".into());
        }
        if self.snapshot_entries == 0 {
            return Err("snapshot-entries must be positive".into());
        }
        if let Some(s) = &self.peer_secret
            && (s.len() < 16 || !s.bytes().all(|b| b.is_ascii_graphic()))
        {
            return Err("the peer secret must be at least 16 printable characters without spaces".into());
        }
        if self.peer_tls.is_none() && self.peer_secret.is_none() && !is_loopback(&self.peer_listen) {
            return Err(format!(
                "the peer port listens on {}, reachable from other hosts, with neither peer TLS \
                 (--peer-tls-cert, --peer-tls-key, --peer-tls-ca) nor a shared peer secret (--peer-secret-file, or \
                 GROVE_PEER_SECRET: the same on every member): any host could then forward writes, vote and keep \
                 sessions alive. Configure one of them, or listen on 127.0.0.1",
                self.peer_listen
            ));
        }
        Ok(())
    }

    /// Reads a TOML settings file.
    pub fn read_file(path: &std::path::Path) -> Result<Settings, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("reading {}: {e}", path.display()))?;
        toml::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// True if this server is the only voter and no observers are configured.
    pub fn is_standalone(&self) -> bool {
        self.peers.len() <= 1 && self.observers.is_empty()
    }

    /// Negotiates a requested session timeout into the configured bounds.
    pub fn negotiate_session_timeout(&self, requested_ms: i64) -> Duration {
        let requested = Duration::from_millis(requested_ms.max(0) as u64);
        requested.clamp(self.min_session_timeout, self.max_session_timeout)
    }
}

/// Whether a listen address only accepts connections from this machine.
pub(crate) fn is_loopback(addr: &str) -> bool {
    let host = addr.rsplit_once(':').map(|(h, _)| h).unwrap_or(addr);
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host == "localhost" || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

trait IntoSome {
    fn into_some(self) -> Option<String>;
}

impl IntoSome for String {
    fn into_some(self) -> Option<String> {
        Some(self).filter(|s| !s.is_empty())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_a_local_standalone_node() {
        let c = Config::default();
        assert_eq!(c.id, 1);
        assert_eq!(c.listen, "127.0.0.1:7181");
        assert_eq!(c.peer_listen, "127.0.0.1:7281");
        assert_eq!(c.admin_listen, "127.0.0.1:7381");
        assert_eq!(c.data_dir, PathBuf::from("grove-data"));
        assert!(c.is_standalone());
    }

    #[test]
    fn the_console_is_read_write_only_on_loopback_unless_told() {
        let resolve = |admin: &str, console: Option<&str>| {
            let flags =
                Settings { admin_listen: Some(admin.into()), console: console.map(Into::into), ..Default::default() };
            Config::resolve(flags, Settings::default()).map(|c| c.console)
        };
        assert_eq!(resolve("127.0.0.1:7381", None), Ok(Console::ReadWrite));
        let Ok(Console::ReadOnly { reason }) = resolve("0.0.0.0:7381", None) else { panic!() };
        assert!(reason.contains("--console on"), "{reason}");
        assert_eq!(resolve("0.0.0.0:7381", Some("on")), Ok(Console::ReadWrite));
        assert!(matches!(resolve("127.0.0.1:7381", Some("read-only")), Ok(Console::ReadOnly { .. })));
        assert!(matches!(resolve("127.0.0.1:7381", Some("off")), Ok(Console::Off { .. })));
        assert!(resolve("127.0.0.1:7381", Some("yes")).unwrap_err().contains("auto, on, read-only or off"));
        // Client certificates required: the plain-HTTP admin port must not go around them.
        assert!(matches!(Console::resolve("auto", false, true), Ok(Console::Off { .. })));
        assert_eq!(Console::resolve("auto", true, true), Ok(Console::ReadWrite));
        assert_eq!(Console::resolve("on", false, true), Ok(Console::ReadWrite));
    }

    #[test]
    fn the_id_can_come_from_a_statefulset_pod_name() {
        assert_eq!(id_from_hostname("grove-0"), Ok(1));
        assert_eq!(id_from_hostname("my-grove-4.grove-peers.default.svc.cluster.local"), Ok(5));
        assert!(id_from_hostname("laptop").unwrap_err().contains("\"laptop\""));
        assert!(id_from_hostname("grove-x").is_err());
        let both = Settings { id: Some(2), id_from_hostname: Some(true), ..Default::default() };
        assert!(Config::resolve(both, Settings::default()).unwrap_err().contains("exclude"));
    }

    #[test]
    fn flags_beat_file_beats_defaults() {
        let file: Settings =
            toml::from_str("listen = \"127.0.0.1:9000\"\nid = 2\npeers = \"1=a:1,2=b:2,3=c:3\"").unwrap();
        let flags = Settings { listen: Some("127.0.0.1:9100".into()), ..Default::default() };
        let c = Config::resolve(flags, file).unwrap();
        assert_eq!(c.listen, "127.0.0.1:9100");
        assert_eq!(c.id, 2);
        assert_eq!(c.peers.len(), 3);
        assert!(!c.is_standalone());
    }

    #[test]
    fn bad_settings_are_clear_errors() {
        let bad = |s: Settings| Config::resolve(s, Settings::default()).unwrap_err();
        assert!(bad(Settings { peers: Some("1=a".into()), ..Default::default() }).contains("needs a port"));
        assert!(bad(Settings { peers: Some("x=a:1".into()), ..Default::default() }).contains("not a positive integer"));
        assert!(bad(Settings { peers: Some("1=a:1,1=b:2".into()), ..Default::default() }).contains("twice"));
        assert!(
            bad(Settings { id: Some(4), peers: Some("1=a:1,2=b:2".into()), ..Default::default() }).contains("neither")
        );
        assert!(bad(Settings { heartbeat_ms: Some(5000), ..Default::default() }).contains("heartbeat"));
        assert!(bad(Settings { log_format: Some("xml".into()), ..Default::default() }).contains("text or json"));
        assert!(toml::from_str::<Settings>("nonsense = 1").is_err());
    }

    #[test]
    fn session_timeouts_are_clamped() {
        let c = Config::default();
        assert_eq!(c.negotiate_session_timeout(1), Duration::from_secs(4));
        assert_eq!(c.negotiate_session_timeout(10_000), Duration::from_secs(10));
        assert_eq!(c.negotiate_session_timeout(1_000_000), Duration::from_secs(40));
    }
}

#[cfg(test)]
mod peer_port_tests {
    use super::*;

    fn resolve(settings: Settings) -> Result<Config, String> {
        Config::resolve(settings, Settings::default())
    }

    #[test]
    fn a_peer_port_beyond_loopback_needs_tls_or_a_secret() {
        let open = Settings { peer_listen: Some("0.0.0.0:7281".into()), ..Default::default() };
        let e = resolve(open.clone()).unwrap_err();
        assert!(e.contains("0.0.0.0:7281") && e.contains("--peer-secret-file") && e.contains("--peer-tls-cert"), "{e}");
        let with_secret = Settings { peer_secret: Some("s3cret-s3cret-s3cret".into()), ..open.clone() };
        assert_eq!(resolve(with_secret).unwrap().peer_secret.as_deref(), Some("s3cret-s3cret-s3cret"));
        let short = Settings { peer_secret: Some("short".into()), ..open };
        assert!(resolve(short).unwrap_err().contains("at least 16"));
        for local in ["127.0.0.1:7281", "[::1]:7281", "localhost:7281"] {
            assert!(resolve(Settings { peer_listen: Some(local.into()), ..Default::default() }).is_ok(), "{local}");
        }
    }

    #[test]
    fn the_secret_comes_from_a_file_or_the_environment_once() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("peer-secret");
        std::fs::write(&file, "from-the-file-0123456789\n").unwrap();
        let s = Settings { peer_secret_file: Some(file.clone()), ..Default::default() };
        assert_eq!(resolve(s).unwrap().peer_secret.as_deref(), Some("from-the-file-0123456789"));
        let both = Settings { peer_secret_file: Some(file), peer_secret: Some("x".repeat(20)), ..Default::default() };
        assert!(resolve(both).unwrap_err().contains("once"));
        let missing = Settings { peer_secret_file: Some(dir.path().join("nope")), ..Default::default() };
        assert!(resolve(missing).unwrap_err().contains("--peer-secret-file"));
    }
}
