//! `state.redb`: the tree, the sessions, the lock and quota records, the request results,
//! and the applied index, all changed together by one transaction per applied batch.
//!
//! Opening it creates every table (and the root node) on first start, so readers never
//! meet a missing table.

use std::path::Path;
use std::sync::Arc;

use redb::{Database, ReadableDatabase};

use super::access::StateTables;
use super::db::open_database;
use super::read::ReadTables;
use super::tables::STATE_META;
use super::write::WriteTables;
use crate::error::GroveError;
use crate::fsm::session::SessionRecord;

#[derive(Clone)]
pub struct StateDb {
    db: Arc<Database>,
}

impl StateDb {
    /// Opens (or creates) the state database at `path` with a page cache of `cache_bytes`.
    pub fn open(path: &Path, cache_bytes: usize) -> anyhow::Result<StateDb> {
        Self::from_database(open_database(path, cache_bytes)?)
    }

    /// Wraps an opened database (a file, or a test backend), creating what is missing.
    pub fn from_database(db: Database) -> anyhow::Result<StateDb> {
        let txn = db.begin_write()?;
        {
            WriteTables::open(&txn)?.ensure_root()?;
            txn.open_table(STATE_META)?;
        }
        txn.commit()?;
        Ok(StateDb { db: Arc::new(db) })
    }

    /// The database itself, for the Raft adapter's apply and snapshot transactions.
    pub fn database(&self) -> &Arc<Database> {
        &self.db
    }

    /// A consistent view of the current state.
    pub fn read(&self) -> Result<ReadTables, GroveError> {
        ReadTables::open(self.db.begin_read().map_err(GroveError::storage)?)
    }

    /// The zxid of the last applied entry.
    pub fn applied_index(&self) -> Result<u64, GroveError> {
        self.read()?.applied_index()
    }

    pub fn live_sessions(&self) -> Result<Vec<(u64, SessionRecord)>, GroveError> {
        self.read()?.sessions()
    }
}
