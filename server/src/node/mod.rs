//! A running Grove server: Raft, the state database, sessions, watches, and the
//! background work a leader does (expiring sessions, reaping containers and TTL nodes).
//!
//! Handlers call `propose` for writes and `read` for reads; the node decides where the work
//! happens (here, or forwarded to the leader) and how fresh a read must be.

mod addresses;
pub mod clock;
mod forward;
pub use forward::PeerGateway;
pub(crate) use forward::info_from as forward_info;
pub use identity::Start;
mod housekeeping;
mod identity;
mod keepalive;
pub mod limits;
pub mod locks;
mod proposer;
mod status;
pub use status::NodeStatus;
mod read_index;
pub mod sessions;
mod transfer;
pub mod watches;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::sync::watch;

use self::proposer::Refused;
use self::read_index::ReadIndexBatcher;
use self::sessions::SessionTracker;
use self::watches::HubConfig;
use self::watches::hub::WatchHub;
use crate::config::Config;
use crate::error::GroveError;
use crate::fsm::ApplyObserver;
use crate::fsm::command::{Applied, Command, CommandResult, Op, Outcome, Write, new_request_id};
use crate::raft::{Consensus, LogStats, LogStore, NotHere, PeerChannels, PeerNode, RaftStatus, Role};
use crate::storage::access::StateTables;
use crate::storage::read::ReadTables;
use crate::storage::state::StateDb;

/// How fresh a read must be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Consistency {
    Linearizable,
    Sequential,
}

/// A consistent view of the state for one read.
pub struct ReadView {
    pub tables: ReadTables,
    /// The zxid of the last entry reflected in `tables`.
    pub zxid: u64,
}

/// What every response header carries.
#[derive(Debug, Clone, Copy, Default)]
pub struct Header {
    pub zxid: u64,
    pub server_id: u64,
    pub leader_id: u64,
    pub term: u64,
}

pub struct Node {
    pub id: u64,
    pub config: Arc<Config>,
    /// Addresses others use to reach this server.
    pub client_addr: String,
    pub peer_addr: String,
    pub(crate) consensus: Consensus,
    state: StateDb,
    pub hub: Arc<WatchHub>,
    pub sessions: Arc<SessionTracker>,
    pub(crate) lock_waiters: Arc<locks::LockWaiters>,
    /// Lock requests waiting here, bounded per session and in all.
    pub(crate) waiter_slots: Arc<limits::WaiterSlots>,
    /// Requests per second per session.
    pub(crate) request_rate: limits::RateLimiter,
    applied: watch::Receiver<u64>,
    reads: ReadIndexBatcher,
    /// Leadership confirmations that vouch for session renewals.
    leadership: ReadIndexBatcher,
    /// Session renewals on their way to the leader.
    relay: keepalive::SessionRelay,
    proposer: Arc<proposer::Proposer>,
    pub(crate) channels: PeerChannels,
    /// Members this leader removed, with their data directory's incarnation (identity.rs).
    removed: identity::Removed,
    log_stats: Arc<LogStats>,
    /// The leader and term as last seen, for response headers: read on every request, so
    /// kept in atomics rather than read from Raft's metrics.
    leader_id: AtomicU64,
    term: AtomicU64,
    /// Client addresses of other members, learned from them (the membership records only
    /// what the server that added them knew).
    client_addrs: std::sync::Mutex<std::collections::HashMap<u64, String>>,
    /// Set while leadership is handed over: new entries wait, so followers' leases lapse.
    pub(crate) holding: std::sync::atomic::AtomicBool,
    /// The term in which this server last caught up with the commit index (0: none).
    caught_up_in_term: AtomicU64,
    /// The last index of the Raft log when this server started, and whether SEQUENTIAL
    /// reads are past the point where they could go backwards (`sequential_floor`).
    log_end_at_start: u64,
    sequential_ok: std::sync::atomic::AtomicBool,
    /// The time stamped on the entries this server proposes as leader.
    pub(crate) clock: Arc<clock::EntryClock>,
    stop: watch::Sender<bool>,
}

/// Feeds what the state machine applied to the watch hub, the session tracker and the
/// applied-index watch, in that order.
struct Observer {
    hub: Arc<WatchHub>,
    sessions: Arc<SessionTracker>,
    lock_waiters: Arc<locks::LockWaiters>,
    applied: watch::Sender<u64>,
    state: StateDb,
    clock: Arc<clock::EntryClock>,
    /// Whose cluster id the peer messages carry: learned here, as soon as the first
    /// registration is applied (or a snapshot brings it), not a tick later.
    channels: PeerChannels,
}

impl Observer {
    fn learn_cluster_id(&self) {
        if self.channels.cluster_id() == 0
            && let Ok(id) = self.state.read().and_then(|t| t.cluster_id())
        {
            self.channels.set_cluster_id(id);
        }
    }
}

impl ApplyObserver for Observer {
    fn applied(&self, batch: &[Applied]) {
        if let Some(time) = batch.iter().map(|a| a.time).max() {
            self.clock.observe(time);
        }
        self.hub.publish(batch);
        self.sessions.apply(batch);
        self.lock_waiters.applied(batch);
        self.learn_cluster_id();
        if let Some(last) = batch.last() {
            self.applied.send_replace(last.zxid);
        }
    }

    fn reset(&self, zxid: u64) {
        self.hub.reset(zxid);
        match self.state.live_sessions() {
            Ok(live) => self.sessions.load(live),
            Err(e) => tracing::error!("reloading sessions after a snapshot: {e}"),
        }
        match self.state.read() {
            Ok(tables) => {
                self.lock_waiters.reset(&tables);
                self.clock.observe(tables.clock().unwrap_or(0));
            }
            Err(e) => tracing::error!("settling lock waiters after a snapshot: {e}"),
        }
        self.learn_cluster_id();
        self.applied.send_replace(zxid);
    }
}

pub fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

/// A server's data directory, opened, before Raft runs.
pub struct Storage {
    pub state: StateDb,
    pub log: LogStore,
}

impl Storage {
    /// Opens (or creates) `state.redb` and `raft-log.redb` in the data directory.
    pub fn open(config: &Config) -> anyhow::Result<Storage> {
        std::fs::create_dir_all(&config.data_dir)?;
        let state = StateDb::open(&config.data_dir.join("state.redb"), config.cache_bytes)?;
        let log = crate::raft::open_log(config)?;
        Ok(Storage { state, log })
    }

    /// What this server's state says of server `about`, for peers asking while it starts.
    pub fn info(&self, about: u64) -> grove_proto::peer::InfoResponse {
        forward::info_from(&self.state, about)
    }

    /// Refuses to start a server whose data directory is not the one that last ran as its
    /// member (see `identity`); asks the peers, which must be able to reach this server's
    /// peer port meanwhile (`BootingPeer`).
    pub async fn preflight(&self, config: &Config, channels: &PeerChannels) -> anyhow::Result<identity::Start> {
        let tables = self.state.read().ok();
        let restored_from = tables.as_ref().and_then(|t| t.restored_from().ok().flatten());
        let cluster = tables.as_ref().and_then(|t| t.cluster_id().ok()).unwrap_or(0);
        drop(tables);
        let mine = identity::Mine { identity: self.log.identity(), last_index: self.log.last_index(), cluster };
        let start = identity::preflight(config, channels, mine, restored_from).await?;
        // Counted only now: a refused start does not bring an older copy closer to passing.
        self.log.record_start().map_err(|e| anyhow::anyhow!("recording this start: {e}"))?;
        Ok(start)
    }
}

impl Node {
    /// Starts Raft over the opened storage. `client_addr` and `peer_addr` are the addresses
    /// others should use; `channels` reach the peers (with the peer port's TLS identity).
    /// Call `begin` once the peer service serves.
    pub async fn open(
        config: Config,
        client_addr: String,
        peer_addr: String,
        channels: PeerChannels,
        storage: Storage,
    ) -> anyhow::Result<Arc<Node>> {
        let config = Arc::new(config);
        let Storage { state, log } = storage;
        let log_end_at_start = log.last_index();
        let applied_at_start = state.applied_index()?;
        let hub = Arc::new(WatchHub::new(
            HubConfig {
                history_entries: config.watch_history_entries,
                history_bytes: config.watch_history_bytes,
                queue_capacity: config.watch_queue,
                queue_bytes: config.watch_queue_bytes,
                max_watches_per_stream: config.max_watches_per_stream,
                max_watches: if config.max_watches == 0 { usize::MAX } else { config.max_watches },
            },
            applied_at_start,
        ));
        let sessions = Arc::new(SessionTracker::new(state.live_sessions()?));
        let (applied_tx, applied_rx) = watch::channel(applied_at_start);
        let lock_waiters = Arc::new(locks::LockWaiters::default());
        let clock = Arc::new(clock::EntryClock::new(state.read()?.clock()?));
        let observer = Arc::new(Observer {
            hub: hub.clone(),
            sessions: sessions.clone(),
            lock_waiters: lock_waiters.clone(),
            applied: applied_tx,
            state: state.clone(),
            clock: clock.clone(),
            channels: channels.clone(),
        });
        // Known from the start on a restart, so this server's first Raft messages carry it.
        observer.learn_cluster_id();
        let consensus = Consensus::open(&config, log, state.clone(), observer, channels.clone()).await?;
        let log_stats = consensus.log_stats();
        let (stop, _) = watch::channel(false);
        let proposer = proposer::Proposer::new();
        let node = Arc::new(Node {
            id: config.id,
            client_addr,
            peer_addr,
            consensus,
            state,
            hub,
            sessions,
            lock_waiters,
            waiter_slots: limits::WaiterSlots::new(config.max_lock_waiters, config.max_lock_waiters_per_session),
            request_rate: limits::RateLimiter::new(config.max_session_request_rate),
            applied: applied_rx,
            reads: ReadIndexBatcher::reads(),
            leadership: ReadIndexBatcher::leadership(),
            relay: Default::default(),
            proposer,
            channels,
            removed: Default::default(),
            log_stats,
            leader_id: AtomicU64::new(0),
            term: AtomicU64::new(0),
            client_addrs: Default::default(),
            holding: Default::default(),
            caught_up_in_term: AtomicU64::new(0),
            log_end_at_start,
            sequential_ok: Default::default(),
            clock,
            stop,
            config,
        });
        tokio::spawn(proposer::run(node.clone(), node.proposer.clone()));
        Ok(node)
    }

    /// Forms the ensemble on first start (or rejoins it) and starts the background tasks.
    /// An observer does not: the leader adds it.
    pub async fn begin(self: &Arc<Self>) -> anyhow::Result<()> {
        if self.config.join {
            tracing::info!("waiting to be added to an ensemble (--join)");
        } else if !self.config.observers.iter().any(|(id, _)| *id == self.id) {
            self.consensus.bootstrap(self.initial_voters()).await?;
        }
        housekeeping::spawn_all(self);
        Ok(())
    }

    /// The voters to initialize a brand-new ensemble with.
    fn initial_voters(&self) -> BTreeMap<u64, PeerNode> {
        if self.config.peers.is_empty() {
            return BTreeMap::from([(
                self.id,
                PeerNode { peer_addr: self.peer_addr.clone(), client_addr: self.client_addr.clone() },
            )]);
        }
        self.config
            .peers
            .iter()
            .map(|(id, addr)| {
                let node = if *id == self.id {
                    PeerNode { peer_addr: self.peer_addr.clone(), client_addr: self.client_addr.clone() }
                } else {
                    PeerNode { peer_addr: addr.clone(), client_addr: String::new() }
                };
                (*id, node)
            })
            .collect()
    }

    pub fn status_raft(&self) -> RaftStatus {
        self.consensus.status()
    }

    pub fn is_leader(&self) -> bool {
        self.consensus.status().role == Role::Leader
    }

    /// The last applied zxid.
    pub fn applied_zxid(&self) -> u64 {
        *self.applied.borrow()
    }

    pub fn header(&self, zxid: u64) -> Header {
        Header {
            zxid,
            server_id: self.id,
            leader_id: self.leader_id.load(Ordering::Relaxed),
            term: self.term.load(Ordering::Relaxed),
        }
    }

    /// Records what `header` reports (kept current by the leadership task).
    pub(crate) fn set_leadership(&self, leader: Option<u64>, term: u64) {
        self.leader_id.store(leader.unwrap_or(0), Ordering::Relaxed);
        self.term.store(term, Ordering::Relaxed);
    }

    /// Proposes a write and returns its zxid and outcome. Forwards to the leader when this
    /// server is not it; fails with NO_QUORUM when nothing commits within the request
    /// timeout (the write may then still be applied later: its outcome is unknown). A write
    /// with a request id is applied once however often it is retried, here or elsewhere.
    pub async fn propose(self: &Arc<Self>, write: Write) -> Result<(u64, Outcome), GroveError> {
        let timeout = self.config.request_timeout;
        let (zxid, result) = match tokio::time::timeout(timeout, self.propose_write(write)).await {
            Ok(r) => r?,
            Err(_) => {
                return Err(GroveError::NoQuorum {
                    message: format!(
                        "the write was not committed within {} ms; it may still be applied",
                        timeout.as_millis()
                    ),
                    leader: self.leader_hint(),
                });
            }
        };
        result.map(|o| (zxid, o))
    }

    /// Proposes a housekeeping command only if this server is the leader, never forwarding:
    /// expiry and reaping are the leader's decisions, and a server that just lost
    /// leadership must not have its stale decision committed by the next leader.
    pub(crate) async fn propose_as_leader(self: &Arc<Self>, op: Op) -> Result<(), GroveError> {
        let cmd = Command::single(self.clock.stamp(), Write::by_server(op));
        match tokio::time::timeout(self.config.request_timeout, self.consensus.write(cmd)).await {
            Ok(Ok((_, mut results))) => results.pop().unwrap_or(Ok(Outcome::Done)).map(|_| ()),
            Ok(Err(NotHere::Failed(e))) => Err(e),
            Ok(Err(NotHere::NotLeader(_))) => Err(GroveError::not_leader(None)),
            Err(_) => Err(GroveError::NoQuorum { message: "not committed in time".into(), leader: None }),
        }
    }

    /// Proposes on the leader (batched here, or forwarded), retrying while no leader is
    /// known.
    async fn propose_write(self: &Arc<Self>, write: Write) -> Result<(u64, CommandResult), GroveError> {
        let mut write = Arc::new(write);
        loop {
            match self.proposer.submit(write.clone()).await {
                Ok(r) => return Ok(r),
                Err(Refused::Failed(e)) => return Err(e),
                // Proposed here, fate unknown: with a request id it is safe to send again
                // (to whoever leads now); without one, only the caller can decide.
                Err(Refused::Unknown(e)) if write.request_id == 0 => return Err(e),
                Err(Refused::Unknown(_)) => {}
                Err(Refused::NotLeader(Some((id, node)))) if id != self.id => {
                    // Forwarded writes carry an id, so a forward that failed in an unknown
                    // state can be sent again: the leader applies it once.
                    if write.request_id == 0 {
                        let mut w = (*write).clone();
                        w.request_id = new_request_id(now_ms(), rand::random());
                        write = Arc::new(w);
                    }
                    match self.forward_write(id, &node, &write).await {
                        Err(GroveError::NotReady { .. } | GroveError::NoQuorum { .. }) => {}
                        other => return other,
                    }
                }
                Err(Refused::NotLeader(_)) => {}
            }
            // No leader yet, or it just changed: wait a little for the election.
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The read index of a linearizable read: confirmed by the leader with a quorum.
    pub(crate) async fn read_index_once(self: &Arc<Self>) -> Result<u64, GroveError> {
        loop {
            // A read index costs a heartbeat round, which would renew the followers' leases
            // during a hand-over.
            if self.holding.load(Ordering::Relaxed) {
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
            match self.consensus.read_index().await {
                Ok(i) => return Ok(i),
                Err(NotHere::Failed(e)) => return Err(e),
                Err(NotHere::NotLeader(Some((id, node)))) if id != self.id => {
                    match self.forward_read_index(id, &node).await {
                        Err(GroveError::NotReady { .. }) => {}
                        other => return other,
                    }
                }
                Err(NotHere::NotLeader(_)) => {}
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits until this server has applied `zxid`, at most until `deadline`.
    pub async fn wait_applied(&self, zxid: u64, deadline: Instant) -> Result<(), GroveError> {
        if *self.applied.borrow() >= zxid {
            return Ok(());
        }
        let mut rx = self.applied.clone();
        let wait = rx.wait_for(|&z| z >= zxid);
        match tokio::time::timeout_at(deadline.into(), wait).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(_)) => Err(GroveError::internal("the server is shutting down")),
            Err(_) => Err(GroveError::NotReady {
                message: format!(
                    "this server has applied zxid {} and did not reach {zxid} in time",
                    *self.applied.borrow()
                ),
                leader: self.leader_hint(),
            }),
        }
    }

    /// A view of the state as fresh as `consistency` and `min_zxid` demand.
    pub async fn read(self: &Arc<Self>, consistency: Consistency, min_zxid: u64) -> Result<ReadView, GroveError> {
        let deadline = Instant::now() + self.config.request_timeout;
        if min_zxid > 0 {
            self.wait_applied(min_zxid, deadline).await?;
        }
        if consistency == Consistency::Sequential {
            self.sequential_floor(deadline).await?;
        }
        if consistency == Consistency::Linearizable {
            let index = match tokio::time::timeout_at(deadline.into(), self.reads.read_index(self)).await {
                Ok(r) => r?,
                Err(_) => {
                    return Err(GroveError::NoQuorum {
                        message: format!(
                            "leadership not confirmed by a quorum within {} ms",
                            self.config.request_timeout.as_millis()
                        ),
                        leader: self.leader_hint(),
                    });
                }
            };
            self.wait_applied(index, deadline).await?;
        }
        self.view()
    }

    /// Once per run, before the first SEQUENTIAL read: a server restarted after a crash
    /// re-applies what its state database had not yet synced, and until it has, its state
    /// is older than what it may have served before the crash. Everything it applied then
    /// is at most the last entry of its (durable) log when it started, `log_end_at_start`,
    /// and at most the ensemble's commit index: it serves from when it has applied the
    /// smaller of the two (asking the leader for the latter), never going backwards.
    async fn sequential_floor(self: &Arc<Self>, deadline: Instant) -> Result<(), GroveError> {
        if self.sequential_ok.load(Ordering::Relaxed) {
            return Ok(());
        }
        let mut floor = self.log_end_at_start;
        if self.applied_zxid() < floor
            && let Ok(Ok(index)) = tokio::time::timeout_at(deadline.into(), self.reads.read_index(self)).await
        {
            floor = floor.min(index);
        }
        self.wait_applied(floor, deadline).await?;
        self.sequential_ok.store(true, Ordering::Relaxed);
        Ok(())
    }

    /// The current local state.
    pub fn view(&self) -> Result<ReadView, GroveError> {
        let tables = self.state.read()?;
        Ok(ReadView { zxid: tables.applied_index()?, tables })
    }

    /// Checks a session id and secret, and counts the request as a sign of life (relayed
    /// to the leader in the background; only `vouch` confirms a renewal).
    pub fn authenticate(&self, id: u64, secret: &[u8]) -> Result<Duration, GroveError> {
        match self.sessions.authenticate(id, secret) {
            Ok(timeout) => {
                self.sessions.touch(id);
                Ok(timeout)
            }
            Err(check) => Err(self.session_error(id, check)),
        }
    }

    pub(super) fn session_ended(&self, id: u64) -> bool {
        self.state.read().and_then(|t| t.session_ended(id)).unwrap_or(false)
    }

    pub fn log_stats(&self) -> Arc<LogStats> {
        self.log_stats.clone()
    }

    /// Stops background work and Raft.
    pub async fn shutdown(&self) {
        self.stop.send_replace(true);
        self.consensus.shutdown().await;
    }

    pub(crate) fn stopped(&self) -> watch::Receiver<bool> {
        self.stop.subscribe()
    }
}
