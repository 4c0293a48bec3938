//! The state tables of one read transaction: a consistent view at one applied index.

use std::sync::OnceLock;

use redb::ReadTransaction;

use super::access::{StateTables, Table};
use super::tables::{
    APPLIED_INDEX_KEY, CLUSTER, ENDED_SESSIONS, EPHEMERALS, EXPIRING, LOCK_QUEUES, LOCKS, NODES, QUOTAS, REQUESTS,
    REQUESTS_BY_AGE, REQUESTS_BY_CALLER, RawTableDef, SESSIONS, STATE_META,
};
use crate::error::GroveError;

type RawReadTable = redb::ReadOnlyTable<&'static [u8], &'static [u8]>;

/// Only the node table is opened up front; the others (rarely read) on first use.
pub struct ReadTables {
    txn: ReadTransaction,
    nodes: RawReadTable,
    lazy: [OnceLock<RawReadTable>; 11],
}

impl ReadTables {
    pub fn open(txn: ReadTransaction) -> Result<Self, GroveError> {
        Ok(ReadTables { nodes: txn.open_table(NODES).map_err(GroveError::storage)?, txn, lazy: Default::default() })
    }

    /// The transaction under the view (for a snapshot of exactly what it sees).
    pub fn txn(&self) -> &ReadTransaction {
        &self.txn
    }

    /// The zxid of the last entry this view reflects.
    pub fn applied_index(&self) -> Result<u64, GroveError> {
        let meta = self.txn.open_table(STATE_META).map_err(GroveError::storage)?;
        Ok(match meta.get(APPLIED_INDEX_KEY).map_err(GroveError::storage)? {
            Some(v) => {
                u64::from_le_bytes(v.value().try_into().map_err(|_| GroveError::internal("corrupt applied index"))?)
            }
            None => 0,
        })
    }
}

fn lazy_slot(which: Table) -> (usize, RawTableDef) {
    match which {
        Table::Sessions => (0, SESSIONS),
        Table::Ephemerals => (1, EPHEMERALS),
        Table::Expiring => (2, EXPIRING),
        Table::Ended => (3, ENDED_SESSIONS),
        Table::Requests => (4, REQUESTS),
        Table::Locks => (5, LOCKS),
        Table::Queues => (6, LOCK_QUEUES),
        Table::Quotas => (7, QUOTAS),
        Table::Cluster => (8, CLUSTER),
        Table::RequestsByAge => (9, REQUESTS_BY_AGE),
        Table::RequestsByCaller => (10, REQUESTS_BY_CALLER),
        Table::Nodes => unreachable!("the node table is opened eagerly"),
    }
}

impl StateTables for ReadTables {
    type Raw = RawReadTable;

    fn table(&self, which: Table) -> Result<&RawReadTable, GroveError> {
        if which == Table::Nodes {
            return Ok(&self.nodes);
        }
        let (slot, def) = lazy_slot(which);
        let cell = &self.lazy[slot];
        if let Some(t) = cell.get() {
            return Ok(t);
        }
        let t = self.txn.open_table(def).map_err(GroveError::storage)?;
        Ok(cell.get_or_init(|| t))
    }
}
