//! The Grove client: a cloneable handle over one or more servers.
//!
//! Requests go to the current server; when it cannot be reached, to the next one. Every
//! write carries a request id (`grove-request-id`) and the servers apply an id once, so a
//! write whose connection broke mid-flight is simply sent again, here or elsewhere, until
//! the request timeout: only then is it reported as `ConnectionLoss` (outcome unknown).
//! Every response's zxid is remembered and passed as `min_zxid` on later reads, so a client
//! that moves between servers always reads its own writes.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use bytes::Bytes;
use grove_proto::metadata;
use grove_proto::v1 as pb;
use grove_proto::v1::cluster_client::ClusterClient;
use grove_proto::v1::nodes_client::NodesClient;
use grove_proto::v1::sessions_client::SessionsClient;
use tokio::sync::{broadcast, watch};
use tonic::metadata::{Ascii, MetadataMap, MetadataValue};
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};
use tonic::{Request, Status};

use crate::error::{Error, Result};
use crate::retry::RetryPolicy;
use crate::watch::WatchStream;

pub use pb::{Acl, CreateMode, Stat};

/// Largest message the client accepts (a page of children with stats, a 1 MiB node).
const MAX_MESSAGE: usize = 16 << 20;

/// Servers and an optional chroot, from `host:port,host:port/chroot`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectString {
    pub servers: Vec<String>,
    pub chroot: Option<String>,
}

impl ConnectString {
    pub fn parse(s: &str) -> Result<ConnectString> {
        let s = s.trim();
        let (hosts, chroot) = match s.find('/') {
            Some(i) if !s[..i].ends_with(':') && !s[..i].contains("://") => (&s[..i], Some(&s[i..])),
            _ => (s, None),
        };
        let servers: Vec<String> = hosts
            .split(',')
            .map(str::trim)
            .filter(|h| !h.is_empty())
            .map(|h| if h.contains(':') { h.to_string() } else { format!("{h}:7181") })
            .collect();
        if servers.is_empty() {
            return Err(Error::BadArguments { message: format!("no server in connect string {s:?}") });
        }
        let chroot = match chroot {
            None | Some("/") => None,
            Some(c) => {
                let c = c.trim_end_matches('/');
                if c.contains("//") {
                    return Err(Error::BadArguments { message: format!("invalid chroot {c:?}") });
                }
                Some(c.to_string())
            }
        };
        Ok(ConnectString { servers, chroot })
    }
}

/// A session this client holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub id: u64,
    pub secret: Bytes,
    pub timeout: Duration,
}

impl Session {
    pub fn secret_hex(&self) -> String {
        self.secret.iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// The life of the client's session, as a listener sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionState {
    /// No session opened.
    None,
    Connected,
    /// Keepalives are failing; the session may still be alive on the servers.
    Suspended,
    /// Keepalives work again after a suspension (possibly through another server).
    Reconnected,
    /// The servers expired or closed the session; its ephemerals are gone.
    Lost,
    Closed,
}

#[derive(Debug, Clone)]
pub struct CreateOptions {
    pub mode: CreateMode,
    pub ttl: Option<Duration>,
    pub create_parents: bool,
    /// The new node's ACL; empty: open to everyone (`world:anyone:cdrwa`).
    pub acl: Vec<Acl>,
}

impl Default for CreateOptions {
    fn default() -> Self {
        CreateOptions { mode: CreateMode::Persistent, ttl: None, create_parents: false, acl: Vec::new() }
    }
}

impl CreateOptions {
    pub fn mode(mode: CreateMode) -> Self {
        CreateOptions { mode, ..Default::default() }
    }

    /// The same options with an ACL for the new node.
    pub fn with_acl(mut self, acl: Vec<Acl>) -> Self {
        self.acl = acl;
        self
    }
}

/// Read freshness.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Consistency {
    #[default]
    Linearizable,
    Sequential,
}

/// One operation of a transaction.
#[derive(Debug, Clone)]
pub enum Op {
    Create {
        path: String,
        data: Bytes,
        options: CreateOptions,
    },
    Delete {
        path: String,
        version: Option<i32>,
    },
    Set {
        path: String,
        data: Bytes,
        version: Option<i32>,
    },
    Check {
        path: String,
        version: Option<i32>,
    },
    /// Passes only while `token` is a current grant of the lock at `path`: put it first so
    /// the transaction is refused (FENCED) if the caller lost the lock.
    CheckFence {
        path: String,
        token: u64,
    },
}

/// What a successful operation of a transaction returned.
#[derive(Debug, Clone, PartialEq)]
pub enum OpResult {
    Created { path: String, stat: Stat },
    Set { stat: Stat },
    Deleted,
    Checked,
    Fenced,
}

/// A page of children.
#[derive(Debug, Clone, Default)]
pub struct Children {
    pub names: Vec<String>,
    pub stats: Vec<Stat>,
    pub stat: Stat,
    pub next_page_token: String,
    pub zxid: u64,
}

#[derive(Clone)]
pub struct Client {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    servers: Vec<String>,
    channels: Vec<Channel>,
    /// How to dial a server (timeouts, TLS): also used for a leader's address learned later.
    dial: Dial,
    chroot: Option<String>,
    current: AtomicUsize,
    last_zxid: AtomicU64,
    request_timeout: Duration,
    retry: RetryPolicy,
    session: RwLock<Option<Session>>,
    state: watch::Sender<SessionState>,
    /// Every transition, for listeners that must not miss one (LOST then RECONNECTED).
    transitions: broadcast::Sender<SessionState>,
    /// Open a new session by itself after one is lost (set by `session_timeout`).
    auto_session: Option<Duration>,
    keepalive: Mutex<Option<tokio::task::JoinHandle<()>>>,
    /// `grove-auth` values sent with every request (`digest user:password`).
    auth: RwLock<Vec<MetadataValue<Ascii>>>,
}

impl Drop for Inner {
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
    fn config(&self) -> Result<ClientTlsConfig> {
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
struct Dial {
    connect_timeout: Duration,
    tls: Option<ClientTlsConfig>,
}

impl Dial {
    fn endpoint(&self, addr: &str) -> Result<Endpoint> {
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

/// Configures a client.
#[derive(Debug, Clone)]
pub struct ClientBuilder {
    connect: String,
    connect_timeout: Duration,
    request_timeout: Duration,
    retry: Option<RetryPolicy>,
    session_timeout: Option<Duration>,
    tls: Option<TlsOptions>,
    auth: Vec<(String, String)>,
}

impl ClientBuilder {
    /// Authenticate every request as a digest user (ZooKeeper's `addauth digest
    /// user:password`). The password travels with each request: use TLS.
    pub fn digest_auth(mut self, user: &str, password: &str) -> Self {
        self.auth.push((user.to_string(), password.to_string()));
        self
    }

    /// Connect over TLS.
    pub fn tls(mut self, tls: TlsOptions) -> Self {
        self.tls = Some(tls);
        self
    }

    pub fn connect_timeout(mut self, t: Duration) -> Self {
        self.connect_timeout = t;
        self
    }

    /// Bound on each request, including the server's own wait for a quorum.
    pub fn request_timeout(mut self, t: Duration) -> Self {
        self.request_timeout = t;
        self
    }

    /// How requests are retried through connection losses and leader changes (default:
    /// until the request timeout has passed).
    pub fn retry_policy(mut self, p: RetryPolicy) -> Self {
        self.retry = Some(p);
        self
    }

    /// Open a session with this timeout when the client starts (`start`).
    pub fn session_timeout(mut self, t: Duration) -> Self {
        self.session_timeout = Some(t);
        self
    }

    /// Builds the client and, if a session timeout was given, opens its session (Curator's
    /// `start()`).
    pub async fn start(self) -> Result<Client> {
        let session_timeout = self.session_timeout;
        let client = self.build()?;
        if let Some(t) = session_timeout {
            client.open_session(t).await?;
        }
        Ok(client)
    }

    pub fn build(self) -> Result<Client> {
        let cs = ConnectString::parse(&self.connect)?;
        let dial =
            Dial { connect_timeout: self.connect_timeout, tls: self.tls.as_ref().map(TlsOptions::config).transpose()? };
        let channels =
            cs.servers.iter().map(|s| dial.endpoint(s).map(|e| e.connect_lazy())).collect::<Result<Vec<_>>>()?;
        let (state, _) = watch::channel(SessionState::None);
        let (transitions, _) = broadcast::channel(64);
        let client = Client {
            inner: Arc::new(Inner {
                servers: cs.servers,
                channels,
                dial,
                chroot: cs.chroot,
                current: AtomicUsize::new(0),
                last_zxid: AtomicU64::new(0),
                request_timeout: self.request_timeout,
                retry: self.retry.unwrap_or(RetryPolicy::UntilElapsed { max_elapsed: self.request_timeout }),
                session: RwLock::new(None),
                state,
                transitions,
                auto_session: self.session_timeout,
                keepalive: Mutex::new(None),
                auth: RwLock::new(Vec::new()),
            }),
        };
        for (user, password) in &self.auth {
            client.add_auth("digest", &format!("{user}:{password}"))?;
        }
        Ok(client)
    }
}

fn status_err(s: Status) -> Error {
    Error::from_status(&s)
}

impl Client {
    pub fn builder(connect: &str) -> ClientBuilder {
        ClientBuilder {
            connect: connect.to_string(),
            connect_timeout: Duration::from_secs(3),
            request_timeout: Duration::from_secs(15),
            retry: None,
            session_timeout: None,
            tls: None,
            auth: Vec::new(),
        }
    }

    /// A client for `host:port[,host:port...][/chroot]`. Connections open lazily; call it
    /// inside a Tokio runtime.
    pub fn connect(connect: &str) -> Result<Client> {
        Client::builder(connect).build()
    }

    /// The server currently in use.
    pub fn server(&self) -> &str {
        let i = self.inner.current.load(Ordering::Relaxed) % self.inner.servers.len();
        &self.inner.servers[i]
    }

    pub fn servers(&self) -> &[String] {
        &self.inner.servers
    }

    pub fn chroot(&self) -> Option<&str> {
        self.inner.chroot.as_deref()
    }

    /// The highest zxid this client has seen.
    pub fn last_zxid(&self) -> u64 {
        self.inner.last_zxid.load(Ordering::Relaxed)
    }

    pub(crate) fn saw(&self, header: &Option<pb::ResponseHeader>) {
        if let Some(h) = header {
            self.inner.last_zxid.fetch_max(h.zxid, Ordering::Relaxed);
        }
    }

    /// The server-side path of a client path (chroot applied).
    pub fn full_path(&self, path: &str) -> String {
        match &self.inner.chroot {
            None => path.to_string(),
            Some(root) if path == "/" => root.clone(),
            Some(root) => format!("{root}{path}"),
        }
    }

    /// The client path of a server-side path (chroot removed).
    pub fn client_path(&self, path: &str) -> String {
        match &self.inner.chroot {
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
        if let Some(s) = self.inner.session.read().unwrap().as_ref() {
            md.insert(metadata::SESSION_ID, s.id.to_string().parse().expect("digits"));
            md.insert(metadata::SESSION_SECRET, s.secret_hex().parse().expect("hex"));
        }
        for value in self.inner.auth.read().unwrap().iter() {
            md.append(metadata::AUTH, value.clone());
        }
    }

    /// Adds credentials to every later request of this client and its clones (zkCli's
    /// `addauth`). Only `digest` with `user:password` exists; x509 identities come from
    /// the TLS client certificate. Nothing is checked until a request needs the rights.
    pub fn add_auth(&self, scheme: &str, credential: &str) -> Result<()> {
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
        let mut auth = self.inner.auth.write().unwrap();
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
            let mut deadline = std::time::Instant::now() + self.inner.request_timeout;
            if let RetryPolicy::UntilElapsed { max_elapsed } = self.inner.retry {
                deadline = deadline.min(started + max_elapsed);
            }
            match self.call_until(true, deadline, &f).await {
                Err(e) if e.is_transient() => match self.inner.retry.next_sleep(retries, started.elapsed()) {
                    Some(pause) => {
                        retries += 1;
                        tokio::time::sleep(pause).await;
                    }
                    None => return Err(e),
                },
                r => return r,
            }
        }
    }

    pub(crate) fn retry_policy(&self) -> &RetryPolicy {
        &self.inner.retry
    }

    pub(crate) fn request_timeout(&self) -> Duration {
        self.inner.request_timeout
    }

    /// Calls the current server; on failure that proves nothing was done (or on any
    /// connection failure for a read), tries the other servers once each.
    pub(crate) async fn call<T, F, Fut>(&self, idempotent: bool, f: F) -> Result<T>
    where
        F: Fn(Channel) -> Fut,
        Fut: std::future::Future<Output = std::result::Result<tonic::Response<T>, Status>>,
    {
        self.call_until(idempotent, std::time::Instant::now() + self.inner.request_timeout, f).await
    }

    /// `call`, with every attempt bounded by one overall deadline.
    async fn call_until<T, F, Fut>(&self, idempotent: bool, deadline: std::time::Instant, f: F) -> Result<T>
    where
        F: Fn(Channel) -> Fut,
        Fut: std::future::Future<Output = std::result::Result<tonic::Response<T>, Status>>,
    {
        let n = self.inner.servers.len();
        let start = self.inner.current.load(Ordering::Relaxed);
        let mut last = None;
        for attempt in 0..n {
            let i = (start + attempt) % n;
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            let outcome = match tokio::time::timeout(left, f(self.inner.channels[i].clone())).await {
                Ok(r) => r,
                Err(_) => Err(Status::deadline_exceeded(format!(
                    "no answer within {} ms",
                    self.inner.request_timeout.as_millis()
                ))),
            };
            match outcome {
                Ok(resp) => {
                    if attempt > 0 {
                        self.inner.current.store(i, Ordering::Relaxed);
                    }
                    return Ok(resp.into_inner());
                }
                Err(status) => {
                    let e = status_err(status);
                    let move_on = e.is_retryable() || (idempotent && matches!(e, Error::ConnectionLoss { .. }));
                    if !move_on {
                        return Err(e);
                    }
                    last = Some(e);
                }
            }
        }
        Err(last.unwrap_or(Error::Unreachable { message: "no servers".into() }))
    }

    fn nodes(&self, ch: Channel) -> NodesClient<Channel> {
        NodesClient::new(ch).max_decoding_message_size(MAX_MESSAGE).max_encoding_message_size(MAX_MESSAGE)
    }

    pub(crate) fn read_options(&self, c: Consistency) -> (i32, u64) {
        let c = match c {
            Consistency::Linearizable => pb::Consistency::Linearizable,
            Consistency::Sequential => pb::Consistency::Sequential,
        };
        (c as i32, self.last_zxid())
    }

    pub async fn create(&self, path: &str, data: impl Into<Bytes>, opts: &CreateOptions) -> Result<(String, Stat)> {
        let msg = create_request(&self.full_path(path), data.into(), opts);
        let id = new_request_id();
        let resp =
            self.call_retrying(|ch| async { self.nodes(ch).create(self.write_request(msg.clone(), id)).await }).await?;
        self.saw(&resp.header);
        Ok((self.client_path(&resp.path), resp.stat.unwrap_or_default()))
    }

    pub async fn get(&self, path: &str) -> Result<(Bytes, Stat)> {
        self.get_with(path, Consistency::default()).await
    }

    pub async fn get_with(&self, path: &str, c: Consistency) -> Result<(Bytes, Stat)> {
        let (consistency, min_zxid) = self.read_options(c);
        let msg = pb::GetRequest { path: self.full_path(path), consistency, min_zxid };
        let resp = self.call_retrying(|ch| async { self.nodes(ch).get(self.request(msg.clone())).await }).await?;
        self.saw(&resp.header);
        Ok((resp.data, resp.stat.unwrap_or_default()))
    }

    /// Like `get`, also returning the zxid the answer reflects (to watch from zxid + 1).
    pub async fn get_at(&self, path: &str, c: Consistency) -> Result<(Bytes, Stat, u64)> {
        let (consistency, min_zxid) = self.read_options(c);
        let msg = pb::GetRequest { path: self.full_path(path), consistency, min_zxid };
        let resp = self.call_retrying(|ch| async { self.nodes(ch).get(self.request(msg.clone())).await }).await?;
        self.saw(&resp.header);
        let zxid = resp.header.map(|h| h.zxid).unwrap_or(0);
        Ok((resp.data, resp.stat.unwrap_or_default(), zxid))
    }

    /// The node's stat, or `None` if it does not exist; with the zxid the answer reflects.
    pub async fn exists_at(&self, path: &str, c: Consistency) -> Result<(Option<Stat>, u64)> {
        let (consistency, min_zxid) = self.read_options(c);
        let msg = pb::ExistsRequest { path: self.full_path(path), consistency, min_zxid };
        let resp = self.call_retrying(|ch| async { self.nodes(ch).exists(self.request(msg.clone())).await }).await?;
        self.saw(&resp.header);
        let zxid = resp.header.map(|h| h.zxid).unwrap_or(0);
        Ok((if resp.exists { resp.stat } else { None }, zxid))
    }

    pub async fn exists(&self, path: &str) -> Result<Option<Stat>> {
        Ok(self.exists_at(path, Consistency::default()).await?.0)
    }

    pub async fn set(&self, path: &str, data: impl Into<Bytes>, version: Option<i32>) -> Result<Stat> {
        let msg = pb::SetRequest { path: self.full_path(path), data: data.into(), version };
        let id = new_request_id();
        let resp =
            self.call_retrying(|ch| async { self.nodes(ch).set(self.write_request(msg.clone(), id)).await }).await?;
        self.saw(&resp.header);
        Ok(resp.stat.unwrap_or_default())
    }

    pub async fn delete(&self, path: &str, version: Option<i32>) -> Result<()> {
        let msg = pb::DeleteRequest { path: self.full_path(path), version };
        let id = new_request_id();
        let resp =
            self.call_retrying(|ch| async { self.nodes(ch).delete(self.write_request(msg.clone(), id)).await }).await?;
        self.saw(&resp.header);
        Ok(())
    }

    /// One page of children (`page_token` from the previous page; empty for the first).
    pub async fn children_page(
        &self,
        path: &str,
        c: Consistency,
        with_stats: bool,
        limit: u32,
        page_token: &str,
    ) -> Result<Children> {
        let (consistency, min_zxid) = self.read_options(c);
        let msg = pb::GetChildrenRequest {
            path: self.full_path(path),
            consistency,
            min_zxid,
            include_stats: with_stats,
            limit,
            page_token: page_token.to_string(),
        };
        let resp =
            self.call_retrying(|ch| async { self.nodes(ch).get_children(self.request(msg.clone())).await }).await?;
        self.saw(&resp.header);
        Ok(Children {
            names: resp.names,
            stats: resp.stats,
            stat: resp.stat.unwrap_or_default(),
            next_page_token: resp.next_page_token,
            zxid: resp.header.map(|h| h.zxid).unwrap_or(0),
        })
    }

    /// Every child name, sorted, with the parent's stat (all pages).
    pub async fn children_with(&self, path: &str, c: Consistency, with_stats: bool) -> Result<Children> {
        let mut all = self.children_page(path, c, with_stats, 0, "").await?;
        while !all.next_page_token.is_empty() {
            let next = self.children_page(path, c, with_stats, 0, &all.next_page_token).await?;
            all.names.extend(next.names);
            all.stats.extend(next.stats);
            all.stat = next.stat;
            all.zxid = next.zxid;
            all.next_page_token = next.next_page_token;
        }
        Ok(all)
    }

    pub async fn children(&self, path: &str) -> Result<Vec<String>> {
        Ok(self.children_with(path, Consistency::default(), false).await?.names)
    }

    /// Applies the operations all-or-nothing. On failure returns the index of the failed
    /// operation and its error.
    pub async fn multi(&self, ops: &[Op]) -> Result<std::result::Result<Vec<OpResult>, (usize, Error)>> {
        let msg = pb::MultiRequest {
            ops: ops
                .iter()
                .map(|op| pb::Op {
                    op: Some(match op {
                        Op::Create { path, data, options } => {
                            pb::op::Op::Create(create_request(&self.full_path(path), data.clone(), options))
                        }
                        Op::Delete { path, version } => {
                            pb::op::Op::Delete(pb::DeleteRequest { path: self.full_path(path), version: *version })
                        }
                        Op::Set { path, data, version } => pb::op::Op::Set(pb::SetRequest {
                            path: self.full_path(path),
                            data: data.clone(),
                            version: *version,
                        }),
                        Op::Check { path, version } => {
                            pb::op::Op::Check(pb::CheckOp { path: self.full_path(path), version: *version })
                        }
                        Op::CheckFence { path, token } => {
                            pb::op::Op::CheckFence(pb::CheckFenceOp { path: self.full_path(path), token: *token })
                        }
                    }),
                })
                .collect(),
        };
        let id = new_request_id();
        let resp =
            self.call_retrying(|ch| async { self.nodes(ch).multi(self.write_request(msg.clone(), id)).await }).await?;
        self.saw(&resp.header);
        if !resp.succeeded {
            let (i, r) = resp
                .results
                .iter()
                .enumerate()
                .find(|(_, r)| {
                    r.code != pb::ErrorCode::Ok as i32 && r.code != pb::ErrorCode::RuntimeInconsistency as i32
                })
                .ok_or_else(|| Error::Client("failed multi without a failed operation".into()))?;
            let path = match &ops[i] {
                Op::Create { path, .. }
                | Op::Delete { path, .. }
                | Op::Set { path, .. }
                | Op::Check { path, .. }
                | Op::CheckFence { path, .. } => path.clone(),
            };
            return Ok(Err((i, op_error(r.code(), path, r.message.clone()))));
        }
        Ok(Ok(resp
            .results
            .into_iter()
            .zip(ops)
            .map(|(r, op)| match op {
                Op::Create { .. } => {
                    OpResult::Created { path: self.client_path(&r.path), stat: r.stat.unwrap_or_default() }
                }
                Op::Set { .. } => OpResult::Set { stat: r.stat.unwrap_or_default() },
                Op::Delete { .. } => OpResult::Deleted,
                Op::Check { .. } => OpResult::Checked,
                Op::CheckFence { .. } => OpResult::Fenced,
            })
            .collect()))
    }

    /// Brings the server up to the leader's commit point; returns its zxid.
    pub async fn sync(&self, path: &str) -> Result<u64> {
        let msg = pb::SyncRequest { path: self.full_path(path) };
        let resp = self.call_retrying(|ch| async { self.nodes(ch).sync(self.request(msg.clone())).await }).await?;
        self.saw(&resp.header);
        Ok(resp.header.map(|h| h.zxid).unwrap_or(0))
    }

    /// This session's ephemeral nodes under a prefix.
    pub async fn ephemerals(&self, prefix: &str) -> Result<Vec<String>> {
        let (consistency, min_zxid) = self.read_options(Consistency::Linearizable);
        let msg = pb::GetEphemeralsRequest { prefix: self.full_path(prefix), consistency, min_zxid };
        let resp =
            self.call_retrying(|ch| async { self.nodes(ch).get_ephemerals(self.request(msg.clone())).await }).await?;
        self.saw(&resp.header);
        Ok(resp.paths.iter().map(|p| self.client_path(p)).collect())
    }

    pub async fn count_descendants(&self, path: &str) -> Result<u64> {
        let (consistency, min_zxid) = self.read_options(Consistency::Linearizable);
        let msg = pb::CountDescendantsRequest { path: self.full_path(path), consistency, min_zxid };
        let resp = self
            .call_retrying(|ch| async { self.nodes(ch).count_descendants(self.request(msg.clone())).await })
            .await?;
        self.saw(&resp.header);
        Ok(resp.count)
    }

    pub async fn status(&self) -> Result<pb::StatusResponse> {
        self.call(true, |ch| async { ClusterClient::new(ch).status(self.request(pb::StatusRequest {})).await }).await
    }

    pub async fn members(&self) -> Result<Vec<pb::Member>> {
        let r = self
            .call(true, |ch| async { ClusterClient::new(ch).members(self.request(pb::MembersRequest {})).await })
            .await?;
        Ok(r.members)
    }

    /// Runs a cluster change on the leader: if the server asked is not the leader, once more
    /// on the leader it names.
    async fn on_leader<T, F, Fut>(&self, f: F) -> Result<T>
    where
        F: Fn(Channel) -> Fut,
        Fut: std::future::Future<Output = std::result::Result<tonic::Response<T>, Status>>,
    {
        match self.call(false, &f).await {
            Err(Error::NotReady { leader: Some(l), .. }) if !l.address.is_empty() => {
                let ch = self
                    .inner
                    .dial
                    .endpoint(&l.address)?
                    .connect()
                    .await
                    .map_err(|e| Error::Unreachable { message: format!("leader {}: {e}", l.address) })?;
                f(ch).await.map(|r| r.into_inner()).map_err(status_err)
            }
            other => other,
        }
    }

    /// Adds a voter (or, with `observer`, a non-voting member) whose groved already runs.
    pub async fn add_member(
        &self,
        id: u64,
        peer_address: &str,
        client_address: &str,
        observer: bool,
    ) -> Result<Vec<pb::Member>> {
        let msg = pb::AddMemberRequest {
            id,
            role: if observer { pb::MemberRole::ObserverRole } else { pb::MemberRole::Voter } as i32,
            peer_address: peer_address.to_string(),
            client_address: client_address.to_string(),
        };
        let r =
            self.on_leader(|ch| async { ClusterClient::new(ch).add_member(self.request(msg.clone())).await }).await?;
        Ok(r.members)
    }

    pub async fn remove_member(&self, id: u64) -> Result<Vec<pb::Member>> {
        let msg = pb::RemoveMemberRequest { id };
        let r = self.on_leader(|ch| async { ClusterClient::new(ch).remove_member(self.request(msg)).await }).await?;
        Ok(r.members)
    }

    /// Hands leadership to `to` (0: any up-to-date voter); returns the new leader's id.
    pub async fn transfer_leader(&self, to: u64) -> Result<u64> {
        let msg = pb::TransferLeaderRequest { to };
        let r = self.on_leader(|ch| async { ClusterClient::new(ch).transfer_leader(self.request(msg)).await }).await?;
        Ok(r.leader_id)
    }

    pub fn cluster_client(&self) -> ClusterClient<Channel> {
        let i = self.inner.current.load(Ordering::Relaxed) % self.inner.channels.len();
        ClusterClient::new(self.inner.channels[i].clone())
    }

    /// Opens a watch stream on the current server.
    pub async fn watch_stream(&self) -> Result<WatchStream> {
        let n = self.inner.servers.len();
        let start = self.inner.current.load(Ordering::Relaxed);
        let mut last = None;
        for attempt in 0..n {
            let i = (start + attempt) % n;
            match WatchStream::open(self.clone(), self.inner.channels[i].clone()).await {
                Ok(w) => {
                    self.inner.current.store(i, Ordering::Relaxed);
                    return Ok(w);
                }
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or(Error::Unreachable { message: "no servers".into() }))
    }

    /// A node's ACL and stat (needs READ or ADMIN on it; digest hashes are masked unless
    /// the caller has ADMIN).
    pub async fn get_acl(&self, path: &str) -> Result<(Vec<Acl>, Stat)> {
        let (consistency, min_zxid) = self.read_options(Consistency::Linearizable);
        let msg = pb::GetAclRequest { path: self.full_path(path), consistency, min_zxid };
        let resp = self.call_retrying(|ch| async { self.nodes(ch).get_acl(self.request(msg.clone())).await }).await?;
        self.saw(&resp.header);
        Ok((resp.acl, resp.stat.unwrap_or_default()))
    }

    /// Replaces a node's ACL (needs ADMIN). `version` compares against the stat's
    /// `aversion`; returns the new stat.
    pub async fn set_acl(&self, path: &str, acl: Vec<Acl>, version: Option<i32>) -> Result<Stat> {
        let msg = pb::SetAclRequest { path: self.full_path(path), acl, version };
        let id = new_request_id();
        let resp = self
            .call_retrying(|ch| async { self.nodes(ch).set_acl(self.write_request(msg.clone(), id)).await })
            .await?;
        self.saw(&resp.header);
        Ok(resp.stat.unwrap_or_default())
    }

    /// The identities the server sees on this client's requests (zkCli's `whoami`).
    pub async fn who_am_i(&self) -> Result<pb::WhoAmIResponse> {
        self.call_retrying(|ch| async { SessionsClient::new(ch).who_am_i(self.request(pb::WhoAmIRequest {})).await })
            .await
    }

    // ---- sessions ----

    pub fn session(&self) -> Option<Session> {
        self.inner.session.read().unwrap().clone()
    }

    /// The session's current state (a watch: a slow reader sees the latest state only).
    pub fn session_state(&self) -> watch::Receiver<SessionState> {
        self.inner.state.subscribe()
    }

    /// Every state transition from now on (Curator's ConnectionStateListener): CONNECTED,
    /// SUSPENDED, RECONNECTED, LOST, CLOSED. A listener more than 64 transitions behind
    /// gets `Lagged`.
    pub fn state_listener(&self) -> broadcast::Receiver<SessionState> {
        self.inner.transitions.subscribe()
    }

    /// Opens a session with the requested timeout and keeps it alive in the background.
    pub async fn open_session(&self, timeout: Duration) -> Result<Session> {
        let msg =
            pb::OpenSessionRequest { timeout_ms: timeout.as_millis() as i64, session_id: 0, secret: Bytes::new() };
        let id = new_request_id();
        let resp = self
            .call_retrying(|ch| async { SessionsClient::new(ch).open(self.write_request(msg.clone(), id)).await })
            .await?;
        self.saw(&resp.header);
        let session = Session {
            id: resp.session_id,
            secret: resp.secret,
            timeout: Duration::from_millis(resp.timeout_ms.max(0) as u64),
        };
        self.adopt_session(session.clone());
        Ok(session)
    }

    /// Resumes a session (from another client or process) before it expires.
    pub async fn resume_session(&self, id: u64, secret: Bytes) -> Result<Session> {
        let msg = pb::OpenSessionRequest { timeout_ms: 0, session_id: id, secret };
        let resp =
            self.call_retrying(|ch| async { SessionsClient::new(ch).open(self.request(msg.clone())).await }).await?;
        let session = Session {
            id: resp.session_id,
            secret: resp.secret,
            timeout: Duration::from_millis(resp.timeout_ms.max(0) as u64),
        };
        self.adopt_session(session.clone());
        Ok(session)
    }

    fn adopt_session(&self, session: Session) {
        *self.inner.session.write().unwrap() = Some(session.clone());
        self.set_state(SessionState::Connected);
        let task = tokio::spawn(crate::session::keep_alive(Arc::downgrade(&self.inner), session));
        if let Some(old) = self.inner.keepalive.lock().unwrap().replace(task) {
            old.abort();
        }
    }

    /// Closes the session: its ephemerals are deleted now.
    pub async fn close_session(&self) -> Result<()> {
        let Some(s) = self.inner.session.write().unwrap().take() else { return Ok(()) };
        if let Some(task) = self.inner.keepalive.lock().unwrap().take() {
            task.abort();
        }
        let msg = pb::CloseSessionRequest { session_id: s.id, secret: s.secret.clone() };
        let r = self.call(false, |ch| async { SessionsClient::new(ch).close(self.request(msg.clone())).await }).await;
        self.set_state(SessionState::Closed);
        match r {
            Ok(resp) => {
                self.saw(&resp.header);
                Ok(())
            }
            Err(Error::SessionExpired { .. }) | Err(Error::UnknownSession { .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }

    pub(crate) fn set_state(&self, s: SessionState) {
        self.inner.state.send_replace(s);
        let _ = self.inner.transitions.send(s);
    }

    /// The servers ended the session: LOST, then, for a client started with a session
    /// timeout, a new session in the background (RECONNECTED once it is open), as
    /// Curator's client makes a new ZooKeeper session.
    pub(crate) fn session_lost(&self, id: u64) {
        self.drop_session(id);
        self.set_state(SessionState::Lost);
        let Some(timeout) = self.inner.auto_session else { return };
        let weak = Arc::downgrade(&self.inner);
        tokio::spawn(async move {
            let mut pause = Duration::from_millis(50);
            loop {
                let Some(inner) = weak.upgrade() else { return };
                let c = Client { inner };
                if c.session().is_some() {
                    return;
                }
                match c.open_session(timeout).await {
                    Ok(_) => {
                        c.set_state(SessionState::Reconnected);
                        return;
                    }
                    Err(e) => tracing::debug!("opening a new session after losing one: {e}"),
                }
                drop(c);
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(2));
            }
        });
    }

    pub(crate) fn drop_session(&self, id: u64) {
        let mut guard = self.inner.session.write().unwrap();
        if guard.as_ref().is_some_and(|s| s.id == id) {
            *guard = None;
        }
    }

    pub(crate) fn channel_at(&self, attempt: usize) -> (usize, Channel) {
        let n = self.inner.channels.len();
        let i = (self.inner.current.load(Ordering::Relaxed) + attempt) % n;
        (i, self.inner.channels[i].clone())
    }

    pub(crate) fn use_server(&self, i: usize) {
        self.inner.current.store(i, Ordering::Relaxed);
    }

    pub(crate) fn server_count(&self) -> usize {
        self.inner.channels.len()
    }
}

/// A fresh request id: the clock in the high half (so servers can forget old ones in
/// order), random bits in the low half.
pub(crate) fn new_request_id() -> u128 {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis()).unwrap_or(0);
    (now << 64) | u128::from(rand::random::<u64>().max(1))
}

fn create_request(path: &str, data: Bytes, opts: &CreateOptions) -> pb::CreateRequest {
    pb::CreateRequest {
        path: path.to_string(),
        data,
        mode: opts.mode as i32,
        ttl_ms: opts.ttl.map(|t| t.as_millis() as i64).unwrap_or(0),
        create_parents: opts.create_parents,
        acl: opts.acl.clone(),
    }
}

fn op_error(code: pb::ErrorCode, path: String, message: String) -> Error {
    match code {
        pb::ErrorCode::NoNode => Error::NoNode { path },
        pb::ErrorCode::NodeExists => Error::NodeExists { path },
        pb::ErrorCode::BadVersion => Error::BadVersion { path, actual: -1 },
        pb::ErrorCode::NotEmpty => Error::NotEmpty { path },
        pb::ErrorCode::NoChildrenForEphemerals => Error::NoChildrenForEphemerals { path },
        pb::ErrorCode::BadArguments => Error::BadArguments { message },
        pb::ErrorCode::SessionExpired => Error::SessionExpired { message },
        pb::ErrorCode::Fenced => Error::Fenced { message },
        pb::ErrorCode::NoAuth => Error::NoAuth { message },
        pb::ErrorCode::QuotaExceeded => Error::QuotaExceeded { message },
        code => Error::Server { code, message },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connect_strings() {
        let cs = ConnectString::parse("a:1,b:2/app/x").unwrap();
        assert_eq!(cs.servers, vec!["a:1", "b:2"]);
        assert_eq!(cs.chroot.as_deref(), Some("/app/x"));
        let cs = ConnectString::parse("localhost").unwrap();
        assert_eq!(cs.servers, vec!["localhost:7181"]);
        assert_eq!(cs.chroot, None);
        assert!(ConnectString::parse("").is_err());
        assert!(ConnectString::parse("a:1/x//y").is_err());
    }

    #[tokio::test]
    async fn chroot_paths() {
        let c = Client::connect("127.0.0.1:1/app").unwrap();
        assert_eq!(c.full_path("/"), "/app");
        assert_eq!(c.full_path("/x"), "/app/x");
        assert_eq!(c.client_path("/app/x"), "/x");
        assert_eq!(c.client_path("/app"), "/");
    }
}
