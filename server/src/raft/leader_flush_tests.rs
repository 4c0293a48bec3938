//! The leader's own flush runs beside replication, and still counts only once it is done
//! (the openraft patch in vendor/README.md). Three Raft members in one process, each log on a
//! disk whose fsync can be held, joined by an in-process network: what is under test is
//! openraft and the log store, not the transport.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use openraft::error::{InstallSnapshotError, RPCError, RaftError, RemoteError, Unreachable};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse, VoteRequest,
    VoteResponse,
};
use openraft::{AnyError, Config};

use super::log_store::LogStore;
use super::state_machine::StateMachineStore;
use super::test_disk::CrashDisk;
use super::types::{NodeId, PeerNode, Raft, TypeConfig};
use crate::fsm::ApplyObserver;
use crate::fsm::command::{Applied, Command, Op, Write};
use crate::storage::state::StateDb;

struct Quiet;

impl ApplyObserver for Quiet {
    fn applied(&self, _: &[Applied]) {}
    fn reset(&self, _: u64) {}
}

#[derive(Clone, Default)]
struct Router(Arc<Mutex<BTreeMap<NodeId, Raft>>>);

struct Link {
    router: Router,
    target: NodeId,
}

impl Link {
    fn raft<E: std::error::Error>(&self) -> Result<Raft, RPCError<NodeId, PeerNode, E>> {
        let raft = self.router.0.lock().unwrap().get(&self.target).cloned();
        raft.ok_or_else(|| RPCError::Unreachable(Unreachable::new(&AnyError::error("not started"))))
    }
}

impl RaftNetworkFactory<TypeConfig> for Router {
    type Network = Link;

    async fn new_client(&mut self, target: NodeId, _: &PeerNode) -> Link {
        Link { router: self.clone(), target }
    }
}

impl RaftNetwork<TypeConfig> for Link {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        _: RPCOption,
    ) -> Result<AppendEntriesResponse<NodeId>, RPCError<NodeId, PeerNode, RaftError<NodeId>>> {
        let raft = self.raft()?;
        raft.append_entries(rpc).await.map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        _: RPCOption,
    ) -> Result<InstallSnapshotResponse<NodeId>, RPCError<NodeId, PeerNode, RaftError<NodeId, InstallSnapshotError>>>
    {
        let raft = self.raft()?;
        raft.install_snapshot(rpc).await.map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        _: RPCOption,
    ) -> Result<VoteResponse<NodeId>, RPCError<NodeId, PeerNode, RaftError<NodeId>>> {
        let raft = self.raft()?;
        raft.vote(rpc).await.map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
    }
}

struct Member {
    raft: Raft,
    log: LogStore,
    disk: CrashDisk,
    _dir: tempfile::TempDir,
}

fn raft_config() -> Arc<Config> {
    let config =
        Config { heartbeat_interval: 50, election_timeout_min: 300, election_timeout_max: 600, ..Default::default() };
    Arc::new(config.validate().unwrap())
}

/// Starts member `id` on `disk` (its log) and a new, empty state database: a state that
/// lost everything unsynced, which the log re-applies.
async fn start(router: &Router, id: NodeId, disk: CrashDisk) -> Member {
    let dir = tempfile::tempdir().unwrap();
    let log = LogStore::open(redb::Builder::new().create_with_backend(disk.clone()).unwrap(), id).unwrap();
    let state = StateDb::open(&dir.path().join("state.redb"), 1 << 20).unwrap();
    let sm = StateMachineStore::open(state, dir.path().join("snapshots"), Arc::new(Quiet), log.durable()).unwrap();
    let raft = Raft::new(id, raft_config(), router.clone(), log.clone(), sm).await.unwrap();
    router.0.lock().unwrap().insert(id, raft.clone());
    Member { raft, log, disk, _dir: dir }
}

/// Three voters with a leader whose first entry every member has applied.
async fn ensemble() -> (Router, BTreeMap<NodeId, Member>, NodeId) {
    let router = Router::default();
    let mut members = BTreeMap::new();
    for id in 1..=3 {
        members.insert(id, start(&router, id, CrashDisk::default()).await);
    }
    let voters: BTreeMap<NodeId, PeerNode> = (1..=3).map(|id| (id, PeerNode::default())).collect();
    members[&1].raft.initialize(voters).await.unwrap();
    let wait = Some(Duration::from_secs(10));
    let m = members[&1].raft.wait(wait).metrics(|m| m.current_leader.is_some(), "a leader").await.unwrap();
    let leader = m.current_leader.unwrap();
    let last = members[&leader].raft.metrics().borrow().last_log_index;
    for m in members.values() {
        m.raft.wait(wait).applied_index_at_least(last, "the leader's first entry").await.unwrap();
        // The leader's own flush may end after the entry is applied: let every flush end,
        // so a test that holds a disk holds only what comes after.
        assert!(m.log.durable().wait_for(last.unwrap_or(0), Duration::from_secs(10)), "a log never caught up");
    }
    (router, members, leader)
}

async fn shut(members: BTreeMap<NodeId, Member>) {
    for m in members.values() {
        m.disk.hold(false);
    }
    for m in members.values() {
        let _ = m.raft.shutdown().await;
    }
}

fn noop(n: i64) -> Command {
    Command::single(n, Write::by_server(Op::Noop))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_commits_on_the_followers_fsyncs_while_the_leaders_own_is_still_running() {
    let (_router, members, leader) = ensemble().await;
    let ldr = &members[&leader];
    ldr.disk.hold(true);
    let fsyncs = ldr.log.stats().fsyncs.load(Ordering::Relaxed);
    // Unpatched, openraft waits for this flush before it sends the entry to anyone.
    let written = tokio::time::timeout(Duration::from_secs(10), ldr.raft.client_write(noop(1))).await;
    let written = written.expect("the write waited for the leader's own fsync").expect("write");
    assert_eq!(
        ldr.log.stats().fsyncs.load(Ordering::Relaxed),
        fsyncs,
        "the leader's flush of {} was held, yet it finished",
        written.log_id
    );
    let held_at = ldr.log.durable().get();
    assert!(held_at < written.log_id.index, "the leader's log is durable up to {held_at} while its flush is held");
    ldr.disk.hold(false);
    assert!(
        ldr.log.durable().wait_for(written.log_id.index, Duration::from_secs(10)),
        "the leader's log never caught up"
    );
    shut(members).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_leader_counts_its_own_entry_only_once_its_fsync_is_done() {
    let (_router, members, leader) = ensemble().await;
    let follower = *members.keys().find(|id| **id != leader).unwrap();
    // Of the three fsyncs only one, a follower's, can finish: no quorum holds the entry.
    members[&leader].disk.hold(true);
    members[&follower].disk.hold(true);
    let raft = members[&leader].raft.clone();
    let appended = raft.metrics().borrow().last_log_index.unwrap_or(0) + 1;
    let write = tokio::spawn(async move { raft.client_write(noop(2)).await });
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert!(!write.is_finished(), "a write was answered with one fsync of three done");
    let applied = members[&leader].raft.metrics().borrow().last_applied.map_or(0, |l| l.index);
    assert!(applied < appended, "the leader applied entry {appended} with one fsync of three done");
    // The leader's own fsync completes the quorum.
    members[&leader].disk.hold(false);
    let written = tokio::time::timeout(Duration::from_secs(10), write).await.expect("write after the leader's fsync");
    let written = written.unwrap().expect("write");
    assert_eq!(written.log_id.index, appended);
    members[&follower].disk.hold(false);
    shut(members).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn applied_state_is_made_durable_only_once_the_log_holds_what_it_covers() {
    use openraft::storage::{RaftLogStorageExt, RaftStateMachine};
    use openraft::{CommittedLeaderId, EntryPayload, LogId};

    let dir = tempfile::tempdir().unwrap();
    let disk = CrashDisk::default();
    let mut log = LogStore::open(redb::Builder::new().create_with_backend(disk.clone()).unwrap(), 1).unwrap();
    let state = StateDb::open(&dir.path().join("state.redb"), 1 << 20).unwrap();
    let mut sm = StateMachineStore::open(state, dir.path().join("snapshots"), Arc::new(Quiet), log.durable()).unwrap();
    // A member registration is applied durably at once (see `state_machine`).
    let register = Write::by_server(Op::RegisterMember { id: 1, incarnation: 7, boot: 1, cluster_id: 0 });
    let entry = openraft::Entry {
        log_id: LogId::new(CommittedLeaderId::new(1, 1), 1),
        payload: EntryPayload::Normal(Command::single(1, register)),
    };
    disk.hold(true);
    let append = {
        let entry = entry.clone();
        tokio::spawn(async move { log.blocking_append([entry]).await })
    };
    // As on a leader whose followers committed the entry before its own flush ended.
    let apply = tokio::spawn(async move { sm.apply([entry]).await });
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!apply.is_finished(), "the state was made durable while the log's flush of its entry was held");
    disk.hold(false);
    tokio::time::timeout(Duration::from_secs(10), append).await.expect("append").unwrap().unwrap();
    let applied = tokio::time::timeout(Duration::from_secs(10), apply).await.expect("apply").unwrap().unwrap();
    assert_eq!(applied.len(), 1);
}

/// Writes through whichever member leads, until one takes it.
async fn write_anywhere(members: &BTreeMap<NodeId, Member>, n: i64) -> openraft::LogId<NodeId> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        for m in members.values() {
            let write = tokio::time::timeout(Duration::from_secs(2), m.raft.client_write(noop(n)));
            if let Ok(Ok(written)) = write.await {
                return written.log_id;
            }
        }
        assert!(tokio::time::Instant::now() < deadline, "no member took a write");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_that_crashed_before_its_flush_never_reuses_the_log_ids_it_sent() {
    use openraft::RaftLogReader;

    let (router, mut members, leader) = ensemble().await;
    // The leader sends an entry the followers commit, and crashes before its own flush.
    members[&leader].disk.hold(true);
    let sent = tokio::time::timeout(Duration::from_secs(10), members[&leader].raft.client_write(noop(1)))
        .await
        .expect("write")
        .expect("write")
        .log_id;
    let crashed = members.remove(&leader).unwrap();
    router.0.lock().unwrap().remove(&leader);
    let image = crashed.disk.crash_image();
    crashed.disk.hold(false);
    let _ = crashed.raft.shutdown().await;
    // Back at once, before a follower's election timeout: openraft 0.9 would resume the
    // same term as leader and number its next entry like the one it sent.
    members.insert(leader, start(&router, leader, image).await);
    let next = write_anywhere(&members, 2).await;
    assert!(next.index > sent.index, "entry {sent} was numbered again: {next}");
    let wait = Some(Duration::from_secs(10));
    for m in members.values() {
        m.raft.wait(wait).applied_index_at_least(Some(next.index), "the next write").await.unwrap();
    }
    // Every member holds the same log.
    let mut logs = Vec::new();
    for (id, m) in &members {
        let mut log = m.log.clone();
        let entries = log.try_get_log_entries(1..=next.index).await.unwrap();
        let entries: Vec<Vec<u8>> = entries.iter().map(|e| postcard::to_allocvec(e).unwrap()).collect();
        logs.push((*id, entries));
    }
    for (id, entries) in &logs[1..] {
        assert_eq!(entries.len(), logs[0].1.len(), "member {id} holds another number of entries");
        for (i, (a, b)) in logs[0].1.iter().zip(entries).enumerate() {
            assert_eq!(a, b, "members {} and {id} differ at entry {}", logs[0].0, i + 1);
        }
    }
    shut(members).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snapshot_is_built_only_once_the_log_holds_what_it_covers() {
    use openraft::storage::{RaftLogStorageExt, RaftStateMachine};
    use openraft::{CommittedLeaderId, EntryPayload, LogId, RaftSnapshotBuilder};

    let dir = tempfile::tempdir().unwrap();
    let disk = CrashDisk::default();
    let mut log = LogStore::open(redb::Builder::new().create_with_backend(disk.clone()).unwrap(), 1).unwrap();
    let state = StateDb::open(&dir.path().join("state.redb"), 1 << 20).unwrap();
    let mut sm = StateMachineStore::open(state, dir.path().join("snapshots"), Arc::new(Quiet), log.durable()).unwrap();
    let entry =
        openraft::Entry { log_id: LogId::new(CommittedLeaderId::new(1, 1), 1), payload: EntryPayload::Normal(noop(1)) };
    disk.hold(true);
    let append = {
        let entry = entry.clone();
        tokio::spawn(async move { log.blocking_append([entry]).await })
    };
    // Applied without a sync (not a registration), then a snapshot asked for.
    sm.apply([entry]).await.unwrap();
    let mut builder = sm.get_snapshot_builder().await;
    let build = tokio::spawn(async move { builder.build_snapshot().await });
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!build.is_finished(), "a snapshot made the state durable while the log's flush of its entry was held");
    disk.hold(false);
    tokio::time::timeout(Duration::from_secs(10), append).await.expect("append").unwrap().unwrap();
    let snapshot = tokio::time::timeout(Duration::from_secs(10), build).await.expect("build").unwrap().unwrap();
    assert_eq!(snapshot.meta.last_log_id.map(|l| l.index), Some(1));
}
