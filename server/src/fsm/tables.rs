//! The state tables opened inside one redb transaction, with the typed accessors the
//! applier and the readers share.

use bytes::Bytes;
use std::sync::OnceLock;

use redb::{ReadTransaction, ReadableTable, ReadableTableMetadata, WriteTransaction};

use super::locks::{LockRecord, QueueRecord};
use super::node::{NodeRecord, SessionRecord, Stat};
use super::path;
use super::quota::QuotaRecord;
use crate::error::GroveError;
use crate::storage::keys;
use crate::storage::tables::{
    ENDED_SESSIONS, EPHEMERALS, EXPIRING, LOCK_QUEUES, LOCKS, NODES, QUOTAS, REQUESTS, SESSIONS,
};

pub(crate) fn storage_err(e: impl std::fmt::Display) -> GroveError {
    GroveError::Internal(format!("storage: {e}"))
}

type RawTable<'t> = redb::Table<'t, &'static [u8], &'static [u8]>;
type RawReadTable = redb::ReadOnlyTable<&'static [u8], &'static [u8]>;

/// The state tables of one write transaction.
pub struct WriteTables<'t> {
    pub(crate) nodes: RawTable<'t>,
    pub(crate) sessions: RawTable<'t>,
    pub(crate) ephemerals: RawTable<'t>,
    pub(crate) expiring: RawTable<'t>,
    pub(crate) ended: RawTable<'t>,
    pub(crate) requests: RawTable<'t>,
    pub(crate) locks: RawTable<'t>,
    pub(crate) queues: RawTable<'t>,
    pub(crate) quotas: RawTable<'t>,
}

impl<'t> WriteTables<'t> {
    pub fn open(txn: &'t WriteTransaction) -> Result<Self, GroveError> {
        Ok(WriteTables {
            nodes: txn.open_table(NODES).map_err(storage_err)?,
            sessions: txn.open_table(SESSIONS).map_err(storage_err)?,
            ephemerals: txn.open_table(EPHEMERALS).map_err(storage_err)?,
            expiring: txn.open_table(EXPIRING).map_err(storage_err)?,
            ended: txn.open_table(ENDED_SESSIONS).map_err(storage_err)?,
            requests: txn.open_table(REQUESTS).map_err(storage_err)?,
            locks: txn.open_table(LOCKS).map_err(storage_err)?,
            queues: txn.open_table(LOCK_QUEUES).map_err(storage_err)?,
            quotas: txn.open_table(QUOTAS).map_err(storage_err)?,
        })
    }

    /// Creates the root node if the tree is empty. Its stat is all zeros, as ZooKeeper's.
    pub fn ensure_root(&mut self) -> Result<(), GroveError> {
        if self.nodes.get(&b""[..]).map_err(storage_err)?.is_none() {
            let root = NodeRecord { stat: Stat::default(), acl: Vec::new(), data: Bytes::new() };
            self.nodes.insert(&b""[..], &root.encode()[..]).map_err(storage_err)?;
        }
        Ok(())
    }

    pub(crate) fn node(&self, path: &str) -> Result<Option<NodeRecord>, GroveError> {
        match self.nodes.get(&keys::node_key(path)[..]).map_err(storage_err)? {
            Some(raw) => Ok(Some(NodeRecord::decode(raw.value())?)),
            None => Ok(None),
        }
    }

    pub(crate) fn session(&self, id: u64) -> Result<Option<SessionRecord>, GroveError> {
        match self.sessions.get(&id.to_be_bytes()[..]).map_err(storage_err)? {
            Some(raw) => Ok(Some(SessionRecord::decode(raw.value())?)),
            None => Ok(None),
        }
    }

    pub(crate) fn session_ended(&self, id: u64) -> Result<bool, GroveError> {
        Ok(self.ended.get(&id.to_be_bytes()[..]).map_err(storage_err)?.is_some())
    }

    pub(crate) fn lock(&self, node: &str) -> Result<Option<LockRecord>, GroveError> {
        match self.locks.get(node.as_bytes()).map_err(storage_err)? {
            Some(raw) => Ok(Some(postcard::from_bytes(raw.value()).map_err(GroveError::internal)?)),
            None => Ok(None),
        }
    }

    pub(crate) fn queue(&self, dir: &str) -> Result<Option<QueueRecord>, GroveError> {
        match self.queues.get(dir.as_bytes()).map_err(storage_err)? {
            Some(raw) => Ok(Some(postcard::from_bytes(raw.value()).map_err(GroveError::internal)?)),
            None => Ok(None),
        }
    }

    pub(crate) fn quota(&self, root: &str) -> Result<Option<QuotaRecord>, GroveError> {
        match self.quotas.get(root.as_bytes()).map_err(storage_err)? {
            Some(raw) => Ok(Some(QuotaRecord::decode(raw.value())?)),
            None => Ok(None),
        }
    }

    /// Whether any quota exists: while none does, writes skip quota accounting.
    pub(crate) fn has_quotas(&self) -> Result<bool, GroveError> {
        Ok(!self.quotas.is_empty().map_err(storage_err)?)
    }

    /// Quota roots strictly below `path`.
    pub(crate) fn quotas_below(&self, path: &str) -> Result<Vec<String>, GroveError> {
        let (start, end) = keys::deep_descendants_range(path);
        let mut out = Vec::new();
        for item in self.quotas.range(&start[..]..&end[..]).map_err(storage_err)? {
            let (k, _) = item.map_err(storage_err)?;
            out.push(String::from_utf8_lossy(k.value()).into_owned());
        }
        Ok(out)
    }

    /// (nodes, data bytes) of the subtree at `path`, itself included.
    pub(crate) fn subtree_usage(&self, path: &str) -> Result<(i64, i64), GroveError> {
        let Some(own) = self.nodes.get(&keys::node_key(path)[..]).map_err(storage_err)? else { return Ok((0, 0)) };
        let mut count = 1i64;
        let mut bytes = i64::from(NodeRecord::decode_stat(own.value())?.data_length);
        drop(own);
        for (start, end) in [keys::children_range(path), keys::deep_descendants_range(path)] {
            for item in self.nodes.range(&start[..]..&end[..]).map_err(storage_err)? {
                let (_, v) = item.map_err(storage_err)?;
                count += 1;
                bytes += i64::from(NodeRecord::decode_stat(v.value())?.data_length);
            }
        }
        Ok((count, bytes))
    }

    /// Child names of a node as committed so far in this transaction.
    pub(crate) fn child_names(&self, dir: &str) -> Result<Vec<String>, GroveError> {
        let (start, end) = keys::children_range(dir);
        let mut out = Vec::new();
        for item in self.nodes.range(&start[..]..&end[..]).map_err(storage_err)? {
            let (k, _) = item.map_err(storage_err)?;
            out.push(String::from_utf8_lossy(keys::key_name(k.value())).into_owned());
        }
        Ok(out)
    }

    /// Paths of every ephemeral owned by a session, in byte order.
    pub(crate) fn session_ephemerals(&self, id: u64) -> Result<Vec<String>, GroveError> {
        let (start, end) = keys::session_ephemerals_range(id);
        let mut out = Vec::new();
        for item in self.ephemerals.range(&start[..]..&end[..]).map_err(storage_err)? {
            let (k, _) = item.map_err(storage_err)?;
            out.push(keys::ephemeral_key_path(k.value()).to_string());
        }
        Ok(out)
    }
}

/// The state tables of one read transaction: a consistent view at one applied index.
/// Only the node table is opened up front; the others (rarely read) on first use.
pub struct ReadTables {
    txn: ReadTransaction,
    nodes: RawReadTable,
    sessions: OnceLock<RawReadTable>,
    ephemerals: OnceLock<RawReadTable>,
    expiring: OnceLock<RawReadTable>,
    locks: OnceLock<RawReadTable>,
    quotas: OnceLock<RawReadTable>,
}

/// A page of children.
#[derive(Debug, Default)]
pub struct ChildrenPage {
    pub names: Vec<String>,
    pub stats: Vec<Stat>,
    /// The last name returned, if more children follow it.
    pub next: Option<String>,
}

impl ReadTables {
    pub fn open(txn: ReadTransaction) -> Result<Self, GroveError> {
        Ok(ReadTables {
            nodes: txn.open_table(NODES).map_err(storage_err)?,
            txn,
            sessions: OnceLock::new(),
            ephemerals: OnceLock::new(),
            expiring: OnceLock::new(),
            locks: OnceLock::new(),
            quotas: OnceLock::new(),
        })
    }

    fn lazy<'a>(
        &self,
        cell: &'a OnceLock<RawReadTable>,
        def: crate::storage::tables::RawTableDef,
    ) -> Result<&'a RawReadTable, GroveError> {
        if let Some(t) = cell.get() {
            return Ok(t);
        }
        let t = self.txn.open_table(def).map_err(storage_err)?;
        Ok(cell.get_or_init(|| t))
    }

    pub fn stat(&self, path: &str) -> Result<Option<Stat>, GroveError> {
        match self.nodes.get(&keys::node_key(path)[..]).map_err(storage_err)? {
            Some(raw) => Ok(Some(NodeRecord::decode_stat(raw.value())?)),
            None => Ok(None),
        }
    }

    pub fn node(&self, path: &str) -> Result<Option<NodeRecord>, GroveError> {
        match self.nodes.get(&keys::node_key(path)[..]).map_err(storage_err)? {
            Some(raw) => Ok(Some(NodeRecord::decode(raw.value())?)),
            None => Ok(None),
        }
    }

    /// The quota rooted at `path`.
    pub fn quota(&self, path: &str) -> Result<Option<QuotaRecord>, GroveError> {
        match self.lazy(&self.quotas, QUOTAS)?.get(path.as_bytes()).map_err(storage_err)? {
            Some(raw) => Ok(Some(QuotaRecord::decode(raw.value())?)),
            None => Ok(None),
        }
    }

    /// The quota governing `path`: on it or on an ancestor (they do not nest).
    pub fn quota_over(&self, path: &str) -> Result<Option<(String, QuotaRecord)>, GroveError> {
        for p in path::ancestors(path).chain(std::iter::once(path)) {
            if let Some(q) = self.quota(p)? {
                return Ok(Some((p.to_string(), q)));
            }
        }
        Ok(None)
    }

    /// Every quota, by path, at most `limit`.
    pub fn quotas(&self, limit: usize) -> Result<Vec<(String, QuotaRecord)>, GroveError> {
        let mut out = Vec::new();
        for item in self.lazy(&self.quotas, QUOTAS)?.iter().map_err(storage_err)?.take(limit) {
            let (k, v) = item.map_err(storage_err)?;
            out.push((String::from_utf8_lossy(k.value()).into_owned(), QuotaRecord::decode(v.value())?));
        }
        Ok(out)
    }

    /// A node's stat and ACL, without copying its data.
    pub fn stat_acl(&self, path: &str) -> Result<Option<(Stat, super::acl::Acl)>, GroveError> {
        match self.nodes.get(&keys::node_key(path)[..]).map_err(storage_err)? {
            Some(raw) => Ok(Some((NodeRecord::decode_stat(raw.value())?, NodeRecord::acl_of(raw.value())?))),
            None => Ok(None),
        }
    }

    /// Fails with NO_AUTH unless `caller` has `perm` on the node at `path`; a missing node
    /// passes (what happens next reports NO_NODE, or a watch waits for it).
    pub fn check(&self, caller: &super::acl::Caller, path: &str, perm: u32) -> Result<(), GroveError> {
        match self.stat_acl(path)? {
            Some((_, acl)) => caller.check(&acl, perm, path),
            None => Ok(()),
        }
    }

    /// Children of `path` after the name `after` (exclusive; empty for the first page), at
    /// most `limit` of them.
    /// With `stats_for`, each child's stat too, as that caller may see it: zeroed for a
    /// child it may not read (the names come with READ on the parent; a child's stat needs
    /// READ on the child, as `Exists` does).
    pub fn children(
        &self,
        path: &str,
        after: &str,
        limit: usize,
        stats_for: Option<&super::acl::Caller>,
    ) -> Result<ChildrenPage, GroveError> {
        let (start, end) = keys::children_range(path);
        let mut from = start.clone();
        if !after.is_empty() {
            from.extend_from_slice(after.as_bytes());
            // The smallest key greater than `after`'s own key.
            from.push(0);
        }
        let mut page = ChildrenPage::default();
        for item in self.nodes.range(&from[..]..&end[..]).map_err(storage_err)? {
            let (k, v) = item.map_err(storage_err)?;
            if page.names.len() == limit {
                page.next = page.names.last().cloned();
                break;
            }
            page.names.push(String::from_utf8_lossy(keys::key_name(k.value())).into_owned());
            if let Some(caller) = stats_for {
                let readable = caller.may(&NodeRecord::acl_of(v.value())?, super::acl::READ);
                page.stats.push(if readable { NodeRecord::decode_stat(v.value())? } else { Stat::default() });
            }
        }
        Ok(page)
    }

    /// Number of nodes below `path`.
    pub fn count_descendants(&self, path: &str) -> Result<u64, GroveError> {
        if path == "/" {
            return Ok(self.nodes.len().map_err(storage_err)?.saturating_sub(1));
        }
        let mut count = 0u64;
        for (start, end) in [keys::children_range(path), keys::deep_descendants_range(path)] {
            for item in self.nodes.range(&start[..]..&end[..]).map_err(storage_err)? {
                item.map_err(storage_err)?;
                count += 1;
            }
        }
        Ok(count)
    }

    pub fn node_count(&self) -> Result<u64, GroveError> {
        self.nodes.len().map_err(storage_err)
    }

    /// Ephemerals of `session` whose path starts with `prefix`.
    pub fn ephemerals(&self, session: u64, prefix: &str) -> Result<Vec<String>, GroveError> {
        let (start, end) = keys::session_ephemerals_range(session);
        let mut out = Vec::new();
        for item in self.lazy(&self.ephemerals, EPHEMERALS)?.range(&start[..]..&end[..]).map_err(storage_err)? {
            let (k, _) = item.map_err(storage_err)?;
            let path = keys::ephemeral_key_path(k.value());
            if path.starts_with(prefix) {
                out.push(path.to_string());
            }
        }
        Ok(out)
    }

    pub fn session(&self, id: u64) -> Result<Option<SessionRecord>, GroveError> {
        match self.lazy(&self.sessions, SESSIONS)?.get(&id.to_be_bytes()[..]).map_err(storage_err)? {
            Some(raw) => Ok(Some(SessionRecord::decode(raw.value())?)),
            None => Ok(None),
        }
    }

    /// Every live session.
    pub fn sessions(&self) -> Result<Vec<(u64, SessionRecord)>, GroveError> {
        let mut out = Vec::new();
        for item in self.lazy(&self.sessions, SESSIONS)?.iter().map_err(storage_err)? {
            let (k, v) = item.map_err(storage_err)?;
            let id = u64::from_be_bytes(k.value().try_into().map_err(|_| GroveError::internal("corrupt session key"))?);
            out.push((id, SessionRecord::decode(v.value())?));
        }
        Ok(out)
    }

    /// Container and TTL nodes that qualify for deletion at `now_ms`, at most `limit`.
    pub fn reapable(&self, now_ms: i64, limit: usize) -> Result<Vec<String>, GroveError> {
        let mut out = Vec::new();
        for item in self.lazy(&self.expiring, EXPIRING)?.iter().map_err(storage_err)? {
            let (k, _) = item.map_err(storage_err)?;
            let path = String::from_utf8_lossy(k.value()).into_owned();
            if let Some(stat) = self.stat(&path)?
                && super::tree::reapable(&stat, now_ms)
            {
                out.push(path);
                if out.len() == limit {
                    break;
                }
            }
        }
        Ok(out)
    }

    pub fn lock(&self, node: &str) -> Result<Option<LockRecord>, GroveError> {
        let t = self.lazy(&self.locks, LOCKS)?;
        match t.get(node.as_bytes()).map_err(storage_err)? {
            Some(raw) => Ok(Some(postcard::from_bytes(raw.value()).map_err(GroveError::internal)?)),
            None => Ok(None),
        }
    }

    /// The lock nodes of a queue directory in line order: (node path, record).
    pub fn lock_queue(&self, dir: &str) -> Result<Vec<(String, LockRecord)>, GroveError> {
        let page = self.children(dir, "", usize::MAX, None)?;
        let mut out = Vec::new();
        for name in page.names {
            let node = path::join(dir, &name);
            if let Some(rec) = self.lock(&node)? {
                out.push((node, rec));
            }
        }
        out.sort_by_key(|(n, _)| super::locks::sequence(n));
        Ok(out)
    }

    /// Data of a node without decoding its stat, for tests and tools.
    pub fn data(&self, path: &str) -> Result<Option<Bytes>, GroveError> {
        match self.nodes.get(&keys::node_key(path)[..]).map_err(storage_err)? {
            Some(raw) => Ok(Some(Bytes::copy_from_slice(NodeRecord::data_of(raw.value())?))),
            None => Ok(None),
        }
    }
}
