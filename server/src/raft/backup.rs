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
//!
//! The new cluster's log goes on `ZXID_GAP` past the backup's last entry: the old cluster
//! usually went on writing after the backup, and zxids it handed out since (in clients'
//! `min_zxid`, in fencing tokens a guarded resource has seen, in session ids) must not be
//! handed out again with another meaning. etcd's `snapshot restore --bump-revision` does
//! the same for revisions.
//!
//! Every restored member records which backup and which membership it was made from
//! (`keys::restored_key`); peers compare it before Raft starts (`node::identity`), so
//! members restored from different files, or a fresh server started beside restored ones
//! without `--restore`, are refused instead of silently diverging.

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

use super::snapshot::{self, Rewrite};
use super::types::{LogId, PeerNode, SnapshotMeta, StorageError, StoredMembership};
use crate::config::Config;
use crate::error::GroveError;
use crate::fsm::acl::Caller;
use crate::fsm::command::{Command, Op, Write as FsmWrite};
use crate::fsm::session::SessionRecord;
use crate::storage::access::{StateTables, Table};
use crate::storage::keys;
use crate::storage::read::ReadTables;
use crate::storage::state::StateDb;
use crate::storage::tables::{ENDED_SESSIONS, REQUESTS, REQUESTS_BY_AGE, REQUESTS_BY_CALLER};
use crate::storage::write::WriteTables;

/// Data bytes per streamed chunk (well under a gRPC message's 4 MiB default limit, however
/// large a node's data).
const CHUNK: usize = 256 << 10;
/// How long a client may stop reading a backup stream before it is ended: a stalled copy
/// holds a read transaction (redb cannot reuse the pages it sees) and a blocking thread.
const STALL: std::time::Duration = std::time::Duration::from_secs(60);
/// Zxids the new cluster skips after the backup's (see the module's comment).
pub const ZXID_GAP: u64 = 1_000_000_000;

fn err(e: impl std::fmt::Display) -> StorageError {
    openraft::StorageIOError::read_snapshot(None, openraft::AnyError::error(e)).into()
}

/// Sends the data as chunks of the stream; fails once the caller has gone or stalled.
struct ChunkWriter {
    tx: mpsc::Sender<pb::SnapshotChunk>,
    runtime: tokio::runtime::Handle,
    buf: Vec<u8>,
    crc: crc32fast::Hasher,
    bytes: u64,
}

impl ChunkWriter {
    fn send(&mut self, part: pb::snapshot_chunk::Part) -> std::io::Result<()> {
        let send = tokio::time::timeout(STALL, self.tx.send(pb::SnapshotChunk { part: Some(part) }));
        match self.runtime.block_on(send) {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) => Err(std::io::Error::new(std::io::ErrorKind::BrokenPipe, "the caller went away")),
            Err(_) => Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!("the caller read nothing for {} s", STALL.as_secs()),
            )),
        }
    }
}

impl Write for ChunkWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        // At most a chunk's worth at a time, so one large value never makes a chunk larger.
        let n = data.len().min(CHUNK - self.buf.len());
        self.buf.extend_from_slice(&data[..n]);
        if self.buf.len() >= CHUNK {
            self.flush()?;
        }
        Ok(n)
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
/// on a blocking thread of `runtime`. Writes go on meanwhile (one read transaction). The
/// sessions' secrets are left out (a backup file must not let its reader act as a live
/// session of the cluster it came from; a restore drops sessions anyway).
pub fn save(
    view: ReadTables,
    origin: Origin,
    tx: mpsc::Sender<pb::SnapshotChunk>,
    runtime: tokio::runtime::Handle,
) -> Result<(), GroveError> {
    copy(view, origin, tx, runtime).map_err(GroveError::storage)
}

fn copy(
    view: ReadTables,
    origin: Origin,
    tx: mpsc::Sender<pb::SnapshotChunk>,
    runtime: tokio::runtime::Handle,
) -> Result<(), StorageError> {
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
    let header_raw = prost::Message::encode_to_vec(&header);
    let header_crc32 = crc32fast::hash(&header_raw);
    let crc = grove_proto::backup::data_hasher(&header_raw);
    let mut out = ChunkWriter { tx, runtime, buf: Vec::with_capacity(CHUNK), crc, bytes: 0 };
    out.send(pb::snapshot_chunk::Part::Header(header)).map_err(err)?;
    let meta = SnapshotMeta { last_log_id: last, last_membership: membership, snapshot_id: "backup".into() };
    // Secrets stay behind: sessions' (zeroed) and the results remembered for retries (an
    // OpenSession's result holds its secret; a restore drops them anyway).
    let (mut out, nodes) = snapshot::write(view.txn(), &meta, out, |tag, value| match tag {
        snapshot::SESSIONS_TAG => match SessionRecord::decode(value) {
            Ok(r) => Rewrite::Replace(SessionRecord { secret: [0; 16], ..r }.encode()),
            Err(_) => Rewrite::Keep,
        },
        t if snapshot::REQUEST_TAGS.contains(&t) => Rewrite::Skip,
        _ => Rewrite::Keep,
    })?;
    out.flush().map_err(err)?;
    let trailer = pb::SnapshotTrailer { bytes: out.bytes, crc32: out.crc.clone().finalize(), nodes, header_crc32 };
    out.send(pb::snapshot_chunk::Part::Trailer(trailer)).map_err(err)
}

/// What a restore did.
#[derive(Debug)]
pub struct Restored {
    pub zxid: u64,
    pub nodes: u64,
    pub sessions_dropped: usize,
}

/// Marks a data directory restored from a backup, so that a restart with the same
/// `--restore` flag (a pod restarted with its arguments) starts the member instead of
/// refusing, even once the file is gone.
const MARKER: &str = "RESTORED";
/// Where the state is filled before it is renamed into place.
const STAGED: &str = "state.redb.restoring";

/// Names a backup and the membership a cluster was restored with: what its members agree on.
fn identity(b: &pb::SnapshotTrailer, h: &pb::SnapshotHeader, membership: &Membership<u64, PeerNode>) -> String {
    let members: Vec<String> = membership.nodes().map(|(id, n)| format!("{id}={}", n.peer_addr)).collect();
    format!(
        "crc32={:08x} bytes={} zxid={} cluster={:016x} members={}",
        b.crc32,
        b.bytes,
        h.zxid,
        h.cluster_id,
        members.join(",")
    )
}

/// Makes `config.data_dir` the state of a new member of a cluster restored from `file`.
/// Returns None when the directory was already restored (the restart of a restored member).
/// `peer_addr` is this server's peer address, the membership of a restored standalone node.
pub fn restore(config: &Config, file: &Path, peer_addr: &str) -> anyhow::Result<Option<Restored>> {
    let dir = &config.data_dir;
    let marker = dir.join(MARKER);
    // Checked before the file is even opened: a restored member restarts whether or not
    // its backup is still there (a schedule's retention may have removed it).
    if dir.join("state.redb").exists()
        && let Ok(mine) = std::fs::read_to_string(&marker)
    {
        let Ok(backup) = std::fs::File::open(file).map_err(anyhow::Error::from).and_then(|f| Ok(Backup::open(f)?))
        else {
            tracing::warn!(backup = %file.display(), "the backup this member was restored from is gone: starting");
            return Ok(None);
        };
        let wanted = identity(&backup.trailer, &backup.header, &new_membership(config, peer_addr));
        if mine.trim_end() != wanted {
            anyhow::bail!(
                "{} was already restored from another backup or with other members ({}); --restore makes a new \
                 cluster in an empty data directory",
                dir.display(),
                mine.trim_end()
            );
        }
        return Ok(None);
    }
    let leftovers: Vec<String> = match std::fs::read_dir(dir) {
        Ok(entries) => entries
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|name| name != MARKER && name != STAGED)
            .collect(),
        Err(_) => Vec::new(),
    };
    if !leftovers.is_empty() {
        anyhow::bail!(
            "--restore makes a new cluster in an empty data directory, and {} holds {}; give each restored \
             member an empty --data-dir (a running member is never restored over)",
            dir.display(),
            leftovers.join(", ")
        );
    }
    let input = std::fs::File::open(file).with_context(|| format!("opening the backup {}", file.display()))?;
    let mut backup = Backup::open(input).with_context(|| format!("reading the backup {}", file.display()))?;
    backup.verify().with_context(|| format!("checking the backup {}", file.display()))?;
    let membership = new_membership(config, peer_addr);
    let restored_from = identity(&backup.trailer, &backup.header, &membership);
    std::fs::create_dir_all(dir)?;
    let staged = dir.join(STAGED);
    let _ = std::fs::remove_file(&staged);
    let state = StateDb::open(&staged, config.cache_bytes)?;
    let restored = fill(state.database(), &mut backup, &membership, &restored_from)?;
    drop(state);
    // The marker first, then the state under its name: a stop in between leaves a marker
    // without state, which the next start restores again; never state without a marker,
    // which would be refused as a stranger's.
    std::fs::write(&marker, format!("{restored_from}\n"))?;
    std::fs::File::open(&marker)?.sync_all()?;
    std::fs::rename(&staged, dir.join("state.redb"))?;
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
    restored_from: &str,
) -> anyhow::Result<Restored> {
    let mut txn = db.begin_write()?;
    txn.set_durability(Durability::Immediate)?;
    let meta = snapshot::load(&txn, backup.data()?)?;
    let zxid = meta.last_log_id.map(|l| l.index).unwrap_or(0);
    if zxid != backup.header.zxid {
        anyhow::bail!("the backup's header says zxid {}, its data {zxid}: the file is corrupt", backup.header.zxid);
    }
    // The log goes on ZXID_GAP after the backup's last entry, under the new cluster's
    // terms, which start again at 1: the restored position carries term 0 so that every
    // new leader's entries sort after it.
    let last = LogId::new(CommittedLeaderId::new(0, 0), zxid + ZXID_GAP);
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
        tables.put(Table::Cluster, keys::restored_key(), Some(restored_from.as_bytes()))?;
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
