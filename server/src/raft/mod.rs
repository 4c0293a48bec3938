//! Everything openraft: the type config, the redb log store, the state machine adapter,
//! the peer network and the peer service. Nothing outside this module names an openraft
//! type, so moving to openraft 0.10 stays local.
//!
//! `Consensus` is the node's handle: propose a command, get a read index, change the
//! membership, read the status, all in Grove's terms.

#![allow(clippy::result_large_err)]

pub mod backup;
pub mod log_store;
pub mod network;
pub mod peer_service;
pub mod snapshot;
pub mod state_machine;
pub mod types;

#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use openraft::error::{CheckIsLeaderError, ClientWriteError, RaftError};
use openraft::{ChangeMembers, Config as RaftConfig, ServerState, SnapshotPolicy};
use tokio::sync::watch;

pub use self::log_store::{Identity, LogStats, LogStore};
pub use self::network::{MAX_PEER_MESSAGE, PeerChannels, PeerNetwork, RequirePeerSecret};
pub use self::peer_service::{BootingPeer, PeerHandler, PeerService, decode_forward_reply};
use self::state_machine::StateMachineStore;
pub use self::types::{NodeId, PeerNode};
use self::types::{Raft, RaftMetrics};
use crate::config::Config;
use crate::error::GroveError;
use crate::fsm::ApplyObserver;
use crate::fsm::command::{Command, CommandResult};
use crate::storage::db::open_database;
use crate::storage::state::StateDb;

/// Why a proposal or read index did not happen here.
#[derive(Debug, Clone)]
pub enum NotHere {
    /// This server is not the leader; the leader is this one if known.
    NotLeader(Option<(NodeId, PeerNode)>),
    Failed(GroveError),
}

/// A server's role as Raft sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Leader,
    Follower,
    Candidate,
    Learner,
    Shutdown,
}

#[derive(Debug, Clone, Default)]
pub struct MemberInfo {
    pub id: NodeId,
    pub voter: bool,
    pub node: PeerNode,
    /// On the leader: the last log index the member is known to store.
    pub matched: Option<u64>,
}

/// A snapshot of the Raft state.
#[derive(Debug, Clone)]
pub struct RaftStatus {
    pub id: NodeId,
    pub role: Role,
    pub leader: Option<NodeId>,
    pub term: u64,
    pub last_log_index: u64,
    pub applied_index: u64,
    pub committed_index: u64,
    pub snapshot_index: u64,
    pub members: Vec<MemberInfo>,
    /// On the leader: ms since a quorum last acknowledged it.
    pub millis_since_quorum_ack: Option<u64>,
    /// Why Raft stopped, if it stopped on an error (a storage failure).
    pub failure: Option<String>,
}

impl RaftStatus {
    pub fn leader_node(&self) -> Option<(NodeId, PeerNode)> {
        let id = self.leader?;
        self.members.iter().find(|m| m.id == id).map(|m| (id, m.node.clone()))
    }

    pub fn is_voter(&self, id: NodeId) -> bool {
        self.members.iter().any(|m| m.id == id && m.voter)
    }
}

pub struct Consensus {
    id: NodeId,
    raft: Raft,
    log: LogStore,
    metrics: watch::Receiver<RaftMetrics>,
}

fn fatal(e: impl std::fmt::Display) -> GroveError {
    GroveError::Internal(format!("raft: {e}"))
}

/// Raft has stopped on this server (a storage failure: a full or failing disk). Clients
/// are sent elsewhere (UNAVAILABLE) with the cause; the server refuses writes from now on
/// rather than risk acknowledging what it could not make durable.
fn stopped(metrics: &watch::Receiver<RaftMetrics>, e: impl std::fmt::Display) -> GroveError {
    let cause = match &metrics.borrow().running_state {
        Err(f) => f.to_string(),
        Ok(()) => e.to_string(),
    };
    GroveError::NotReady {
        message: format!(
            "this server stopped replicating after a storage failure ({cause}); it takes no writes until it is \
             restarted: check its disk"
        ),
        leader: None,
    }
}

impl Consensus {
    /// Starts Raft over the opened log and the state machine over `state`.
    pub async fn open(
        config: &Config,
        log: LogStore,
        state: StateDb,
        observer: Arc<dyn ApplyObserver>,
        channels: PeerChannels,
    ) -> anyhow::Result<Consensus> {
        let dir = &config.data_dir;
        let sm = StateMachineStore::open(state, dir.join("snapshots"), observer)
            .map_err(|e| anyhow::anyhow!("opening the state machine: {e}"))?;
        let raft_config = RaftConfig {
            cluster_name: "grove".into(),
            heartbeat_interval: config.heartbeat.as_millis() as u64,
            election_timeout_min: config.election_timeout_min.as_millis() as u64,
            election_timeout_max: config.election_timeout_max.as_millis() as u64,
            // Time a follower may take to receive one snapshot chunk.
            install_snapshot_timeout: (config.election_timeout_max.as_millis() as u64).max(2_000),
            snapshot_policy: SnapshotPolicy::LogsSinceLast(config.snapshot_entries),
            max_in_snapshot_log_to_keep: config.keep_log_entries,
            // A batch of this many entries of the largest size still fits a peer message;
            // larger ones are split on PayloadTooLarge.
            max_payload_entries: 256,
            snapshot_max_chunk_size: 4 << 20,
            purge_batch_size: 256,
            ..Default::default()
        }
        .validate()?;
        let overrides =
            config.peers.iter().chain(&config.observers).filter(|(id, _)| *id != config.id).cloned().collect();
        let network = PeerNetwork { id: config.id, channels, overrides: Arc::new(overrides) };
        let raft = Raft::new(config.id, Arc::new(raft_config), network, log.clone(), sm).await?;
        let metrics = raft.metrics();
        Ok(Consensus { id: config.id, raft, log, metrics })
    }

    pub fn raft_handle(&self) -> Raft {
        self.raft.clone()
    }

    pub fn log_stats(&self) -> Arc<LogStats> {
        self.log.stats()
    }

    /// The error every write gets once Raft stopped on a storage failure (None: running).
    pub fn failure(&self) -> Option<GroveError> {
        match &self.metrics.borrow().running_state {
            Err(openraft::error::Fatal::Stopped) | Ok(()) => None,
            Err(_) => Some(stopped(&self.metrics, "")),
        }
    }

    /// Which data directory this is, and this start's number.
    pub fn identity(&self) -> Identity {
        self.log.identity()
    }

    /// Forms the ensemble on first start; a no-op once this server has Raft state.
    pub async fn bootstrap(&self, voters: BTreeMap<NodeId, PeerNode>) -> Result<(), GroveError> {
        if self.raft.is_initialized().await.map_err(fatal)? {
            // A restart. A lone voter need not wait out an election timeout to lead again.
            let status = self.status();
            if status.members.iter().filter(|m| m.voter).count() == 1 && status.is_voter(self.id) {
                let _ = self.raft.trigger().elect().await;
            }
            return Ok(());
        }
        match self.raft.initialize(voters).await {
            Ok(()) => Ok(()),
            // Another voter initialized first and its membership already reached us.
            Err(RaftError::APIError(openraft::error::InitializeError::NotAllowed(_))) => Ok(()),
            Err(e) => Err(fatal(e)),
        }
    }

    /// Proposes a command; returns the entry's index and what applying each of its
    /// operations returned.
    pub async fn write(&self, cmd: Command) -> Result<(u64, Vec<CommandResult>), NotHere> {
        let pending = self.submit(cmd).await?;
        pending.await
    }

    /// Hands a command to Raft now (so commands keep the order they were submitted in) and
    /// returns a future that resolves once it is applied.
    pub async fn submit(
        &self,
        cmd: Command,
    ) -> Result<impl std::future::Future<Output = Result<(u64, Vec<CommandResult>), NotHere>> + Send + 'static, NotHere>
    {
        let rx = self.raft.client_write_ff(cmd).await.map_err(|e| NotHere::Failed(stopped(&self.metrics, e)))?;
        let metrics = self.metrics.clone();
        Ok(async move {
            match rx.await {
                Ok(Ok(resp)) => Ok((resp.log_id.index, resp.data)),
                Ok(Err(ClientWriteError::ForwardToLeader(f))) => {
                    Err(NotHere::NotLeader(f.leader_id.zip(f.leader_node)))
                }
                Ok(Err(e)) => Err(NotHere::Failed(GroveError::bad_args("", e.to_string()))),
                Err(_) => Err(NotHere::Failed(stopped(&metrics, "raft stopped before the write was applied"))),
            }
        })
    }

    /// Confirms leadership with a quorum and returns the index a linearizable read must
    /// wait for (ReadIndex).
    pub async fn read_index(&self) -> Result<u64, NotHere> {
        match self.raft.get_read_log_id().await {
            Ok((read, _applied)) => Ok(read.map(|l| l.index).unwrap_or(0)),
            Err(RaftError::APIError(CheckIsLeaderError::ForwardToLeader(f))) => {
                Err(NotHere::NotLeader(f.leader_id.zip(f.leader_node)))
            }
            Err(RaftError::APIError(CheckIsLeaderError::QuorumNotEnough(q))) => {
                Err(NotHere::Failed(GroveError::NoQuorum {
                    message: format!("leadership not confirmed by a quorum (heard from {:?})", q.got),
                    leader: None,
                }))
            }
            Err(RaftError::Fatal(e)) => Err(NotHere::Failed(stopped(&self.metrics, e))),
        }
    }

    /// Runs a membership change, waiting (up to 10 s) while an earlier one is still being
    /// committed: openraft answers a change once its joint configuration is proposed, and
    /// refuses the next until the final configuration commits.
    async fn change<F, Fut>(&self, f: F) -> Result<(), NotHere>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<
                Output = Result<
                    openraft::raft::ClientWriteResponse<types::TypeConfig>,
                    RaftError<NodeId, ClientWriteError<NodeId, PeerNode>>,
                >,
            >,
    {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            match f().await {
                Ok(_) => return Ok(()),
                Err(RaftError::APIError(ClientWriteError::ChangeMembershipError(
                    openraft::error::ChangeMembershipError::InProgress(_),
                ))) if std::time::Instant::now() < deadline => {
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
                Err(RaftError::APIError(ClientWriteError::ForwardToLeader(f))) => {
                    return Err(NotHere::NotLeader(f.leader_id.zip(f.leader_node)));
                }
                Err(RaftError::APIError(e)) => return Err(NotHere::Failed(GroveError::bad_args("", e.to_string()))),
                Err(RaftError::Fatal(e)) => return Err(NotHere::Failed(fatal(e))),
            }
        }
    }

    /// Adds a member: observers become learners; voters are added as learners first, caught
    /// up, then promoted (joint consensus).
    pub async fn add_member(&self, id: NodeId, node: PeerNode, voter: bool) -> Result<(), NotHere> {
        let status = self.status();
        if !status.members.iter().any(|m| m.id == id) {
            self.change(|| self.raft.add_learner(id, node.clone(), true)).await?;
        }
        if voter && !status.is_voter(id) {
            self.change(|| self.raft.change_membership(ChangeMembers::AddVoterIds(BTreeSet::from([id])), false))
                .await?;
        }
        Ok(())
    }

    /// Removes a member (voter or observer).
    pub async fn remove_member(&self, id: NodeId) -> Result<(), NotHere> {
        let status = self.status();
        let Some(member) = status.members.iter().find(|m| m.id == id) else {
            return Err(NotHere::Failed(GroveError::bad_args("", format!("server {id} is not a member"))));
        };
        let change = if member.voter {
            ChangeMembers::RemoveVoters(BTreeSet::from([id]))
        } else {
            ChangeMembers::RemoveNodes(BTreeSet::from([id]))
        };
        self.change(|| self.raft.change_membership(change.clone(), false)).await
    }

    /// Starts an election on this server now (used to hand leadership over).
    pub async fn campaign(&self) -> Result<(), GroveError> {
        self.raft.trigger().elect().await.map_err(fatal)
    }

    /// Stops or resumes this leader's heartbeats, so followers' leases lapse.
    pub fn set_heartbeat(&self, enabled: bool) {
        self.raft.runtime_config().heartbeat(enabled);
    }

    /// Stops or resumes this server's election timer.
    pub fn set_elect(&self, enabled: bool) {
        self.raft.runtime_config().elect(enabled);
    }

    /// How long a follower refuses to vote after hearing from its leader.
    pub fn leader_lease(&self) -> std::time::Duration {
        std::time::Duration::from_millis(self.raft.config().election_timeout_max)
    }

    pub fn status(&self) -> RaftStatus {
        status_of(&self.metrics.borrow(), self.log.committed_index())
    }

    /// A receiver that changes whenever the Raft status does.
    pub fn watch(&self) -> StatusWatch {
        StatusWatch { rx: self.metrics.clone(), log: self.log.clone() }
    }

    pub async fn shutdown(&self) {
        if let Err(e) = self.raft.shutdown().await {
            tracing::warn!("raft shutdown: {e}");
        }
    }
}

/// Opens the Raft log in `data_dir/raft-log.redb`.
pub fn open_log(config: &Config) -> anyhow::Result<LogStore> {
    let log_db = open_database(&config.data_dir.join("raft-log.redb"), 8 << 20)?;
    LogStore::open(log_db).map_err(|e| anyhow::anyhow!("opening the raft log: {e}"))
}

/// Follows Raft status changes.
pub struct StatusWatch {
    rx: watch::Receiver<RaftMetrics>,
    log: LogStore,
}

impl StatusWatch {
    /// Waits for the next change; false once Raft has stopped.
    pub async fn changed(&mut self) -> bool {
        self.rx.changed().await.is_ok()
    }

    pub fn status(&self) -> RaftStatus {
        status_of(&self.rx.borrow(), self.log.committed_index())
    }

    /// Who leads, as `status` reports it, without building the rest: what the loops that
    /// wake on every change of the Raft metrics (several per entry) look at.
    pub fn leadership(&self) -> Leadership {
        let m = self.rx.borrow();
        Leadership { role: role_of(m.state), term: m.current_term, leader: m.current_leader }
    }

    /// The last log index and the last applied index, as `status` reports them.
    pub fn indexes(&self) -> (u64, u64) {
        let m = self.rx.borrow();
        (m.last_log_index.unwrap_or(0), m.last_applied.map(|l| l.index).unwrap_or(0))
    }

    pub fn committed_index(&self) -> u64 {
        self.log.committed_index()
    }
}

/// The part of `RaftStatus` that says who leads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Leadership {
    pub role: Role,
    pub term: u64,
    pub leader: Option<NodeId>,
}

fn role_of(state: ServerState) -> Role {
    match state {
        ServerState::Leader => Role::Leader,
        ServerState::Follower => Role::Follower,
        ServerState::Candidate => Role::Candidate,
        ServerState::Learner => Role::Learner,
        ServerState::Shutdown => Role::Shutdown,
    }
}

fn status_of(m: &RaftMetrics, committed: u64) -> RaftStatus {
    let role = role_of(m.state);
    let membership = m.membership_config.membership();
    let voters: BTreeSet<NodeId> = membership.voter_ids().collect();
    let members = membership
        .nodes()
        .map(|(id, node)| MemberInfo {
            id: *id,
            voter: voters.contains(id),
            node: node.clone(),
            matched: m.replication.as_ref().and_then(|r| r.get(id).cloned().flatten().map(|l| l.index)),
        })
        .collect();
    RaftStatus {
        id: m.id,
        role,
        leader: m.current_leader,
        term: m.current_term,
        last_log_index: m.last_log_index.unwrap_or(0),
        applied_index: m.last_applied.map(|l| l.index).unwrap_or(0),
        committed_index: committed,
        snapshot_index: m.snapshot.map(|l| l.index).unwrap_or(0),
        members,
        millis_since_quorum_ack: m.millis_since_quorum_ack,
        failure: match &m.running_state {
            Err(openraft::error::Fatal::Stopped) | Ok(()) => None,
            Err(e) => Some(e.to_string()),
        },
    }
}

impl LogStore {
    fn committed_index(&self) -> u64 {
        self.committed().map(|l| l.index).unwrap_or(0)
    }
}

/// Entries made durable per fsync so far: (fsyncs, entries, total fsync µs).
pub fn fsync_figures(stats: &LogStats) -> (u64, u64, u64) {
    (
        stats.fsyncs.load(Ordering::Relaxed),
        stats.entries_synced.load(Ordering::Relaxed),
        stats.fsync_micros.load(Ordering::Relaxed),
    )
}
