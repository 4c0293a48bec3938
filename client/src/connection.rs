//! The connection to the ensemble that every part of the client shares: the servers and
//! the one in use, how to dial them, the session and its state, credentials, the highest
//! zxid seen, and the calling machinery (metadata, retries across servers, deadlines).
//! `Client` is a handle over it; the session keeper and watch streams use it directly.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, RwLock};
use std::time::Duration;

use grove_proto::metadata;
use grove_proto::v1 as pb;
use tokio::sync::{broadcast, watch};
use tonic::metadata::{Ascii, MetadataMap, MetadataValue};
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};
use tonic::{Request, Status};

use crate::error::{Error, Result};
use crate::retry::RetryPolicy;
use crate::types::{Consistency, Session, SessionState};

pub(crate) struct Connection {
    pub(crate) servers: Vec<String>,
    pub(crate) channels: Vec<Channel>,
    /// How to dial a server (timeouts, TLS): also used for a leader's address learned later.
    pub(crate) dial: Dial,
    pub(crate) chroot: Option<String>,
    pub(crate) current: AtomicUsize,
    pub(crate) last_zxid: AtomicU64,
    pub(crate) request_timeout: Duration,
    pub(crate) retry: RetryPolicy,
    pub(crate) session: RwLock<Option<Session>>,
    pub(crate) state: watch::Sender<SessionState>,
    /// Every transition, for listeners that must not miss one (LOST then RECONNECTED).
    pub(crate) transitions: broadcast::Sender<SessionState>,
    /// Open a new session by itself after one is lost (set by `session_timeout`).
    pub(crate) auto_session: Option<Duration>,
    pub(crate) keepalive: Mutex<Option<tokio::task::JoinHandle<()>>>,
    /// `grove-auth` values sent with every request (`digest user:password`).
    pub(crate) auth: RwLock<Vec<MetadataValue<Ascii>>>,
}

impl Drop for Connection {
    fn drop(&mut self) {
        if let Some(task) = self.keepalive.lock().unwrap().take() {
            task.abort();
        }
    }
}

/// TLS towards the servers: the CA to verify them with (none: the system's roots are not
/// consulted, so give one), and a client certificate, which the server turns into the
/// `x509:<subject>` identity.
#[derive(Debug, Clone, Default)]
pub struct TlsOptions {
    pub ca: Option<PathBuf>,
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
    /// The name to verify the server's certificate against, when it is not the host in the
    /// connect string (e.g. connecting by IP to a certificate issued for a DNS name).
    pub server_name: Option<String>,
}

impl TlsOptions {
    pub(crate) fn config(&self) -> Result<ClientTlsConfig> {
        let read = |p: &PathBuf| {
            std::fs::read(p).map_err(|e| Error::BadArguments { message: format!("TLS file {}: {e}", p.display()) })
        };
        let mut tls = ClientTlsConfig::new();
        if let Some(ca) = &self.ca {
            tls = tls.ca_certificate(Certificate::from_pem(read(ca)?));
        }
        match (&self.cert, &self.key) {
            (Some(cert), Some(key)) => tls = tls.identity(Identity::from_pem(read(cert)?, read(key)?)),
            (None, None) => {}
            _ => {
                return Err(Error::BadArguments {
                    message: "a TLS client certificate needs its key, and the other way round".into(),
                });
            }
        }
        if let Some(name) = &self.server_name {
            tls = tls.domain_name(name.clone());
        }
        Ok(tls)
    }
}

/// How endpoints are built.
#[derive(Debug, Clone)]
pub(crate) struct Dial {
    pub(crate) connect_timeout: Duration,
    pub(crate) tls: Option<ClientTlsConfig>,
}

impl Dial {
    pub(crate) fn endpoint(&self, addr: &str) -> Result<Endpoint> {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        let uri = if addr.contains("://") { addr.to_string() } else { format!("{scheme}://{addr}") };
        let bad = |e: tonic::transport::Error| Error::BadArguments { message: format!("server address {addr:?}: {e}") };
        let mut e = Endpoint::from_shared(uri).map_err(bad)?;
        if let Some(tls) = &self.tls {
            e = e.tls_config(tls.clone()).map_err(bad)?;
        }
        Ok(e.connect_timeout(self.connect_timeout)
            .tcp_nodelay(true)
            .http2_keep_alive_interval(Duration::from_secs(10))
            .keep_alive_timeout(Duration::from_secs(10)))
    }
}

pub(crate) fn status_err(s: Status) -> Error {
    Error::from_status(&s)
}

impl Connection {
    /// The server currently in use.
    pub(crate) fn server(&self) -> &str {
        let i = self.current.load(Ordering::Relaxed) % self.servers.len();
        &self.servers[i]
    }

    pub(crate) fn servers(&self) -> &[String] {
        &self.servers
    }

    pub(crate) fn chroot(&self) -> Option<&str> {
        self.chroot.as_deref()
    }

    /// The highest zxid this client has seen.
    pub(crate) fn last_zxid(&self) -> u64 {
        self.last_zxid.load(Ordering::Relaxed)
    }

    pub(crate) fn saw(&self, header: &Option<pb::ResponseHeader>) {
        if let Some(h) = header {
            self.last_zxid.fetch_max(h.zxid, Ordering::Relaxed);
        }
    }

    /// The server-side path of a client path (chroot applied).
    pub(crate) fn full_path(&self, path: &str) -> String {
        match &self.chroot {
            None => path.to_string(),
            Some(root) if path == "/" => root.clone(),
            Some(root) => format!("{root}{path}"),
        }
    }

    /// The client path of a server-side path (chroot removed).
    pub(crate) fn client_path(&self, path: &str) -> String {
        match &self.chroot {
            None => path.to_string(),
            Some(root) => match path.strip_prefix(root.as_str()) {
                Some("") => "/".to_string(),
                Some(rest) if rest.starts_with('/') => rest.to_string(),
                _ => path.to_string(),
            },
        }
    }

    /// Wraps a message with the session metadata. The request timeout is enforced here,
    /// not sent as `grpc-timeout`: the server bounds its own waits, and a per-request
    /// deadline header would cost it a timer on every call.
    pub(crate) fn request<T>(&self, msg: T) -> Request<T> {
        let mut req = Request::new(msg);
        self.decorate(req.metadata_mut());
        req
    }

    /// Puts the session and the credentials on a request's metadata.
    pub(crate) fn decorate(&self, md: &mut MetadataMap) {
        if let Some(s) = self.session.read().unwrap().as_ref() {
            md.insert(metadata::SESSION_ID, s.id.to_string().parse().expect("digits"));
            md.insert(metadata::SESSION_SECRET, s.secret_hex().parse().expect("hex"));
        }
        for value in self.auth.read().unwrap().iter() {
            md.append(metadata::AUTH, value.clone());
        }
    }

    /// Adds credentials to every later request of this client and its clones (zkCli's
    /// `addauth`). Only `digest` with `user:password` exists; x509 identities come from
    /// the TLS client certificate. Nothing is checked until a request needs the rights.
    pub(crate) fn add_auth(&self, scheme: &str, credential: &str) -> Result<()> {
        if scheme != "digest" {
            return Err(Error::BadArguments {
                message: format!(
                    "auth scheme {scheme:?}: only digest (user:password) is sent; x509 comes from the TLS certificate"
                ),
            });
        }
        if credential.split_once(':').is_none_or(|(u, _)| u.is_empty()) {
            return Err(Error::BadArguments { message: "digest credentials are user:password".into() });
        }
        let value: MetadataValue<Ascii> = format!("digest {credential}")
            .parse()
            .map_err(|_| Error::BadArguments { message: "credentials must be printable ASCII".into() })?;
        let mut auth = self.auth.write().unwrap();
        if !auth.contains(&value) {
            auth.push(value);
        }
        Ok(())
    }

    /// A write request: the session metadata and a request id, so a retry of the same write
    /// (on any server) is applied once.
    pub(crate) fn write_request<T>(&self, msg: T, id: u128) -> Request<T> {
        let mut req = self.request(msg);
        req.metadata_mut().insert(metadata::REQUEST_ID, format!("{id:032x}").parse().expect("hex"));
        req
    }

    /// Calls a request that is safe to repeat (a read, or a write carrying a request id,
    /// which the servers apply once): failures of the connection or the ensemble are retried
    /// as the retry policy allows, on the next server. Only then is a write's outcome
    /// reported as unknown (`ConnectionLoss`).
    pub(crate) async fn call_retrying<T, F, Fut>(&self, f: F) -> Result<T>
    where
        F: Fn(Channel) -> Fut,
        Fut: std::future::Future<Output = std::result::Result<tonic::Response<T>, Status>>,
    {
        let started = std::time::Instant::now();
        let mut retries = 0;
        loop {
            let mut deadline = std::time::Instant::now() + self.request_timeout;
            if let RetryPolicy::UntilElapsed { max_elapsed } = self.retry {
                deadline = deadline.min(started + max_elapsed);
            }
            match self.call_until(true, deadline, &f).await {
                // NO_QUORUM is final: the server already waited its own request timeout for a
                // quorum, and the write may yet be applied; asking again would double the wait.
                Err(e) if e.is_transient() && !matches!(e, Error::NoQuorum { .. }) => {
                    match self.retry.next_sleep(retries, started.elapsed()) {
                        Some(pause) => {
                            retries += 1;
                            tokio::time::sleep(pause).await;
                        }
                        None => return Err(e),
                    }
                }
                r => return r,
            }
        }
    }

    pub(crate) fn retry_policy(&self) -> &RetryPolicy {
        &self.retry
    }

    pub(crate) fn request_timeout(&self) -> Duration {
        self.request_timeout
    }

    /// Calls the current server; on failure that proves nothing was done (or on any
    /// connection failure for a read), tries the other servers once each.
    pub(crate) async fn call<T, F, Fut>(&self, idempotent: bool, f: F) -> Result<T>
    where
        F: Fn(Channel) -> Fut,
        Fut: std::future::Future<Output = std::result::Result<tonic::Response<T>, Status>>,
    {
        self.call_until(idempotent, std::time::Instant::now() + self.request_timeout, f).await
    }

    /// `call`, with every attempt bounded by one overall deadline.
    pub(crate) async fn call_until<T, F, Fut>(&self, idempotent: bool, deadline: std::time::Instant, f: F) -> Result<T>
    where
        F: Fn(Channel) -> Fut,
        Fut: std::future::Future<Output = std::result::Result<tonic::Response<T>, Status>>,
    {
        let n = self.servers.len();
        let start = self.current.load(Ordering::Relaxed);
        let mut last = None;
        for attempt in 0..n {
            let i = (start + attempt) % n;
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            let outcome = match tokio::time::timeout(left, f(self.channels[i].clone())).await {
                Ok(r) => r,
                Err(_) => {
                    Err(Status::deadline_exceeded(format!("no answer within {} ms", self.request_timeout.as_millis())))
                }
            };
            match outcome {
                Ok(resp) => {
                    if attempt > 0 {
                        self.current.store(i, Ordering::Relaxed);
                    }
                    return Ok(resp.into_inner());
                }
                Err(status) => {
                    let e = status_err(status);
                    // Another server may be in touch with a quorum when this one is not; a
                    // request that may have been applied goes on only with its request id
                    // (every write carries one).
                    let move_on = e.is_retryable()
                        || matches!(e, Error::NoQuorum { .. })
                        || (idempotent && matches!(e, Error::ConnectionLoss { .. }));
                    if !move_on {
                        return Err(e);
                    }
                    last = Some(e);
                }
            }
        }
        Err(last.unwrap_or(Error::Unreachable { message: "no servers".into() }))
    }

    pub(crate) fn read_options(&self, c: Consistency) -> (i32, u64) {
        let c = match c {
            Consistency::Linearizable => pb::Consistency::Linearizable,
            Consistency::Sequential => pb::Consistency::Sequential,
        };
        (c as i32, self.last_zxid())
    }

    pub(crate) fn set_state(&self, s: SessionState) {
        self.state.send_replace(s);
        let _ = self.transitions.send(s);
    }

    pub(crate) fn drop_session(&self, id: u64) {
        let mut guard = self.session.write().unwrap();
        if guard.as_ref().is_some_and(|s| s.id == id) {
            *guard = None;
        }
    }

    pub(crate) fn channel_at(&self, attempt: usize) -> (usize, Channel) {
        let n = self.channels.len();
        let i = (self.current.load(Ordering::Relaxed) + attempt) % n;
        (i, self.channels[i].clone())
    }

    pub(crate) fn use_server(&self, i: usize) {
        self.current.store(i, Ordering::Relaxed);
    }

    pub(crate) fn server_count(&self) -> usize {
        self.channels.len()
    }

    pub(crate) fn session(&self) -> Option<Session> {
        self.session.read().unwrap().clone()
    }
}

/// A fresh request id: the clock in the high half (so servers can forget old ones in
/// order), random bits in the low half.
pub(crate) fn new_request_id() -> u128 {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis()).unwrap_or(0);
    (now << 64) | u128::from(rand::random::<u64>().max(1))
}
