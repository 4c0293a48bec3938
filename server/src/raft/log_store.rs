//! The Raft log and vote in redb (`raft-log.redb`), with group commit.
//!
//! openraft 0.9 calls `append` once per client write. Committing each call on its own would
//! cost one fsync per write, so `append` only makes the entries readable (an in-memory
//! pending map) and queues them; one writer thread drains everything queued into a single
//! write transaction, commits it with `Durability::Immediate` (fsync), and only then reports
//! the entries flushed. Under load one fsync covers many entries.
//!
//! Every write (append, truncate, purge, vote) goes through the same queue, so writes reach
//! the disk in the order openraft issued them, as it requires. `save_vote` waits for its
//! commit: a vote must be durable before it is acted on, or a restarted node could vote
//! twice in one term.
//!
//! The committed log id (`save_committed`, once per commit advance) gets no transaction of
//! its own: it rides in the next durable one. A transaction of its own could only be
//! non-durable (a lost committed index is re-learned from the leader, or re-established
//! by a new leader's first entry), which redb makes durable with the next durable commit
//! anyway; riding along gives the same guarantee without a second redb commit per entry
//! on every server, on the writer thread the next append waits for.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::ops::{Bound, RangeBounds};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, mpsc};

use openraft::storage::{LogFlushed, RaftLogStorage};
use openraft::{LogState, RaftLogId, RaftLogReader, StorageIOError};
use redb::{Database, Durability, ReadableDatabase, ReadableTable, ReadableTableMetadata};
use tokio::sync::oneshot;

use super::types::{Entry, LogId, StorageError, TypeConfig, Vote};
use crate::fsm::command::LOG_FORMAT;
use crate::storage::tables::{LOG, LOG_META};

/// Key in `log_meta` of the log format (one byte, `LOG_FORMAT`).
const FORMAT_KEY: &str = "format";
/// Keys in `log_meta` of the data directory's incarnation and start count (u64 LE).
const INCARNATION_KEY: &str = "incarnation";
const BOOTS_KEY: &str = "boots";

/// Largest number of queued writes committed in one transaction.
const MAX_GROUP: usize = 4096;

/// Counters of the log's durability work, for metrics and the benchmark report.
#[derive(Debug, Default)]
pub struct LogStats {
    /// Transactions committed (every one with fsync).
    pub fsyncs: AtomicU64,
    /// Entries made durable by those transactions.
    pub entries_synced: AtomicU64,
    /// Total time spent committing durable transactions, in microseconds.
    pub fsync_micros: AtomicU64,
}

#[derive(Clone)]
pub struct LogStore {
    inner: Arc<Inner>,
}

struct Inner {
    db: Arc<Database>,
    ops: Mutex<Option<mpsc::Sender<WriteOp>>>,
    /// Entries handed to `append` and not yet committed, keyed by index. `generation` tells a
    /// committed entry from one re-appended at the same index after a truncate.
    pending: Mutex<BTreeMap<u64, (u64, Entry)>>,
    state: Mutex<LogMeta>,
    stats: Arc<LogStats>,
    identity: Identity,
}

/// Which data directory this is, and how often it started: what the member registry
/// records (see `fsm::members`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Identity {
    /// Random, fixed when the log was created.
    pub incarnation: u64,
    /// This start's number (1 for the first).
    pub boot: u64,
    /// The log held nothing (no vote, no entry) before this start.
    pub fresh: bool,
}

#[derive(Default)]
struct LogMeta {
    last_purged: Option<LogId>,
    last: Option<LogId>,
    vote: Option<Vote>,
    committed: Option<LogId>,
    /// What the table holds for `committed` (as read at open, or last written).
    committed_written: Option<LogId>,
    next_gen: u64,
}

impl LogMeta {
    /// The last index at hand, or where the log was purged to when it holds nothing past it.
    fn last_index(&self) -> u64 {
        self.last.or(self.last_purged).map(|l| l.index).unwrap_or(0)
    }
}

enum WriteOp {
    Append { entries: Vec<Entry>, generation: u64, callback: LogFlushed<TypeConfig> },
    Truncate { since: u64, done: oneshot::Sender<Result<(), String>> },
    Purge { upto: LogId, done: oneshot::Sender<Result<(), String>> },
    SaveVote { vote: Vote, done: oneshot::Sender<Result<(), String>> },
}

fn read_err(e: impl std::fmt::Display) -> StorageError {
    metrics::counter!("grove_storage_errors_total", "store" => "log").increment(1);
    StorageIOError::read_logs(openraft::AnyError::error(e)).into()
}

fn write_err(e: impl std::fmt::Display) -> StorageError {
    metrics::counter!("grove_storage_errors_total", "store" => "log").increment(1);
    StorageIOError::write_logs(openraft::AnyError::error(e)).into()
}

impl LogStore {
    /// Opens the log in an already opened database (a file, or a test backend).
    pub fn open(db: Database) -> Result<LogStore, StorageError> {
        let db = Arc::new(db);
        let mut meta = LogMeta::default();
        let identity;
        {
            let txn = db.begin_write().map_err(write_err)?;
            {
                let log = txn.open_table(LOG).map_err(write_err)?;
                let table = txn.open_table(LOG_META).map_err(write_err)?;
                let get = |key: &str| -> Result<Option<Vec<u8>>, StorageError> {
                    Ok(table.get(key).map_err(read_err)?.map(|v| v.value().to_vec()))
                };
                if let Some(raw) = get("vote")? {
                    meta.vote = Some(postcard::from_bytes(&raw).map_err(read_err)?);
                }
                if let Some(raw) = get("committed")? {
                    meta.committed = postcard::from_bytes(&raw).map_err(read_err)?;
                    meta.committed_written = meta.committed;
                }
                if let Some(raw) = get("last_purged")? {
                    meta.last_purged = Some(postcard::from_bytes(&raw).map_err(read_err)?);
                }
                let used = meta.vote.is_some() || meta.last_purged.is_some() || !log.is_empty().map_err(read_err)?;
                let number = |key: &str| -> Result<Option<u64>, StorageError> {
                    Ok(get(key)?.and_then(|raw| raw.try_into().ok()).map(u64::from_le_bytes))
                };
                identity = Identity {
                    incarnation: number(INCARNATION_KEY)?.unwrap_or_else(|| rand::random::<u64>().max(1)),
                    boot: number(BOOTS_KEY)?.unwrap_or(0) + 1,
                    fresh: !used,
                };
                match get(FORMAT_KEY)? {
                    Some(raw) if raw == [LOG_FORMAT] => {}
                    // A log from before formats were recorded is format 1.
                    None if !used => {}
                    found => {
                        let found = found.and_then(|r| r.first().copied()).unwrap_or(1);
                        return Err(read_err(format!(
                            "raft-log.redb is in log format {found}, and this server reads only format {LOG_FORMAT}: \
                             the data directory was written by another Grove version, and there is no migration \
                             between formats. Start this server on an empty data directory (in an ensemble, \
                             as a new member: docs/operations.md)"
                        )));
                    }
                }
                if let Some((_, raw)) = log.last().map_err(read_err)? {
                    let entry: Entry = postcard::from_bytes(raw.value()).map_err(read_err)?;
                    meta.last = Some(*entry.get_log_id());
                }
            }
            {
                let mut table = txn.open_table(LOG_META).map_err(write_err)?;
                table.insert(FORMAT_KEY, &[LOG_FORMAT][..]).map_err(write_err)?;
                // A new log's incarnation is fixed now; the start is counted by
                // `record_start`, once allowed.
                table.insert(INCARNATION_KEY, &identity.incarnation.to_le_bytes()[..]).map_err(write_err)?;
            }
            txn.commit().map_err(write_err)?;
        }
        let (tx, rx) = mpsc::channel();
        let stats = Arc::new(LogStats::default());
        let durable_last = meta.last_index();
        let inner = Arc::new(Inner {
            db: db.clone(),
            ops: Mutex::new(Some(tx)),
            pending: Mutex::new(BTreeMap::new()),
            state: Mutex::new(meta),
            stats: stats.clone(),
            identity,
        });
        let weak = Arc::downgrade(&inner);
        std::thread::Builder::new()
            .name("grove-log-writer".into())
            .spawn(move || writer_loop(db, rx, weak, stats, durable_last))
            .map_err(write_err)?;
        Ok(LogStore { inner })
    }

    pub fn identity(&self) -> Identity {
        self.inner.identity
    }

    /// The last log index at hand (appended, durable or about to be), or where the log was
    /// purged to (a snapshot install) when it holds nothing past that.
    pub fn last_index(&self) -> u64 {
        self.inner.state.lock().unwrap().last_index()
    }

    /// Counts this start (`Identity::boot`), durably: called once the start is allowed,
    /// so refused starts (see `node::identity`) never raise the count.
    pub fn record_start(&self) -> Result<(), StorageError> {
        let txn = self.inner.db.begin_write().map_err(write_err)?;
        {
            let mut table = txn.open_table(LOG_META).map_err(write_err)?;
            let id = &self.inner.identity;
            table.insert(INCARNATION_KEY, &id.incarnation.to_le_bytes()[..]).map_err(write_err)?;
            table.insert(BOOTS_KEY, &id.boot.to_le_bytes()[..]).map_err(write_err)?;
        }
        txn.commit().map_err(write_err)
    }

    /// The last committed log id saved by openraft.
    pub fn committed(&self) -> Option<LogId> {
        self.inner.state.lock().unwrap().committed
    }

    pub fn stats(&self) -> Arc<LogStats> {
        self.inner.stats.clone()
    }

    fn send(&self, op: WriteOp) -> Result<(), StorageError> {
        let guard = self.inner.ops.lock().unwrap();
        let tx = guard.as_ref().ok_or_else(|| write_err("log store is closed"))?;
        tx.send(op).map_err(|_| write_err("log writer has stopped"))
    }

    async fn send_and_wait(
        &self,
        make: impl FnOnce(oneshot::Sender<Result<(), String>>) -> WriteOp,
    ) -> Result<(), StorageError> {
        let (tx, rx) = oneshot::channel();
        self.send(make(tx))?;
        rx.await.map_err(|_| write_err("log writer has stopped"))?.map_err(write_err)
    }

    /// The log id at `index`, from the pending map or the table.
    fn log_id_at(&self, index: u64) -> Result<Option<LogId>, StorageError> {
        if let Some((_, e)) = self.inner.pending.lock().unwrap().get(&index) {
            return Ok(Some(*e.get_log_id()));
        }
        let txn = self.inner.db.begin_read().map_err(read_err)?;
        let log = txn.open_table(LOG).map_err(read_err)?;
        match log.get(index).map_err(read_err)? {
            Some(raw) => {
                let e: Entry = postcard::from_bytes(raw.value()).map_err(read_err)?;
                Ok(Some(*e.get_log_id()))
            }
            None => Ok(None),
        }
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Dropping the sender lets the writer thread finish what is queued and exit.
        self.ops.lock().unwrap().take();
    }
}

/// The last index the table holds once `batch` is committed on top of `last`.
fn last_after(mut last: u64, batch: &[WriteOp]) -> u64 {
    for op in batch {
        match op {
            WriteOp::Append { entries, .. } => last = entries.last().map_or(last, |e| e.get_log_id().index),
            WriteOp::Truncate { since, .. } => last = last.min(since.saturating_sub(1)),
            WriteOp::Purge { upto, .. } => last = last.max(upto.index),
            WriteOp::SaveVote { .. } => {}
        }
    }
    last
}

/// `durable_last`: the last index the table holds (what the last commit left).
fn writer_loop(
    db: Arc<Database>,
    rx: mpsc::Receiver<WriteOp>,
    inner: std::sync::Weak<Inner>,
    stats: Arc<LogStats>,
    mut durable_last: u64,
) {
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_GROUP {
            match rx.try_recv() {
                Ok(op) => batch.push(op),
                Err(_) => break,
            }
        }
        let inner = inner.upgrade();
        let last = last_after(durable_last, &batch);
        // The committed log id as saved now, written only if the table holds its entry once
        // this batch commits: recovery re-applies the log up to it. (openraft 0.9 saves it
        // only after the entries are flushed, so this holds anyway; it must not depend on
        // the order in which a later version queues its writes.)
        let committed = inner.as_ref().and_then(|i| {
            let st = i.state.lock().unwrap();
            (st.committed != st.committed_written && st.committed.is_none_or(|c| c.index <= last))
                .then_some(st.committed)
        });
        let started = std::time::Instant::now();
        let result = commit_batch(&db, &batch, committed);
        if result.is_err() {
            metrics::counter!("grove_storage_errors_total", "store" => "log").increment(1);
        }
        if let (Ok(()), Some(c), Some(i)) = (&result, committed, &inner) {
            i.state.lock().unwrap().committed_written = c;
        }
        if result.is_ok() {
            durable_last = last;
            let n: usize = batch
                .iter()
                .map(|op| match op {
                    WriteOp::Append { entries, .. } => entries.len(),
                    _ => 0,
                })
                .sum();
            stats.fsyncs.fetch_add(1, Ordering::Relaxed);
            stats.entries_synced.fetch_add(n as u64, Ordering::Relaxed);
            let took = started.elapsed();
            stats.fsync_micros.fetch_add(took.as_micros() as u64, Ordering::Relaxed);
            metrics::histogram!("grove_log_fsync_seconds").record(took.as_secs_f64());
            metrics::histogram!("grove_write_stage_seconds", "stage" => "log_commit").record(took.as_secs_f64());
            metrics::histogram!("grove_log_entries_per_fsync_batch").record(n as f64);
        }
        for op in batch {
            let res = result.clone();
            match op {
                WriteOp::Append { entries, generation, callback } => {
                    if res.is_ok()
                        && let Some(inner) = &inner
                    {
                        let mut pending = inner.pending.lock().unwrap();
                        for e in &entries {
                            let index = e.get_log_id().index;
                            if pending.get(&index).is_some_and(|(g, _)| *g == generation) {
                                pending.remove(&index);
                            }
                        }
                    }
                    callback.log_io_completed(res.map_err(std::io::Error::other));
                }
                WriteOp::Truncate { done, .. } | WriteOp::Purge { done, .. } | WriteOp::SaveVote { done, .. } => {
                    let _ = done.send(res);
                }
            }
        }
    }
}

/// Commits `batch` durably, with the committed log id when it changed (`Some`).
fn commit_batch(db: &Database, batch: &[WriteOp], committed: Option<Option<LogId>>) -> Result<(), String> {
    let s = |e: &dyn std::fmt::Display| e.to_string();
    let mut txn = db.begin_write().map_err(|e| s(&e))?;
    txn.set_durability(Durability::Immediate).map_err(|e| s(&e))?;
    {
        let mut log = txn.open_table(LOG).map_err(|e| s(&e))?;
        let mut meta = txn.open_table(LOG_META).map_err(|e| s(&e))?;
        if let Some(committed) = committed {
            let raw = postcard::to_allocvec(&committed).map_err(|e| s(&e))?;
            meta.insert("committed", &raw[..]).map_err(|e| s(&e))?;
        }
        for op in batch {
            match op {
                WriteOp::Append { entries, .. } => {
                    for e in entries {
                        let raw = postcard::to_allocvec(e).map_err(|e| s(&e))?;
                        log.insert(e.get_log_id().index, &raw[..]).map_err(|e| s(&e))?;
                    }
                }
                WriteOp::Truncate { since, .. } => {
                    log.retain_in(*since.., |_, _| false).map_err(|e| s(&e))?;
                }
                WriteOp::Purge { upto, .. } => {
                    log.retain_in(..=upto.index, |_, _| false).map_err(|e| s(&e))?;
                    let raw = postcard::to_allocvec(upto).map_err(|e| s(&e))?;
                    meta.insert("last_purged", &raw[..]).map_err(|e| s(&e))?;
                }
                WriteOp::SaveVote { vote, .. } => {
                    let raw = postcard::to_allocvec(vote).map_err(|e| s(&e))?;
                    meta.insert("vote", &raw[..]).map_err(|e| s(&e))?;
                }
            }
        }
    }
    txn.commit().map_err(|e| s(&e))
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + Send>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, StorageError> {
        let start = match range.start_bound() {
            Bound::Included(&s) => s,
            Bound::Excluded(&s) => s + 1,
            Bound::Unbounded => 0,
        };
        let end = match range.end_bound() {
            Bound::Included(&e) => e.saturating_add(1),
            Bound::Excluded(&e) => e,
            Bound::Unbounded => u64::MAX,
        };
        if start >= end {
            return Ok(Vec::new());
        }
        // Pending first: an entry leaves the pending map only after it is committed to the
        // table, so reading in this order never misses one.
        let mut out: BTreeMap<u64, Entry> =
            self.inner.pending.lock().unwrap().range(start..end).map(|(k, (_, e))| (*k, e.clone())).collect();
        let expected = end.saturating_sub(start);
        if (out.len() as u64) < expected {
            let txn = self.inner.db.begin_read().map_err(read_err)?;
            let log = txn.open_table(LOG).map_err(read_err)?;
            for item in log.range(start..end).map_err(read_err)? {
                let (k, v) = item.map_err(read_err)?;
                let index = k.value();
                if let std::collections::btree_map::Entry::Vacant(slot) = out.entry(index) {
                    slot.insert(postcard::from_bytes(v.value()).map_err(read_err)?);
                }
            }
        }
        Ok(out.into_values().collect())
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = LogStore;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, StorageError> {
        let st = self.inner.state.lock().unwrap();
        Ok(LogState { last_purged_log_id: st.last_purged, last_log_id: st.last.or(st.last_purged) })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote) -> Result<(), StorageError> {
        self.inner.state.lock().unwrap().vote = Some(*vote);
        let vote = *vote;
        self.send_and_wait(|done| WriteOp::SaveVote { vote, done }).await
    }

    async fn read_vote(&mut self) -> Result<Option<Vote>, StorageError> {
        Ok(self.inner.state.lock().unwrap().vote)
    }

    async fn save_committed(&mut self, committed: Option<LogId>) -> Result<(), StorageError> {
        // Written with the next durable transaction (see the module's comment).
        self.inner.state.lock().unwrap().committed = committed;
        Ok(())
    }

    async fn read_committed(&mut self) -> Result<Option<LogId>, StorageError> {
        Ok(self.inner.state.lock().unwrap().committed)
    }

    async fn append<I>(&mut self, entries: I, callback: LogFlushed<TypeConfig>) -> Result<(), StorageError>
    where
        I: IntoIterator<Item = Entry> + Send,
        I::IntoIter: Send,
    {
        let entries: Vec<Entry> = entries.into_iter().collect();
        let Some(last) = entries.last().map(|e| *e.get_log_id()) else {
            callback.log_io_completed(Ok(()));
            return Ok(());
        };
        let generation = {
            let mut st = self.inner.state.lock().unwrap();
            st.next_gen += 1;
            st.last = Some(last);
            st.next_gen
        };
        {
            let mut pending = self.inner.pending.lock().unwrap();
            for e in &entries {
                pending.insert(e.get_log_id().index, (generation, e.clone()));
            }
        }
        self.send(WriteOp::Append { entries, generation, callback })
    }

    async fn truncate(&mut self, log_id: LogId) -> Result<(), StorageError> {
        let since = log_id.index;
        self.inner.pending.lock().unwrap().retain(|&k, _| k < since);
        let last_purged = self.inner.state.lock().unwrap().last_purged;
        let new_last = match since.checked_sub(1) {
            Some(prev) if last_purged.is_none_or(|p| p.index < prev) => self.log_id_at(prev)?,
            _ => last_purged,
        };
        self.inner.state.lock().unwrap().last = new_last;
        self.send_and_wait(|done| WriteOp::Truncate { since, done }).await
    }

    async fn purge(&mut self, log_id: LogId) -> Result<(), StorageError> {
        {
            let mut st = self.inner.state.lock().unwrap();
            st.last_purged = Some(log_id);
            if st.last.is_none_or(|l| l.index < log_id.index) {
                st.last = Some(log_id);
            }
        }
        self.inner.pending.lock().unwrap().retain(|&k, _| k > log_id.index);
        self.send_and_wait(|done| WriteOp::Purge { upto: log_id, done }).await
    }
}
