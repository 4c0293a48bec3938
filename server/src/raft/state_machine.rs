//! openraft's `RaftStateMachine` over the Grove state machine in `state.redb`.
//!
//! Each applied batch is one redb write transaction holding the changes of every entry and
//! the new applied log id, so the state and the applied index can never disagree.
//! Transactions commit with `Durability::None` (no fsync) and an fsync follows every
//! `SYNC_INTERVAL` and before every snapshot: the Raft log is the durable record, and after
//! a crash openraft re-applies, from the log, whatever the state database lost. That is
//! safe because the log is purged only up to a snapshot, and a snapshot is built from
//! durable state.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use openraft::storage::RaftStateMachine;
use openraft::{EntryPayload, RaftSnapshotBuilder, StorageIOError, StoredMembership};
use redb::{Database, Durability};

use super::snapshot;
use super::types::{Entry, LogId, Snapshot, SnapshotMeta, StorageError, TypeConfig};
use crate::fsm::command::{Applied, CommandResult};
use crate::fsm::{self, ApplyObserver};
use crate::storage::state::StateDb;
use crate::storage::tables::{APPLIED_INDEX_KEY, STATE_META};
use crate::storage::write::WriteTables;

/// Longest time applied state may stay unsynced (it is re-applied from the log after a
/// crash). A durable commit holds redb's write lock through its fsync and stalls applies
/// for tens of milliseconds, so it is kept rare; the log always retains what it covers.
const SYNC_INTERVAL: Duration = Duration::from_secs(5);

const SNAPSHOT_FILE: &str = "snapshot.bin";

fn sm_err(e: impl std::fmt::Display) -> StorageError {
    metrics::counter!("grove_storage_errors_total", "store" => "state").increment(1);
    StorageIOError::write_state_machine(openraft::AnyError::error(e)).into()
}

#[derive(Clone)]
pub struct StateMachineStore {
    db: Arc<Database>,
    dir: PathBuf,
    observer: Arc<dyn ApplyObserver>,
    last_sync: Arc<std::sync::Mutex<Instant>>,
    snapshot_seq: Arc<AtomicU64>,
    snapshot_lock: Arc<snapshot::SnapshotLock>,
}

impl StateMachineStore {
    /// Snapshots live in `dir`. `state` is opened, its tables created.
    pub fn open(state: StateDb, dir: PathBuf, observer: Arc<dyn ApplyObserver>) -> Result<Self, StorageError> {
        std::fs::create_dir_all(&dir).map_err(sm_err)?;
        let lock = Arc::new(snapshot::SnapshotLock::default());
        snapshot::repair(state.database(), &dir.join(SNAPSHOT_FILE), &lock, |last| match last {
            Some(l) => format!("{}-{}-repaired", l.leader_id.term, l.index),
            None => "0-0-repaired".to_string(),
        })?;
        Ok(StateMachineStore {
            db: state.database().clone(),
            dir,
            observer,
            last_sync: Arc::new(std::sync::Mutex::new(Instant::now())),
            snapshot_seq: Arc::new(AtomicU64::new(0)),
            snapshot_lock: lock,
        })
    }

    fn snapshot_path(&self) -> PathBuf {
        self.dir.join(SNAPSHOT_FILE)
    }
}

fn registers(e: &Entry) -> bool {
    matches!(&e.payload, EntryPayload::Normal(cmd)
        if cmd.writes.iter().any(|w| matches!(w.op, crate::fsm::command::Op::RegisterMember { .. })))
}

fn apply_blocking(
    db: &Database,
    entries: &[Entry],
    durable: bool,
    observer: &dyn ApplyObserver,
) -> Result<Vec<Vec<CommandResult>>, StorageError> {
    let started = std::time::Instant::now();
    let mut txn = db.begin_write().map_err(sm_err)?;
    txn.set_durability(if durable { Durability::Immediate } else { Durability::None }).map_err(sm_err)?;
    let mut applied: Vec<Applied> = Vec::with_capacity(entries.len());
    {
        let mut tables = WriteTables::open(&txn).map_err(sm_err)?;
        let mut membership = None;
        for e in entries {
            let zxid = e.log_id.index;
            applied.push(match &e.payload {
                EntryPayload::Blank => Applied::empty(zxid),
                EntryPayload::Normal(cmd) => fsm::apply::apply(&mut tables, zxid, cmd).map_err(|err| {
                    StorageError::from(StorageIOError::apply(e.log_id, openraft::AnyError::error(err)))
                })?,
                EntryPayload::Membership(m) => {
                    membership = Some(StoredMembership::new(Some(e.log_id), m.clone()));
                    // A removed server may come back with a new data directory (--join).
                    let ids: Vec<u64> = m.nodes().map(|(id, _)| *id).collect();
                    fsm::apply::forget_members(&mut tables, &ids).map_err(sm_err)?;
                    Applied::empty(zxid)
                }
            });
        }
        let mut meta = txn.open_table(STATE_META).map_err(sm_err)?;
        let last: Option<LogId> = entries.last().map(|e| e.log_id);
        meta.insert("last_applied", &postcard::to_allocvec(&last).map_err(sm_err)?[..]).map_err(sm_err)?;
        // The same index in a plain form, for readers outside the Raft layer.
        let index = last.map(|l| l.index).unwrap_or(0);
        meta.insert(APPLIED_INDEX_KEY, &index.to_le_bytes()[..]).map_err(sm_err)?;
        if let Some(m) = membership {
            meta.insert("membership", &postcard::to_allocvec(&m).map_err(sm_err)?[..]).map_err(sm_err)?;
        }
    }
    txn.commit().map_err(sm_err)?;
    metrics::histogram!("grove_write_stage_seconds", "stage" => "apply").record(started.elapsed().as_secs_f64());
    observer.applied(&applied);
    Ok(applied.into_iter().map(|a| a.results).collect())
}

impl RaftStateMachine<TypeConfig> for StateMachineStore {
    type SnapshotBuilder = Self;

    async fn applied_state(&mut self) -> Result<(Option<LogId>, super::types::StoredMembership), StorageError> {
        snapshot::read_applied(&self.db)
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<Vec<CommandResult>>, StorageError>
    where
        I: IntoIterator<Item = Entry> + Send,
        I::IntoIter: Send,
    {
        let entries: Vec<Entry> = entries.into_iter().collect();
        if entries.is_empty() {
            return Ok(Vec::new());
        }
        let durable = {
            let mut last = self.last_sync.lock().unwrap();
            if last.elapsed() >= SYNC_INTERVAL {
                *last = Instant::now();
                true
            } else {
                false
            }
        };
        // A member registration (once per server start; the first fixes the cluster id) is
        // made durable at once: peers check a starting server against these records before
        // Raft runs and re-applies the log, so they must not lag it on disk.
        let durable = durable || entries.iter().any(registers);
        let db = self.db.clone();
        let observer = self.observer.clone();
        tokio::task::spawn_blocking(move || apply_blocking(&db, &entries, durable, &*observer)).await.map_err(sm_err)?
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        self.clone()
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<tokio::fs::File>, StorageError> {
        let path = self.dir.join("snapshot.receiving");
        let f = tokio::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)
            .await
            .map_err(sm_err)?;
        Ok(Box::new(f))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta,
        snapshot: Box<tokio::fs::File>,
    ) -> Result<(), StorageError> {
        use std::io::{Seek, SeekFrom};
        let mut file = snapshot.into_std().await;
        let db = self.db.clone();
        let keep = self.snapshot_path();
        let expected = meta.clone();
        let lock = self.snapshot_lock.clone();
        let started = std::time::Instant::now();
        tokio::task::spawn_blocking(move || {
            file.seek(SeekFrom::Start(0)).map_err(sm_err)?;
            snapshot::install(&db, file, &keep, &lock, &expected)
        })
        .await
        .map_err(sm_err)??;
        metrics::counter!("grove_snapshots_installed_total").increment(1);
        metrics::histogram!("grove_snapshot_install_seconds").record(started.elapsed().as_secs_f64());
        let _ = std::fs::remove_file(self.dir.join("snapshot.receiving"));
        self.observer.reset(meta.last_log_id.map(|l| l.index).unwrap_or(0));
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot>, StorageError> {
        let path = self.snapshot_path();
        if !path.exists() {
            return Ok(None);
        }
        let p = path.clone();
        let meta = tokio::task::spawn_blocking(move || snapshot::read_meta(&p)).await.map_err(sm_err)??;
        let file = tokio::fs::File::open(&path).await.map_err(sm_err)?;
        Ok(Some(Snapshot { meta, snapshot: Box::new(file) }))
    }
}

impl RaftSnapshotBuilder<TypeConfig> for StateMachineStore {
    async fn build_snapshot(&mut self) -> Result<Snapshot, StorageError> {
        let db = self.db.clone();
        let path = self.snapshot_path();
        let seq = self.snapshot_seq.fetch_add(1, Ordering::Relaxed);
        let p = path.clone();
        let lock = self.snapshot_lock.clone();
        let started = Instant::now();
        let meta = tokio::task::spawn_blocking(move || {
            snapshot::build(&db, &p, &lock, |last| match last {
                Some(l) => format!("{}-{}-{}", l.leader_id.term, l.index, seq),
                None => format!("0-0-{seq}"),
            })
        })
        .await
        .map_err(sm_err)??;
        let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        metrics::counter!("grove_snapshots_built_total").increment(1);
        metrics::gauge!("grove_snapshot_bytes").set(size as f64);
        metrics::histogram!("grove_snapshot_build_seconds").record(started.elapsed().as_secs_f64());
        tracing::info!(snapshot = %meta.snapshot_id, bytes = size, "built snapshot");
        let file = tokio::fs::File::open(&path).await.map_err(sm_err)?;
        Ok(Snapshot { meta, snapshot: Box::new(file) })
    }
}
