//! Backups: an online, consistent copy of a member's state (`Cluster.SaveSnapshot`), and a
//! new cluster made from one (`groved --restore FILE`), as `etcdctl snapshot save` and
//! `etcdutl snapshot restore` do.
//!
//! The data of a backup is a snapshot in the format Raft ships between members
//! (`snapshot.rs`), built from one read transaction; `grove_proto::backup` wraps it in the
//! file. A restore never touches a live member: it fills an empty data directory, and each
//! member of the new cluster is restored from the same file with the same `--peers`, so they
//! all start from one state, one log position and one membership, as if they had just
//! installed that snapshot. What belonged to the old cluster's running life is dropped:
//! its sessions (and with them their ephemeral nodes, lock entries and campaigns, exactly as
//! if they had expired), the request results remembered for retries, the member registry
//! and the cluster id (the first member to register fixes a new one).

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use grove_proto::backup::Backup;
use grove_proto::v1 as pb;
use openraft::{CommittedLeaderId, Membership};
use redb::{Database, Durability, TableDefinition};
use tokio::sync::mpsc;

use super::snapshot;
use super::types::{LogId, PeerNode, SnapshotMeta, StorageError, StoredMembership};
use crate::config::Config;
use crate::error::GroveError;
use crate::fsm::acl::Caller;
use crate::fsm::command::{Command, Op, Write as FsmWrite};
use crate::storage::access::{StateTables, Table};
use crate::storage::keys;
use crate::storage::read::ReadTables;
use crate::storage::state::StateDb;
use crate::storage::tables::{ENDED_SESSIONS, REQUESTS, REQUESTS_BY_AGE, REQUESTS_BY_CALLER};
use crate::storage::write::WriteTables;

/// Data bytes per streamed chunk.
const CHUNK: usize = 256 << 10;

fn err(e: impl std::fmt::Display) -> StorageError {
    openraft::StorageIOError::read_snapshot(None, openraft::AnyError::error(e)).into()
}

/// Sends the data as chunks of the stream; fails once the caller has gone.
struct ChunkWriter {
    tx: mpsc::Sender<pb::SnapshotChunk>,
    buf: Vec<u8>,
    crc: crc32fast::Hasher,
    bytes: u64,
}

impl ChunkWriter {
    fn send(&mut self, part: pb::snapshot_chunk::Part) -> std::io::Result<()> {
        self.tx
            .blocking_send(pb::SnapshotChunk { part: Some(part) })
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::BrokenPipe, "the caller went away"))
    }
}

impl Write for ChunkWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= CHUNK {
            self.flush()?;
        }
        Ok(data.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let data = std::mem::take(&mut self.buf);
        self.crc.update(&data);
        self.bytes += data.len() as u64;
        self.send(pb::snapshot_chunk::Part::Data(data.into()))
    }
}

/// What the header says of the server that serves a backup.
pub struct Origin {
    pub server_id: u64,
    pub now_ms: i64,
}

/// Streams a consistent copy of the state to `tx`: header, data, trailer. Blocking: run it
/// on a blocking thread. Writes go on meanwhile (one read transaction).
pub fn save(view: ReadTables, origin: Origin, tx: mpsc::Sender<pb::SnapshotChunk>) -> Result<(), GroveError> {
    copy(view, origin, tx).map_err(GroveError::storage)
}

fn copy(view: ReadTables, origin: Origin, tx: mpsc::Sender<pb::SnapshotChunk>) -> Result<(), StorageError> {
    let (last, membership) = snapshot::applied_in(view.txn())?;
    let voters: BTreeSet<u64> = membership.membership().voter_ids().collect();
    let members = membership
        .membership()
        .nodes()
        .map(|(id, node)| pb::Member {
            id: *id,
            role: if voters.contains(id) { pb::MemberRole::Voter } else { pb::MemberRole::ObserverRole } as i32,
            peer_address: node.peer_addr.clone(),
            client_address: node.client_addr.clone(),
            ..Default::default()
        })
        .collect();
    let header = pb::SnapshotHeader {
        zxid: last.map(|l| l.index).unwrap_or(0),
        term: last.map(|l| l.leader_id.term).unwrap_or(0),
        cluster_id: view.cluster_id().map_err(err)?,
        members,
        created_ms: origin.now_ms,
        server_id: origin.server_id,
        version: env!("CARGO_PKG_VERSION").to_string(),
    };
    let mut out = ChunkWriter { tx, buf: Vec::with_capacity(CHUNK + 4096), crc: crc32fast::Hasher::new(), bytes: 0 };
    out.send(pb::snapshot_chunk::Part::Header(header)).map_err(err)?;
    let meta = SnapshotMeta { last_log_id: last, last_membership: membership, snapshot_id: "backup".into() };
    let (mut out, nodes) = snapshot::write(view.txn(), &meta, out)?;
    out.flush().map_err(err)?;
    let trailer = pb::SnapshotTrailer { bytes: out.bytes, crc32: out.crc.clone().finalize(), nodes };
    out.send(pb::snapshot_chunk::Part::Trailer(trailer)).map_err(err)
}

/// What a restore did.
#[derive(Debug)]
pub struct Restored {
    pub zxid: u64,
    pub nodes: u64,
    pub sessions_dropped: usize,
}

/// Marks a data directory restored from a backup, naming it, so that a restart with the
/// same `--restore` flag (a pod restarted with its arguments) starts the member instead of
/// refusing.
const MARKER: &str = "RESTORED";

fn marker_text(b: &pb::SnapshotTrailer, h: &pb::SnapshotHeader) -> String {
    format!("crc32={:08x} bytes={} zxid={} cluster={:016x}\n", b.crc32, b.bytes, h.zxid, h.cluster_id)
}

/// Makes `config.data_dir` the state of a new member of a cluster restored from `file`.
/// Returns None when the directory was already restored from this file.
/// `peer_addr` is this server's peer address, the membership of a restored standalone node.
pub fn restore(config: &Config, file: &Path, peer_addr: &str) -> anyhow::Result<Option<Restored>> {
    let input = std::fs::File::open(file).with_context(|| format!("opening the backup {}", file.display()))?;
    let mut backup = Backup::open(input).with_context(|| format!("reading the backup {}", file.display()))?;
    let dir = &config.data_dir;
    let marker = marker_text(&backup.trailer, &backup.header);
    let has_state = ["state.redb", "raft-log.redb"].iter().any(|f| dir.join(f).exists());
    if has_state {
        if std::fs::read_to_string(dir.join(MARKER)).is_ok_and(|m| m == marker) {
            return Ok(None);
        }
        anyhow::bail!(
            "--restore makes a new cluster in an empty data directory, and {} already holds a server's state; \
             give each restored member an empty --data-dir (a running member is never restored over)",
            dir.display()
        );
    }
    backup.verify().with_context(|| format!("checking the backup {}", file.display()))?;
    std::fs::create_dir_all(dir)?;
    let staged = dir.join("state.redb.restoring");
    let _ = std::fs::remove_file(&staged);
    let state = StateDb::open(&staged, config.cache_bytes)?;
    let restored = fill(state.database(), &mut backup, &new_membership(config, peer_addr))?;
    drop(state);
    // Renamed only once whole: a restore interrupted before this leaves no state behind.
    std::fs::rename(&staged, dir.join("state.redb"))?;
    std::fs::write(dir.join(MARKER), marker)?;
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(Some(restored))
}

/// The new cluster's membership, the same on every member restored with the same flags:
/// the voters of `--peers` (or this server alone) and the observers of `--observers`, by
/// their peer addresses (client addresses are learned as members register).
fn new_membership(config: &Config, peer_addr: &str) -> Membership<u64, PeerNode> {
    let node = |addr: &str| PeerNode { peer_addr: addr.to_string(), client_addr: String::new() };
    let mut nodes: BTreeMap<u64, PeerNode> = config.peers.iter().map(|(id, a)| (*id, node(a))).collect();
    if nodes.is_empty() {
        nodes.insert(config.id, node(peer_addr));
    }
    let voters: BTreeSet<u64> = nodes.keys().copied().collect();
    nodes.extend(config.observers.iter().map(|(id, a)| (*id, node(a))));
    Membership::new(vec![voters], nodes)
}

fn clear(txn: &redb::WriteTransaction, def: TableDefinition<&[u8], &[u8]>) -> Result<(), StorageError> {
    txn.open_table(def).map_err(err)?.retain(|_, _| false).map_err(err)
}

fn fill(
    db: &Database,
    backup: &mut Backup<std::fs::File>,
    membership: &Membership<u64, PeerNode>,
) -> anyhow::Result<Restored> {
    let mut txn = db.begin_write()?;
    txn.set_durability(Durability::Immediate)?;
    let meta = snapshot::load(&txn, backup.data()?)?;
    let zxid = meta.last_log_id.map(|l| l.index).unwrap_or(0);
    // The log goes on after the backup's last entry, under the new cluster's terms, which
    // start again at 1: the restored position carries term 0 so that every new leader's
    // entries sort after it.
    let last = LogId::new(CommittedLeaderId::new(0, 0), zxid);
    let (sessions_dropped, nodes);
    {
        let mut tables = WriteTables::open(&txn)?;
        let sessions: Vec<u64> = tables.sessions()?.into_iter().map(|(id, _)| id).collect();
        sessions_dropped = sessions.len();
        if !sessions.is_empty() {
            // The fsm's own expiry, so ephemerals, lock entries and campaigns go exactly as
            // they do when a session expires (waiters granted, parents' stats updated).
            let expire = FsmWrite::new(Caller::server(), 0, Op::ExpireSessions { session_ids: sessions });
            let cmd = Command::new(tables.clock()?, vec![Arc::new(expire)]);
            let applied = crate::fsm::apply::apply(&mut tables, zxid, &cmd)?;
            if let Some(Err(e)) = applied.results.first() {
                anyhow::bail!("dropping the backup's sessions: {e}");
            }
        }
        for (id, _) in tables.members()? {
            tables.put(Table::Cluster, &keys::member_key(id), None)?;
        }
        tables.put(Table::Cluster, keys::cluster_key(), None)?;
        let ids: Vec<u64> = membership.nodes().map(|(id, _)| *id).collect();
        crate::fsm::apply::forget_members(&mut tables, &ids)?;
        nodes = tables.node_count()?;
    }
    for def in [ENDED_SESSIONS, REQUESTS, REQUESTS_BY_AGE, REQUESTS_BY_CALLER] {
        clear(&txn, def)?;
    }
    snapshot::set_applied(&txn, Some(last), &StoredMembership::new(Some(last), membership.clone()))?;
    txn.commit()?;
    Ok(Restored { zxid, nodes, sessions_dropped })
}
