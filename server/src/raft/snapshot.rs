//! Snapshot files: a consistent copy of the state tables, streamed.
//!
//! Layout: magic, the postcard-encoded `SnapshotMeta` (length-prefixed), then one record
//! per table row (`tag u8, key len u32, key, value len u32, value`), a 0 tag, and the CRC32
//! of everything before it. Building reads one redb read transaction, so writes continue
//! meanwhile; installing refills the tables in one write transaction that commits only if
//! the whole file checks out, so a truncated or corrupt transfer changes nothing.

use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::Path;

use openraft::{StorageIOError, StoredMembership};
use redb::{Database, Durability, ReadTransaction, ReadableDatabase, ReadableTable, WriteTransaction};

use super::types::{LogId, SnapshotMeta, StorageError};
use crate::storage::tables::{APPLIED_INDEX_KEY, STATE_META, STATE_TABLES};

const MAGIC: &[u8; 10] = b"GROVESNAP\x01";
/// Tags of `STATE_TABLES`.
const NODES_TAG: u8 = 1;
pub(super) const SESSIONS_TAG: u8 = 2;
pub(super) const REQUEST_TAGS: [u8; 3] = [6, 11, 12];

/// What `write` does with one record.
pub(super) enum Rewrite {
    Keep,
    Replace(Vec<u8>),
    Skip,
}

fn err(e: impl std::fmt::Display) -> StorageError {
    metrics::counter!("grove_storage_errors_total", "store" => "snapshot").increment(1);
    StorageIOError::write_snapshot(None, openraft::AnyError::error(e)).into()
}

/// Writes a CRC as it goes.
struct CrcWriter<W: Write> {
    inner: W,
    crc: crc32fast::Hasher,
}

impl<W: Write> Write for CrcWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.crc.update(&buf[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// Reads a CRC as it goes, optionally copying what it reads to a file.
struct CrcReader<R: Read> {
    inner: R,
    crc: crc32fast::Hasher,
    copy: Option<BufWriter<File>>,
}

impl<R: Read> CrcReader<R> {
    fn exact(&mut self, buf: &mut [u8]) -> std::io::Result<()> {
        self.inner.read_exact(buf)?;
        self.crc.update(buf);
        if let Some(c) = &mut self.copy {
            c.write_all(buf)?;
        }
        Ok(())
    }
    fn u8(&mut self) -> std::io::Result<u8> {
        let mut b = [0u8; 1];
        self.exact(&mut b)?;
        Ok(b[0])
    }
    fn u32(&mut self) -> std::io::Result<u32> {
        let mut b = [0u8; 4];
        self.exact(&mut b)?;
        Ok(u32::from_le_bytes(b))
    }
    fn bytes(&mut self, max: u32) -> std::io::Result<Vec<u8>> {
        let n = self.u32()?;
        if n > max {
            return Err(std::io::Error::other(format!("snapshot record of {n} bytes exceeds {max}")));
        }
        let mut v = vec![0u8; n as usize];
        self.exact(&mut v)?;
        Ok(v)
    }
}

/// Reads the applied log id and membership recorded in the state database.
pub fn read_applied(db: &Database) -> Result<(Option<LogId>, super::types::StoredMembership), StorageError> {
    let txn = db.begin_read().map_err(err)?;
    match txn.open_table(STATE_META) {
        Err(redb::TableError::TableDoesNotExist(_)) => Ok((None, StoredMembership::default())),
        Err(e) => Err(err(e)),
        Ok(_) => applied_in(&txn),
    }
}

/// The applied log id and membership a read transaction sees.
pub(super) fn applied_in(
    txn: &ReadTransaction,
) -> Result<(Option<LogId>, super::types::StoredMembership), StorageError> {
    let meta = txn.open_table(STATE_META).map_err(err)?;
    let last: Option<LogId> = match meta.get("last_applied").map_err(err)? {
        Some(v) => postcard::from_bytes(v.value()).map_err(err)?,
        None => None,
    };
    let membership = match meta.get("membership").map_err(err)? {
        Some(v) => postcard::from_bytes(v.value()).map_err(err)?,
        None => StoredMembership::default(),
    };
    Ok((last, membership))
}

/// Writes what `txn` sees to `out` in the snapshot format, described by `meta`; returns
/// `out` and the number of znodes written. `rewrite` may replace or leave out a record (by
/// its table tag), e.g. to leave secrets out of a backup.
pub(super) fn write<W: Write>(
    txn: &ReadTransaction,
    meta: &SnapshotMeta,
    out: W,
    rewrite: impl Fn(u8, &[u8]) -> Rewrite,
) -> Result<(W, u64), StorageError> {
    let mut w = CrcWriter { inner: out, crc: crc32fast::Hasher::new() };
    let meta_raw = postcard::to_allocvec(meta).map_err(err)?;
    w.write_all(MAGIC).map_err(err)?;
    w.write_all(&(meta_raw.len() as u32).to_le_bytes()).map_err(err)?;
    w.write_all(&meta_raw).map_err(err)?;
    let mut nodes = 0;
    for (tag, def) in STATE_TABLES {
        let table = match txn.open_table(def) {
            Ok(t) => t,
            Err(redb::TableError::TableDoesNotExist(_)) => continue,
            Err(e) => return Err(err(e)),
        };
        for item in table.iter().map_err(err)? {
            let (k, v) = item.map_err(err)?;
            let (k, v) = (k.value(), v.value());
            let replaced = match rewrite(tag, v) {
                Rewrite::Skip => continue,
                Rewrite::Keep => None,
                Rewrite::Replace(value) => Some(value),
            };
            let v = replaced.as_deref().unwrap_or(v);
            w.write_all(&[tag]).map_err(err)?;
            w.write_all(&(k.len() as u32).to_le_bytes()).map_err(err)?;
            w.write_all(k).map_err(err)?;
            w.write_all(&(v.len() as u32).to_le_bytes()).map_err(err)?;
            w.write_all(v).map_err(err)?;
            nodes += u64::from(tag == NODES_TAG);
        }
    }
    w.write_all(&[0]).map_err(err)?;
    let crc = w.crc.clone().finalize();
    let mut inner = w.inner;
    inner.write_all(&crc.to_le_bytes()).map_err(err)?;
    Ok((inner, nodes))
}

/// Serializes replacing the current snapshot file: a build and an install may race.
pub type SnapshotLock = std::sync::Mutex<()>;

/// Builds a snapshot of the state database into `path` (written to a temporary file,
/// synced, then renamed over `path` unless `path` already holds a newer snapshot). Returns
/// the metadata of what `path` holds afterwards. `id` becomes the snapshot id.
pub fn build(
    db: &Database,
    path: &Path,
    lock: &SnapshotLock,
    id: impl Fn(Option<LogId>) -> String,
) -> Result<SnapshotMeta, StorageError> {
    let txn = db.begin_read().map_err(err)?;
    // Applies commit with Durability::None. An empty durable commit after opening the read
    // makes everything the read sees durable, so the snapshot never describes state a
    // crash could take back (the log is purged up to it).
    let mut sync = db.begin_write().map_err(err)?;
    sync.set_durability(Durability::Immediate).map_err(err)?;
    sync.commit().map_err(err)?;

    let (last_log_id, last_membership) = applied_in(&txn)?;
    let meta = SnapshotMeta { last_log_id, last_membership, snapshot_id: id(last_log_id) };
    let tmp = path.with_extension("tmp");
    let file = File::create(&tmp).map_err(err)?;
    let (inner, _) = write(&txn, &meta, BufWriter::with_capacity(1 << 20, file), |_, _| Rewrite::Keep)?;
    let file = inner.into_inner().map_err(|e| err(e.error()))?;
    file.sync_all().map_err(err)?;
    drop(file);
    let _guard = lock.lock().unwrap();
    if path.exists() {
        let current = read_meta(path)?;
        if current.last_log_id >= meta.last_log_id {
            // A snapshot installed from the leader meanwhile is at least as new: keep it.
            let _ = std::fs::remove_file(&tmp);
            return Ok(current);
        }
    }
    std::fs::rename(&tmp, path).map_err(err)?;
    sync_dir(path);
    Ok(meta)
}

/// Key in the state's `meta` of the last snapshot installed (postcard `Option<LogId>`).
const INSTALLED_KEY: &str = "installed_snapshot";

/// Makes sure the snapshot file at `path` is not older than the last snapshot installed
/// into the state: a crash between the install's commit and the file's rename leaves the
/// previous file in place, older than the point the log was purged to, which could never
/// bring a follower up to date. Such a file is rebuilt from the state. Returns whether it
/// was.
pub fn repair(
    db: &Database,
    path: &Path,
    lock: &SnapshotLock,
    id: impl Fn(Option<LogId>) -> String,
) -> Result<bool, StorageError> {
    let installed: Option<LogId> = {
        let txn = db.begin_read().map_err(err)?;
        let meta = match txn.open_table(STATE_META) {
            Ok(t) => t,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(false),
            Err(e) => return Err(err(e)),
        };
        match meta.get(INSTALLED_KEY).map_err(err)? {
            Some(v) => postcard::from_bytes(v.value()).map_err(err)?,
            None => None,
        }
    };
    let Some(installed) = installed else { return Ok(false) };
    let current = if path.exists() { read_meta(path).ok().and_then(|m| m.last_log_id) } else { None };
    if current.is_some_and(|c| c >= installed) {
        return Ok(false);
    }
    tracing::warn!(
        snapshot = ?current,
        installed = ?installed,
        "the snapshot file is older than the snapshot last installed (the server stopped in between): rebuilding it"
    );
    build(db, path, lock, id)?;
    Ok(true)
}

/// Reads only the metadata of a snapshot file.
pub fn read_meta(path: &Path) -> Result<SnapshotMeta, StorageError> {
    let mut r =
        CrcReader { inner: BufReader::new(File::open(path).map_err(err)?), crc: crc32fast::Hasher::new(), copy: None };
    read_header(&mut r)
}

fn read_header<R: Read>(r: &mut CrcReader<R>) -> Result<SnapshotMeta, StorageError> {
    let mut magic = [0u8; 10];
    r.exact(&mut magic).map_err(err)?;
    if &magic != MAGIC {
        return Err(err("not a Grove snapshot (bad magic)"));
    }
    let meta_raw = r.bytes(1 << 20).map_err(err)?;
    postcard::from_bytes(&meta_raw).map_err(err)
}

/// Replaces the state tables with the snapshot read from `src`, and copies the snapshot
/// to `keep` (the node's current snapshot file). Nothing changes unless the snapshot is
/// the one `expected` describes and reads back whole with a valid checksum.
pub fn install(
    db: &Database,
    src: impl Read,
    keep: &Path,
    lock: &SnapshotLock,
    expected: &SnapshotMeta,
) -> Result<SnapshotMeta, StorageError> {
    let tmp = keep.with_extension("incoming");
    let mut r = CrcReader {
        inner: BufReader::with_capacity(1 << 20, src),
        crc: crc32fast::Hasher::new(),
        copy: Some(BufWriter::new(File::create(&tmp).map_err(err)?)),
    };
    let mut txn = db.begin_write().map_err(err)?;
    txn.set_durability(Durability::Immediate).map_err(err)?;
    let meta = load_tables(&txn, &mut r, |meta| {
        if meta.last_log_id != expected.last_log_id || meta.last_membership != expected.last_membership {
            return Err(err(format!(
                "the snapshot file describes {:?}, the leader announced {:?}",
                meta.last_log_id, expected.last_log_id
            )));
        }
        Ok(())
    })?;
    set_applied(&txn, meta.last_log_id, &meta.last_membership)?;
    {
        // Which snapshot the state now is, in the same transaction: if the process stops
        // before the file below is renamed into place, the next start sees the file is
        // older than the state and rebuilds it (`repair`).
        let mut meta_table = txn.open_table(STATE_META).map_err(err)?;
        let last = postcard::to_allocvec(&meta.last_log_id).map_err(err)?;
        meta_table.insert(INSTALLED_KEY, &last[..]).map_err(err)?;
    }
    txn.commit().map_err(err)?;
    if let Some(c) = r.copy.take() {
        let f = c.into_inner().map_err(|e| err(e.error()))?;
        f.sync_all().map_err(err)?;
    }
    let _guard = lock.lock().unwrap();
    std::fs::rename(&tmp, keep).map_err(err)?;
    sync_dir(keep);
    Ok(meta)
}

/// Records in `txn` that the state is applied up to `last`, with `membership`.
pub(super) fn set_applied(
    txn: &WriteTransaction,
    last: Option<LogId>,
    membership: &super::types::StoredMembership,
) -> Result<(), StorageError> {
    let mut meta_table = txn.open_table(STATE_META).map_err(err)?;
    let raw = postcard::to_allocvec(&last).map_err(err)?;
    meta_table.insert("last_applied", &raw[..]).map_err(err)?;
    let index = last.map(|l| l.index).unwrap_or(0);
    meta_table.insert(APPLIED_INDEX_KEY, &index.to_le_bytes()[..]).map_err(err)?;
    let raw = postcard::to_allocvec(membership).map_err(err)?;
    meta_table.insert("membership", &raw[..]).map_err(err)?;
    Ok(())
}

/// Replaces every state table in `txn` with the records of the snapshot `r` reads, once
/// `accept` agreed to its metadata; fails (and the caller drops `txn`) unless it reads
/// back whole with a valid checksum.
fn load_tables<R: Read>(
    txn: &WriteTransaction,
    r: &mut CrcReader<R>,
    accept: impl FnOnce(&SnapshotMeta) -> Result<(), StorageError>,
) -> Result<SnapshotMeta, StorageError> {
    let meta = read_header(r)?;
    accept(&meta)?;
    let mut tables = Vec::new();
    for (tag, def) in STATE_TABLES {
        let mut t = txn.open_table(def).map_err(err)?;
        t.retain(|_, _| false).map_err(err)?;
        tables.push((tag, t));
    }
    loop {
        let tag = r.u8().map_err(err)?;
        if tag == 0 {
            break;
        }
        let key = r.bytes(64 << 20).map_err(err)?;
        let value = r.bytes(64 << 20).map_err(err)?;
        let (_, table) = tables
            .iter_mut()
            .find(|(t, _)| *t == tag)
            .ok_or_else(|| err(format!("snapshot record with unknown table tag {tag}")))?;
        table.insert(&key[..], &value[..]).map_err(err)?;
    }
    let expected = r.crc.clone().finalize();
    let mut crc = [0u8; 4];
    r.inner.read_exact(&mut crc).map_err(err)?;
    if u32::from_le_bytes(crc) != expected {
        return Err(err("snapshot checksum mismatch"));
    }
    if let Some(c) = &mut r.copy {
        c.write_all(&crc).map_err(err)?;
    }
    Ok(meta)
}

/// Replaces the state tables in `txn` with the snapshot `src` holds (a restore; see
/// `load_tables`).
pub(super) fn load(txn: &WriteTransaction, src: impl Read) -> Result<SnapshotMeta, StorageError> {
    let mut r = CrcReader { inner: BufReader::with_capacity(1 << 20, src), crc: crc32fast::Hasher::new(), copy: None };
    load_tables(txn, &mut r, |_| Ok(()))
}

fn sync_dir(path: &Path) {
    // A rename is durable once its directory is synced. Best effort: not every platform
    // lets a directory be opened for this.
    if let Some(dir) = path.parent()
        && let Ok(d) = File::open(dir)
    {
        let _ = d.sync_all();
    }
}
