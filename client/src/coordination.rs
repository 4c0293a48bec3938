//! The server-side coordination services: `grove.v1.Locks` and `grove.v1.Election`.
//!
//! These are the raw calls; the recipes (`crate::recipes`) wrap them in guards that
//! release on drop. An acquire waits on the server, so it is not bounded by the request
//! timeout; it survives a server failure by asking another server with the same request
//! id, which finds its place in line.

use std::time::{Duration, Instant};

use bytes::Bytes;
use grove_proto::v1 as pb;
use grove_proto::v1::election_client::ElectionClient;
use grove_proto::v1::locks_client::LocksClient;
use tonic::Status;
use tonic::transport::Channel;

use crate::client::{Client, Consistency};
use crate::connection::new_request_id;
use crate::error::{Error, Result};

pub use pb::LockKind;

/// Where elections named without a leading '/' live (as on the server).
pub const ELECTIONS_ROOT: &str = "/elections";

/// What to acquire.
#[derive(Debug, Clone)]
pub struct LockRequest {
    /// One path, or several for a multi-lock (all granted together).
    pub paths: Vec<String>,
    pub kind: LockKind,
    /// Who holds within the session; with `reentrant`, the same owner acquires again
    /// without waiting.
    pub owner: String,
    pub reentrant: bool,
    /// Semaphore: leases wanted, and the semaphore's size.
    pub permits: u32,
    pub max_leases: u32,
    /// `None`: wait until granted (or the future is dropped).
    pub timeout: Option<Duration>,
    /// Stored in the lock node, for whoever describes the lock.
    pub data: Bytes,
}

impl LockRequest {
    pub fn mutex(path: &str) -> LockRequest {
        LockRequest {
            paths: vec![path.to_string()],
            kind: LockKind::Mutex,
            owner: String::new(),
            reentrant: false,
            permits: 1,
            max_leases: 0,
            timeout: None,
            data: Bytes::new(),
        }
    }

    pub fn kind(mut self, kind: LockKind) -> Self {
        self.kind = kind;
        self
    }

    pub fn timeout(mut self, t: Option<Duration>) -> Self {
        self.timeout = t;
        self
    }

    pub fn owner(mut self, owner: &str, reentrant: bool) -> Self {
        self.owner = owner.to_string();
        self.reentrant = reentrant;
        self
    }
}

/// A grant: its fencing token, the nodes that hold it, and the session that owns them (the
/// grant lasts as long as that session).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    pub token: u64,
    pub nodes: Vec<String>,
    pub session: u64,
}

/// One holder or waiter of a lock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockEntry {
    pub node: String,
    pub kind: LockKind,
    pub granted: bool,
    pub token: u64,
    pub session_id: u64,
    pub owner: String,
    pub holds: u32,
    pub data: Bytes,
}

/// An election's leader.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaderInfo {
    pub node: String,
    pub value: Bytes,
    pub token: u64,
    pub session_id: u64,
}

/// The path of an election name (relative to the chroot).
pub fn election_path(name: &str) -> String {
    if name.starts_with('/') { name.to_string() } else { format!("{ELECTIONS_ROOT}/{name}") }
}

fn leader_info(client: &Client, r: pb::LeaderResponse) -> Option<LeaderInfo> {
    r.present.then(|| LeaderInfo {
        node: client.client_path(&r.node),
        value: r.value,
        token: r.token,
        session_id: r.session_id,
    })
}

impl Client {
    fn locks(&self, ch: Channel) -> LocksClient<Channel> {
        LocksClient::new(ch)
    }

    /// Queues for a lock and waits for the grant. Needs a session: the lock nodes are its
    /// ephemerals. Fails with `LockTimeout` when `timeout` passes (the request leaves
    /// nothing behind).
    pub async fn acquire(&self, req: &LockRequest) -> Result<Grant> {
        let msg = pb::AcquireRequest {
            paths: req.paths.iter().map(|p| self.full_path(p)).collect(),
            kind: req.kind as i32,
            owner: req.owner.clone(),
            reentrant: req.reentrant,
            permits: req.permits,
            max_leases: req.max_leases,
            timeout_ms: 0,
            data: req.data.clone(),
        };
        let mut id = new_request_id();
        let resp = self
            .waiting_call(req.timeout, &mut id, |ch, timeout_ms, id| {
                let mut msg = msg.clone();
                msg.timeout_ms = timeout_ms;
                async move { self.locks(ch).acquire(self.write_request(msg, id)).await }
            })
            .await;
        let resp = match resp {
            Ok(resp) => resp,
            Err(e) => {
                if e.is_transient() {
                    let msg = pb::AcquireRequest { timeout_ms: 1, ..msg };
                    self.withdraw_in_background(move |c| {
                        let msg = msg.clone();
                        async move {
                            let resp = c
                                .call_retrying(|ch| async {
                                    c.locks(ch).acquire(c.write_request(msg.clone(), id)).await
                                })
                                .await?;
                            Ok(resp.nodes.iter().map(|n| c.client_path(n)).collect())
                        }
                    });
                }
                return Err(e);
            }
        };
        self.saw(&resp.header);
        Ok(Grant {
            token: resp.token,
            nodes: resp.nodes.iter().map(|n| self.client_path(n)).collect(),
            session: self.session_id(),
        })
    }

    /// Calls an RPC that waits on the server (Acquire, Campaign). The same request id is
    /// sent again after a connection failure, so the retry (on any server) takes the place
    /// in line the first attempt queued; if that place was withdrawn meanwhile (NO_NODE on
    /// a retry), it queues afresh.
    /// `id` is the request id the last attempt sent.
    async fn waiting_call<T, F, Fut>(&self, timeout: Option<Duration>, id: &mut u128, f: F) -> Result<T>
    where
        F: Fn(Channel, i64, u128) -> Fut,
        Fut: std::future::Future<Output = std::result::Result<tonic::Response<T>, Status>>,
    {
        let started = Instant::now();
        let mut retries = 0u32;
        let mut attempt = 0;
        loop {
            let remaining = timeout.map(|t| t.saturating_sub(started.elapsed()));
            let timeout_ms = match remaining {
                Some(r) => (r.as_millis() as i64).max(1),
                None => 0,
            };
            let (i, ch) = self.channel_at(attempt);
            let call = f(ch, timeout_ms, *id);
            // The server answers by the wait's end; allow it the request timeout beyond.
            let outcome = match remaining {
                Some(r) => match tokio::time::timeout(r + self.request_timeout(), call).await {
                    Ok(o) => o,
                    Err(_) => Err(Status::deadline_exceeded("no answer from the server")),
                },
                None => call.await,
            };
            match outcome.map_err(|s| Error::from_status(&s)) {
                Ok(resp) => {
                    self.use_server(i);
                    return Ok(resp.into_inner());
                }
                Err(Error::NoNode { .. }) if retries > 0 => {
                    *id = new_request_id();
                }
                Err(e) if e.is_transient() => {
                    let Some(pause) = self.retry_policy().next_sleep(retries, started.elapsed()) else {
                        return Err(e);
                    };
                    retries += 1;
                    attempt += 1;
                    tokio::time::sleep(pause).await;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// An acquire given up with its outcome unknown may still be queued, and later granted,
    /// with nobody waiting for it. Its request is sent again in the background with the same
    /// id and a wait of 1 ms, until some server answers while the session lives: the answer
    /// is the first attempt's, if it was applied (then its nodes are released), or the
    /// request runs now and the server withdraws it when the wait ends (LOCK_TIMEOUT).
    fn withdraw_in_background<F, Fut>(&self, resend: F)
    where
        F: Fn(Client) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = Result<Vec<String>>> + Send,
    {
        let session = self.session_id();
        if session == 0 {
            return;
        }
        let client = self.clone();
        tokio::spawn(async move {
            let mut pause = Duration::from_millis(200);
            for _ in 0..600 {
                if client.session_id() != session {
                    return; // the session ended: its lock nodes went with it
                }
                match resend(client.clone()).await {
                    Ok(nodes) => {
                        for node in nodes {
                            let _ = client.release(&node).await;
                        }
                        return;
                    }
                    Err(e) if e.is_transient() => {
                        tokio::time::sleep(pause).await;
                        pause = (pause * 2).min(Duration::from_secs(2));
                    }
                    // LOCK_TIMEOUT (withdrawn), NO_NODE, an ended session...: nothing left.
                    Err(_) => return,
                }
            }
        });
    }

    /// Releases a grant (one level of a reentrant hold) or withdraws a waiter. False if the
    /// node was already gone.
    pub async fn release(&self, node: &str) -> Result<bool> {
        let msg = pb::ReleaseRequest { node: self.full_path(node) };
        let id = new_request_id();
        let resp = self
            .call_retrying(|ch| async { self.locks(ch).release(self.write_request(msg.clone(), id)).await })
            .await?;
        self.saw(&resp.header);
        Ok(resp.released)
    }

    /// The holders and waiters of a lock, in line order.
    pub async fn describe_lock(&self, path: &str) -> Result<Vec<LockEntry>> {
        let (consistency, _) = self.read_options(Consistency::Linearizable);
        let msg = pb::DescribeLockRequest { path: self.full_path(path), consistency };
        let resp = self.call_retrying(|ch| async { self.locks(ch).describe(self.request(msg.clone())).await }).await?;
        self.saw(&resp.header);
        Ok(resp
            .entries
            .into_iter()
            .map(|e| LockEntry {
                node: self.client_path(&e.node),
                kind: e.kind(),
                granted: e.granted,
                token: e.token,
                session_id: e.session_id,
                owner: e.owner,
                holds: e.holds,
                data: e.data,
            })
            .collect())
    }

    fn elections(&self, ch: Channel) -> ElectionClient<Channel> {
        ElectionClient::new(ch)
    }

    /// Campaigns and waits until elected; returns the leadership (its node and fencing
    /// token). Needs a session: leadership ends with it.
    pub async fn campaign(&self, name: &str, value: impl Into<Bytes>, timeout: Option<Duration>) -> Result<Grant> {
        let msg =
            pb::CampaignRequest { name: self.full_path(&election_path(name)), value: value.into(), timeout_ms: 0 };
        let mut id = new_request_id();
        let resp = self
            .waiting_call(timeout, &mut id, |ch, timeout_ms, id| {
                let mut msg = msg.clone();
                msg.timeout_ms = timeout_ms;
                async move { self.elections(ch).campaign(self.write_request(msg, id)).await }
            })
            .await;
        let resp = match resp {
            Ok(resp) => resp,
            Err(e) => {
                if e.is_transient() {
                    // As for an acquire: the campaign may still be queued.
                    let msg = pb::CampaignRequest { timeout_ms: 1, ..msg };
                    self.withdraw_in_background(move |c| {
                        let msg = msg.clone();
                        async move {
                            let resp = c
                                .call_retrying(|ch| async {
                                    c.elections(ch).campaign(c.write_request(msg.clone(), id)).await
                                })
                                .await?;
                            Ok(vec![c.client_path(&resp.node)])
                        }
                    });
                }
                return Err(e);
            }
        };
        self.saw(&resp.header);
        Ok(Grant { token: resp.token, nodes: vec![self.client_path(&resp.node)], session: self.session_id() })
    }

    /// Updates the leader's value; `Fenced` if `node` no longer leads.
    pub async fn proclaim(&self, name: &str, node: &str, value: impl Into<Bytes>) -> Result<()> {
        let msg = pb::ProclaimRequest {
            name: self.full_path(&election_path(name)),
            node: self.full_path(node),
            value: value.into(),
        };
        let id = new_request_id();
        let resp = self
            .call_retrying(|ch| async { self.elections(ch).proclaim(self.write_request(msg.clone(), id)).await })
            .await?;
        self.saw(&resp.header);
        Ok(())
    }

    /// Gives leadership up, or stops campaigning.
    pub async fn resign(&self, name: &str, node: &str) -> Result<()> {
        let msg = pb::ResignRequest { name: self.full_path(&election_path(name)), node: self.full_path(node) };
        let id = new_request_id();
        let resp = self
            .call_retrying(|ch| async { self.elections(ch).resign(self.write_request(msg.clone(), id)).await })
            .await?;
        self.saw(&resp.header);
        Ok(())
    }

    /// The current leader, if any.
    pub async fn leader(&self, name: &str) -> Result<Option<LeaderInfo>> {
        let (consistency, _) = self.read_options(Consistency::Linearizable);
        let msg = pb::LeaderRequest { name: self.full_path(&election_path(name)), consistency };
        let resp =
            self.call_retrying(|ch| async { self.elections(ch).leader(self.request(msg.clone())).await }).await?;
        self.saw(&resp.header);
        Ok(leader_info(self, resp))
    }

    /// Follows an election: the current leader first, then each change. Reconnects to
    /// another server by itself when its server fails.
    pub async fn observe_leader(&self, name: &str) -> Result<LeaderObserver> {
        let mut o = LeaderObserver { client: self.clone(), name: name.to_string(), stream: None, last: None };
        o.open().await?;
        Ok(o)
    }
}

/// A stream of an election's leaders (see `Client::observe_leader`).
pub struct LeaderObserver {
    client: Client,
    name: String,
    stream: Option<tonic::Streaming<pb::LeaderResponse>>,
    last: Option<(u64, Option<LeaderInfo>)>,
}

impl LeaderObserver {
    async fn open(&mut self) -> Result<()> {
        let msg = pb::LeaderRequest { name: self.client.full_path(&election_path(&self.name)), consistency: 0 };
        let c = &self.client;
        let stream = c.call_retrying(|ch| async { c.elections(ch).observe(c.request(msg.clone())).await }).await?;
        self.stream = Some(stream);
        Ok(())
    }

    /// The next leader (`None` inside: nobody leads), with the zxid of the change. After a
    /// reconnect the current leader is reported again only if it differs from the last one
    /// reported; changes that came and went while disconnected are not replayed.
    pub async fn next(&mut self) -> Result<(u64, Option<LeaderInfo>)> {
        loop {
            let msg = match self.stream.as_mut() {
                Some(s) => s.message().await,
                None => Ok(None),
            };
            match msg {
                Ok(Some(r)) => {
                    let zxid = r.header.as_ref().map(|h| h.zxid).unwrap_or(0);
                    self.client.saw(&r.header);
                    let leader = leader_info(&self.client, r);
                    if let Some((last_zxid, last)) = &self.last
                        && (*last == leader || zxid < *last_zxid)
                    {
                        continue;
                    }
                    self.last = Some((zxid, leader.clone()));
                    return Ok((zxid, leader));
                }
                Ok(None) | Err(_) => {
                    self.stream = None;
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    self.open().await?;
                }
            }
        }
    }
}
