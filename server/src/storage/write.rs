//! The state tables of one write transaction: what the applier reads and changes.

use bytes::Bytes;
use redb::WriteTransaction;

use super::access::{StateTables, Table};
use super::tables::{
    CLUSTER, ENDED_SESSIONS, EPHEMERALS, EXPIRING, LOCK_QUEUES, LOCKS, NODES, QUOTAS, REQUESTS, REQUESTS_BY_AGE,
    REQUESTS_BY_CALLER, SESSIONS,
};
use crate::error::GroveError;
use crate::fsm::znode::{Stat, Znode};

type RawTable<'t> = redb::Table<'t, &'static [u8], &'static [u8]>;

pub struct WriteTables<'t> {
    pub nodes: RawTable<'t>,
    pub sessions: RawTable<'t>,
    pub ephemerals: RawTable<'t>,
    pub expiring: RawTable<'t>,
    pub ended: RawTable<'t>,
    pub requests: RawTable<'t>,
    pub locks: RawTable<'t>,
    pub queues: RawTable<'t>,
    pub quotas: RawTable<'t>,
    pub cluster: RawTable<'t>,
    pub requests_by_age: RawTable<'t>,
    pub requests_by_caller: RawTable<'t>,
}

impl<'t> WriteTables<'t> {
    /// Opens (creating on first use) every state table in `txn`.
    pub fn open(txn: &'t WriteTransaction) -> Result<Self, GroveError> {
        let open = |def| txn.open_table(def).map_err(GroveError::storage);
        Ok(WriteTables {
            nodes: open(NODES)?,
            sessions: open(SESSIONS)?,
            ephemerals: open(EPHEMERALS)?,
            expiring: open(EXPIRING)?,
            ended: open(ENDED_SESSIONS)?,
            requests: open(REQUESTS)?,
            locks: open(LOCKS)?,
            queues: open(LOCK_QUEUES)?,
            quotas: open(QUOTAS)?,
            cluster: open(CLUSTER)?,
            requests_by_age: open(REQUESTS_BY_AGE)?,
            requests_by_caller: open(REQUESTS_BY_CALLER)?,
        })
    }

    pub fn table_mut(&mut self, which: Table) -> &mut RawTable<'t> {
        match which {
            Table::Nodes => &mut self.nodes,
            Table::Sessions => &mut self.sessions,
            Table::Ephemerals => &mut self.ephemerals,
            Table::Expiring => &mut self.expiring,
            Table::Ended => &mut self.ended,
            Table::Requests => &mut self.requests,
            Table::Locks => &mut self.locks,
            Table::Queues => &mut self.queues,
            Table::Quotas => &mut self.quotas,
            Table::Cluster => &mut self.cluster,
            Table::RequestsByAge => &mut self.requests_by_age,
            Table::RequestsByCaller => &mut self.requests_by_caller,
        }
    }

    /// Writes `value` at `key` (`None`: removes it).
    pub fn put(&mut self, which: Table, key: &[u8], value: Option<&[u8]>) -> Result<(), GroveError> {
        let t = self.table_mut(which);
        match value {
            Some(v) => t.insert(key, v).map(|_| ()),
            None => t.remove(key).map(|_| ()),
        }
        .map_err(GroveError::storage)
    }

    /// Creates the root node if the tree is empty. Its stat is all zeros, as ZooKeeper's.
    pub fn ensure_root(&mut self) -> Result<(), GroveError> {
        if self.node("/")?.is_none() {
            let root = Znode { stat: Stat::default(), acl: Vec::new(), data: Bytes::new() };
            self.put(Table::Nodes, &super::keys::node_key("/"), Some(&root.encode()))?;
        }
        Ok(())
    }
}

impl<'t> StateTables for WriteTables<'t> {
    type Raw = RawTable<'t>;

    fn table(&self, which: Table) -> Result<&RawTable<'t>, GroveError> {
        Ok(match which {
            Table::Nodes => &self.nodes,
            Table::Sessions => &self.sessions,
            Table::Ephemerals => &self.ephemerals,
            Table::Expiring => &self.expiring,
            Table::Ended => &self.ended,
            Table::Requests => &self.requests,
            Table::Locks => &self.locks,
            Table::Queues => &self.queues,
            Table::Quotas => &self.quotas,
            Table::Cluster => &self.cluster,
            Table::RequestsByAge => &self.requests_by_age,
            Table::RequestsByCaller => &self.requests_by_caller,
        })
    }
}
