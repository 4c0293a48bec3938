//! The Grove client: a cloneable handle over one or more servers.
//!
//! Requests go to the current server; when it cannot be reached, to the next one. Every
//! write carries a request id (`grove-request-id`) and the servers apply an id once, so a
//! write whose connection broke mid-flight is simply sent again, here or elsewhere, until
//! the request timeout: only then is it reported as `ConnectionLoss` (outcome unknown).
//! Every response's zxid is remembered and passed as `min_zxid` on later reads, so a client
//! that moves between servers always reads its own writes.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use bytes::Bytes;
use grove_proto::v1 as pb;
use grove_proto::v1::nodes_client::NodesClient;
use grove_proto::v1::sessions_client::SessionsClient;
use tokio::sync::{broadcast, watch};
use tonic::transport::Channel;
use tonic::{Request, Status};

use crate::connection::{Connection, Dial, TlsOptions, new_request_id};
use crate::error::{Error, Result};
use crate::retry::RetryPolicy;
use crate::session;
use crate::watch::WatchStream;

pub use crate::types::{
    Acl, Children, ConnectString, Consistency, CreateMode, CreateOptions, Op, OpResult, Session, SessionState, Stat,
};

/// Largest message the client accepts (a page of children with stats, a 1 MiB node).
const MAX_MESSAGE: usize = 16 << 20;

#[derive(Clone)]
pub struct Client {
    pub(crate) conn: Arc<Connection>,
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
            conn: Arc::new(Connection {
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

    fn nodes(&self, ch: Channel) -> NodesClient<Channel> {
        NodesClient::new(ch).max_decoding_message_size(MAX_MESSAGE).max_encoding_message_size(MAX_MESSAGE)
    }

    /// The server currently in use.
    pub fn server(&self) -> &str {
        self.conn.server()
    }

    pub fn servers(&self) -> &[String] {
        self.conn.servers()
    }

    pub fn chroot(&self) -> Option<&str> {
        self.conn.chroot()
    }

    /// The highest zxid this client has seen (in a response header or a watch event).
    pub fn last_zxid(&self) -> u64 {
        self.conn.last_zxid()
    }

    /// The server-side path of a client path (chroot applied).
    pub fn full_path(&self, path: &str) -> String {
        self.conn.full_path(path)
    }

    /// The client path of a server-side path (chroot removed).
    pub fn client_path(&self, path: &str) -> String {
        self.conn.client_path(path)
    }

    /// Adds credentials to every later request of this client and its clones (zkCli's
    /// `addauth`). Only `digest` with `user:password` exists; x509 identities come from
    /// the TLS client certificate. Nothing is checked until a request needs the rights.
    pub fn add_auth(&self, scheme: &str, credential: &str) -> Result<()> {
        self.conn.add_auth(scheme, credential)
    }

    pub(crate) fn saw(&self, header: &Option<pb::ResponseHeader>) {
        self.conn.saw(header)
    }

    pub(crate) fn request<T>(&self, msg: T) -> Request<T> {
        self.conn.request(msg)
    }

    pub(crate) fn write_request<T>(&self, msg: T, id: u128) -> Request<T> {
        self.conn.write_request(msg, id)
    }

    pub(crate) async fn call_retrying<T, F, Fut>(&self, f: F) -> Result<T>
    where
        F: Fn(Channel) -> Fut,
        Fut: std::future::Future<Output = std::result::Result<tonic::Response<T>, Status>>,
    {
        self.conn.call_retrying(f).await
    }

    pub(crate) async fn call<T, F, Fut>(&self, idempotent: bool, f: F) -> Result<T>
    where
        F: Fn(Channel) -> Fut,
        Fut: std::future::Future<Output = std::result::Result<tonic::Response<T>, Status>>,
    {
        self.conn.call(idempotent, f).await
    }

    pub(crate) fn retry_policy(&self) -> &RetryPolicy {
        self.conn.retry_policy()
    }

    pub(crate) fn request_timeout(&self) -> Duration {
        self.conn.request_timeout()
    }

    pub(crate) fn read_options(&self, c: Consistency) -> (i32, u64) {
        self.conn.read_options(c)
    }

    pub(crate) fn channel_at(&self, attempt: usize) -> (usize, Channel) {
        self.conn.channel_at(attempt)
    }

    pub(crate) fn use_server(&self, i: usize) {
        self.conn.use_server(i)
    }

    /// Opens a session with the requested timeout and keeps it alive in the background.
    pub async fn open_session(&self, timeout: Duration) -> Result<Session> {
        session::open(&self.conn, timeout).await
    }

    /// Resumes a session (from another client or process) before it expires.
    pub async fn resume_session(&self, id: u64, secret: Bytes) -> Result<Session> {
        session::resume(&self.conn, id, secret).await
    }

    /// Closes the session: its ephemerals are deleted now.
    pub async fn close_session(&self) -> Result<()> {
        session::close(&self.conn).await
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

    /// Opens a watch stream on the current server.
    pub async fn watch_stream(&self) -> Result<WatchStream> {
        let n = self.conn.servers.len();
        let start = self.conn.current.load(Ordering::Relaxed);
        let mut last = None;
        for attempt in 0..n {
            let i = (start + attempt) % n;
            match WatchStream::open(self.conn.clone(), self.conn.channels[i].clone()).await {
                Ok(w) => {
                    self.conn.current.store(i, Ordering::Relaxed);
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

    pub fn session(&self) -> Option<Session> {
        self.conn.session()
    }

    /// The current session's id (0: none).
    pub fn session_id(&self) -> u64 {
        self.conn.session().map(|s| s.id).unwrap_or(0)
    }

    /// Resolves once the session `id` is no longer this client's: LOST (by the servers'
    /// word or by the client's own deadline, before the servers can expire it), closed, or
    /// replaced. What a holder of a lock or a leadership waits on to stop in time.
    pub async fn session_gone(&self, id: u64) {
        let mut state = self.conn.state.subscribe();
        loop {
            let current = self.session_id();
            let s = *state.borrow_and_update();
            if current != id || matches!(s, SessionState::Lost | SessionState::Closed | SessionState::None) {
                return;
            }
            if state.changed().await.is_err() {
                return;
            }
        }
    }

    /// The session's current state (a watch: a slow reader sees the latest state only).
    pub fn session_state(&self) -> watch::Receiver<SessionState> {
        self.conn.state.subscribe()
    }

    /// Every state transition from now on (Curator's ConnectionStateListener): CONNECTED,
    /// SUSPENDED, RECONNECTED, LOST, CLOSED. A listener more than 64 transitions behind
    /// gets `Lagged`.
    pub fn state_listener(&self) -> broadcast::Receiver<SessionState> {
        self.conn.transitions.subscribe()
    }
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
