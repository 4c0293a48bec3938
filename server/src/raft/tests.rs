//! openraft's storage conformance suite on the redb log store and state machine.

use std::sync::Arc;

use openraft::testing::{StoreBuilder, Suite};

use super::log_store::LogStore;
use super::state_machine::StateMachineStore;
use super::types::{StorageError, TypeConfig};
use crate::fsm::ApplyObserver;
use crate::fsm::command::Applied;
use crate::storage::db::open_database;
use crate::storage::state::StateDb;

struct Quiet;

impl ApplyObserver for Quiet {
    fn applied(&self, _: &[Applied]) {}
    fn reset(&self, _: u64) {}
}

struct Builder;

impl StoreBuilder<TypeConfig, LogStore, StateMachineStore, tempfile::TempDir> for Builder {
    async fn build(&self) -> Result<(tempfile::TempDir, LogStore, StateMachineStore), StorageError> {
        let dir = tempfile::tempdir().expect("temp dir");
        let log = LogStore::open(open_database(&dir.path().join("raft-log.redb"), 1 << 20).unwrap())?;
        let state = StateDb::open(&dir.path().join("state.redb"), 1 << 20).unwrap();
        let sm = StateMachineStore::open(state, dir.path().join("snapshots"), Arc::new(Quiet))?;
        Ok((dir, log, sm))
    }
}

#[test]
fn openraft_storage_suite() {
    Suite::test_all(Builder).unwrap();
}

// ---- durability at fsync boundaries ----

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use openraft::storage::{RaftLogStorage, RaftLogStorageExt};
use openraft::{CommittedLeaderId, EntryPayload, LogId, RaftLogReader, Vote};

use crate::fsm::command::{Command, Op, Write};

/// A disk that loses everything written since the last `sync_data` when it "crashes", as
/// redb's own crash-consistency tests model power loss.
#[derive(Debug, Clone, Default)]
struct CrashDisk(Arc<Mutex<Images>>);

#[derive(Debug, Default)]
struct Images {
    live: Vec<u8>,
    durable: Vec<u8>,
}

impl CrashDisk {
    /// The disk as a power cut now would leave it.
    fn crash_image(&self) -> CrashDisk {
        let durable = self.0.lock().unwrap().durable.clone();
        CrashDisk(Arc::new(Mutex::new(Images { live: durable.clone(), durable })))
    }
}

impl redb::StorageBackend for CrashDisk {
    fn len(&self) -> std::io::Result<u64> {
        Ok(self.0.lock().unwrap().live.len() as u64)
    }
    fn read(&self, offset: u64, out: &mut [u8]) -> std::io::Result<()> {
        let d = self.0.lock().unwrap();
        let (start, end) = (offset as usize, offset as usize + out.len());
        if end > d.live.len() {
            return Err(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "read past the end"));
        }
        out.copy_from_slice(&d.live[start..end]);
        Ok(())
    }
    fn set_len(&self, len: u64) -> std::io::Result<()> {
        self.0.lock().unwrap().live.resize(len as usize, 0);
        Ok(())
    }
    fn sync_data(&self) -> std::io::Result<()> {
        let mut d = self.0.lock().unwrap();
        d.durable = d.live.clone();
        Ok(())
    }
    fn write(&self, offset: u64, data: &[u8]) -> std::io::Result<()> {
        let mut d = self.0.lock().unwrap();
        let end = offset as usize + data.len();
        if end > d.live.len() {
            d.live.resize(end, 0);
        }
        d.live[offset as usize..end].copy_from_slice(data);
        Ok(())
    }
}

fn entry(term: u64, index: u64) -> super::types::Entry {
    openraft::Entry {
        log_id: LogId::new(CommittedLeaderId::new(term, 1), index),
        payload: EntryPayload::Normal(Command::single(index as i64, Write::by_server(Op::Noop))),
    }
}

fn open_log(disk: &CrashDisk) -> LogStore {
    let db = redb::Builder::new().create_with_backend(disk.clone()).unwrap();
    LogStore::open(db).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_at_any_moment_loses_no_acknowledged_entry_or_vote() {
    for round in 0..25u64 {
        let disk = CrashDisk::default();
        let log = open_log(&disk);
        // What the store acknowledged: the last appended index, the last saved vote's term.
        let acked_index = Arc::new(AtomicU64::new(0));
        let acked_term = Arc::new(AtomicU64::new(0));
        let (ai, at) = (acked_index.clone(), acked_term.clone());
        let mut writer = log.clone();
        let task = tokio::spawn(async move {
            for i in 1..=400u64 {
                if i % 50 == 1 {
                    let term = i / 50 + 1;
                    writer.save_vote(&Vote::new(term, 1)).await.unwrap();
                    at.store(term, Ordering::SeqCst);
                }
                writer.blocking_append([entry(i / 50 + 1, i)]).await.unwrap();
                ai.store(i, Ordering::SeqCst);
            }
        });
        tokio::time::sleep(std::time::Duration::from_micros(500 + round * 400)).await;
        // Read what was acknowledged first, then cut the power: anything acknowledged is
        // older than the image.
        let index = acked_index.load(Ordering::SeqCst);
        let term = acked_term.load(Ordering::SeqCst);
        let image = disk.crash_image();
        task.abort();
        drop(log);

        let mut recovered = open_log(&image);
        let state = recovered.get_log_state().await.unwrap();
        let last = state.last_log_id.map(|l| l.index).unwrap_or(0);
        assert!(last >= index, "round {round}: acknowledged up to {index}, recovered up to {last}");
        if index > 0 {
            let got = recovered.try_get_log_entries(1..=index).await.unwrap();
            assert_eq!(got.len() as u64, index, "round {round}: a hole in the recovered log");
            for (i, e) in got.iter().enumerate() {
                assert_eq!(*e, entry((i as u64 + 1) / 50 + 1, i as u64 + 1), "round {round}: entry {} differs", i + 1);
            }
        }
        let vote = recovered.read_vote().await.unwrap();
        let recovered_term = vote.map(|v| v.leader_id().term).unwrap_or(0);
        assert!(
            recovered_term >= term,
            "round {round}: voted in term {term}, recovered a vote of term {recovered_term}"
        );
    }
}

#[tokio::test]
async fn the_committed_log_id_rides_in_the_next_durable_commit_without_one_of_its_own() {
    let disk = CrashDisk::default();
    let mut log = open_log(&disk);
    log.blocking_append([entry(1, 1), entry(1, 2)]).await.unwrap();
    let fsyncs = log.stats().fsyncs.load(Ordering::SeqCst);
    log.save_committed(Some(entry(1, 2).log_id)).await.unwrap();
    assert_eq!(log.read_committed().await.unwrap(), Some(entry(1, 2).log_id), "readable at once");
    // No transaction of its own: nothing more was committed, and a crash now loses it
    // (it is re-learned from the leader).
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    assert_eq!(log.stats().fsyncs.load(Ordering::SeqCst), fsyncs, "save_committed committed alone");
    assert_eq!(open_log(&disk.crash_image()).read_committed().await.unwrap(), None);
    // The next durable write carries it.
    log.blocking_append([entry(1, 3)]).await.unwrap();
    let mut recovered = open_log(&disk.crash_image());
    assert_eq!(recovered.read_committed().await.unwrap(), Some(entry(1, 2).log_id));
    assert_eq!(recovered.get_log_state().await.unwrap().last_log_id, Some(entry(1, 3).log_id));
}

#[tokio::test]
async fn a_committed_log_id_is_never_written_ahead_of_the_entries_it_names() {
    let disk = CrashDisk::default();
    let mut log = open_log(&disk);
    log.blocking_append([entry(1, 1), entry(1, 2)]).await.unwrap();
    // Saved ahead of the log (openraft 0.9 never does; a reordering store must not break
    // recovery, which re-applies the log up to the committed id).
    log.save_committed(Some(entry(1, 5).log_id)).await.unwrap();
    log.blocking_append([entry(1, 3)]).await.unwrap();
    assert_eq!(open_log(&disk.crash_image()).read_committed().await.unwrap(), None, "written ahead of entry 5");
    log.blocking_append([entry(1, 4), entry(1, 5)]).await.unwrap();
    assert_eq!(open_log(&disk.crash_image()).read_committed().await.unwrap(), Some(entry(1, 5).log_id));
}

#[tokio::test]
async fn a_log_of_another_format_is_refused_with_a_message_that_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("raft-log.redb");
    // The log's writer thread lets go of the file shortly after the store is dropped.
    let reopen = || {
        for _ in 0..200 {
            match open_database(&path, 1 << 20) {
                Ok(db) => return db,
                Err(_) => std::thread::sleep(std::time::Duration::from_millis(10)),
            }
        }
        panic!("the log file stayed locked");
    };
    {
        let mut log = LogStore::open(reopen()).unwrap();
        log.blocking_append([entry(1, 1)]).await.unwrap();
    }
    // Reopened as it was: fine.
    drop(LogStore::open(reopen()).unwrap());
    // As if written by a build with another format.
    {
        let db = reopen();
        let txn = db.begin_write().unwrap();
        txn.open_table(crate::storage::tables::LOG_META).unwrap().insert("format", &[1u8][..]).unwrap();
        txn.commit().unwrap();
    }
    let e = LogStore::open(reopen()).err().expect("refused").to_string();
    assert!(e.contains("log format 1") && e.contains("reads only format 2"), "{e}");
}

#[test]
fn an_entry_of_another_format_is_not_applied() {
    let mut cmd = Command::single(1, Write::by_server(Op::Noop));
    assert!(cmd.check_format().is_ok());
    cmd.format = 9;
    let e = cmd.check_format().unwrap_err().to_string();
    assert!(e.contains("format 9") && e.contains("no migration"), "{e}");
}

/// A crash between a snapshot install's commit and the rename of its file leaves the
/// previous, older file: the next start rebuilds it from the state, so the node never
/// offers followers a snapshot older than the point its log was purged to.
#[test]
fn a_snapshot_file_older_than_the_installed_snapshot_is_rebuilt_at_start() {
    use crate::storage::tables::STATE_META;
    let dir = tempfile::tempdir().unwrap();
    let state = StateDb::open(&dir.path().join("state.redb"), 1 << 20).unwrap();
    let set_applied = |index: u64, installed: bool| {
        let txn = state.database().begin_write().unwrap();
        {
            let mut meta = txn.open_table(STATE_META).unwrap();
            let last = Some(LogId::new(CommittedLeaderId::new(1, 1), index));
            let raw = postcard::to_allocvec(&last).unwrap();
            meta.insert("last_applied", &raw[..]).unwrap();
            meta.insert(crate::storage::tables::APPLIED_INDEX_KEY, &index.to_le_bytes()[..]).unwrap();
            if installed {
                meta.insert("installed_snapshot", &raw[..]).unwrap();
            }
        }
        txn.commit().unwrap();
    };
    let snapshots = dir.path().join("snapshots");
    std::fs::create_dir_all(&snapshots).unwrap();
    let file = snapshots.join("snapshot.bin");
    set_applied(5, false);
    super::snapshot::build(state.database(), &file, &Default::default(), |_| "old".into()).unwrap();
    // As if a snapshot at 9 was installed and the server stopped before the file moved.
    set_applied(9, true);
    let at = |f: &std::path::Path| super::snapshot::read_meta(f).unwrap().last_log_id.unwrap().index;
    assert_eq!(at(&file), 5);
    drop(StateMachineStore::open(state.clone(), snapshots.clone(), Arc::new(Quiet)).unwrap());
    assert_eq!(at(&file), 9, "rebuilt from the state");
    // A file at least as new is left alone.
    let before = std::fs::metadata(&file).unwrap().modified().unwrap();
    drop(StateMachineStore::open(state, snapshots, Arc::new(Quiet)).unwrap());
    assert_eq!(std::fs::metadata(&file).unwrap().modified().unwrap(), before);
}
