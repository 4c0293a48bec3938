//! Typed reads of the state tables, written once for both kinds of transaction.
//!
//! The applier reads through a write transaction (`WriteTables`), every other reader
//! through a read transaction (`ReadTables`); both hand out the same raw tables, and every
//! accessor here is a provided method of `StateTables`, so a record is decoded one way only.

use bytes::Bytes;
use redb::{ReadableTable, ReadableTableMetadata};

use super::keys;
use crate::error::GroveError;
use crate::fsm::acl::{self, Acl, Caller};
use crate::fsm::locks::{self, LockRecord, QueueRecord};
use crate::fsm::members::MemberRecord;
use crate::fsm::path;
use crate::fsm::quota::QuotaRecord;
use crate::fsm::session::SessionRecord;
use crate::fsm::znode::{self, Stat, Znode};

/// The state tables, as `STATE_TABLES` lists them (but `meta`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Table {
    Nodes,
    Sessions,
    Ephemerals,
    Expiring,
    Ended,
    Requests,
    Locks,
    Queues,
    Quotas,
    Cluster,
    RequestsByAge,
    RequestsByCaller,
}

/// A page of children.
#[derive(Debug, Default)]
pub struct ChildrenPage {
    pub names: Vec<String>,
    pub stats: Vec<Stat>,
    /// The last name returned, if more children follow it.
    pub next: Option<String>,
}

/// Read access to the state tables of one transaction.
pub trait StateTables {
    type Raw: ReadableTable<&'static [u8], &'static [u8]>;

    fn table(&self, which: Table) -> Result<&Self::Raw, GroveError>;

    /// The value at `key` of a table, decoded.
    fn get<R>(
        &self,
        which: Table,
        key: &[u8],
        decode: impl FnOnce(&[u8]) -> Result<R, GroveError>,
    ) -> Result<Option<R>, GroveError> {
        match self.table(which)?.get(key).map_err(GroveError::storage)? {
            Some(raw) => Ok(Some(decode(raw.value())?)),
            None => Ok(None),
        }
    }

    /// The keys of a table in `[start, end)`, in order, at most `limit`.
    fn keys_in(&self, which: Table, start: &[u8], end: &[u8], limit: usize) -> Result<Vec<Vec<u8>>, GroveError> {
        let mut out = Vec::new();
        for item in self.table(which)?.range(start..end).map_err(GroveError::storage)?.take(limit) {
            let (k, _) = item.map_err(GroveError::storage)?;
            out.push(k.value().to_vec());
        }
        Ok(out)
    }

    fn node(&self, path: &str) -> Result<Option<Znode>, GroveError> {
        self.get(Table::Nodes, &keys::node_key(path), Znode::decode)
    }

    fn stat(&self, path: &str) -> Result<Option<Stat>, GroveError> {
        self.get(Table::Nodes, &keys::node_key(path), Znode::decode_stat)
    }

    /// A node's stat and ACL, without copying its data.
    fn stat_acl(&self, path: &str) -> Result<Option<(Stat, Acl)>, GroveError> {
        self.get(Table::Nodes, &keys::node_key(path), |raw| Ok((Znode::decode_stat(raw)?, Znode::acl_of(raw)?)))
    }

    /// Data of a node without decoding its stat.
    fn data(&self, path: &str) -> Result<Option<Bytes>, GroveError> {
        self.get(Table::Nodes, &keys::node_key(path), |raw| Ok(Bytes::copy_from_slice(Znode::data_of(raw)?)))
    }

    /// Fails with NO_AUTH unless `caller` has `perm` on the node at `path`; a missing node
    /// passes (what happens next reports NO_NODE, or a watch waits for it).
    fn check(&self, caller: &Caller, path: &str, perm: u32) -> Result<(), GroveError> {
        match self.stat_acl(path)? {
            Some((_, acl)) => caller.check(&acl, perm, path),
            None => Ok(()),
        }
    }

    /// Child names of a node.
    fn child_names(&self, dir: &str) -> Result<Vec<String>, GroveError> {
        Ok(self.children(dir, "", usize::MAX, None)?.names)
    }

    /// Children of `path` after the name `after` (exclusive; empty for the first page), at
    /// most `limit` of them.
    /// With `stats_for`, each child's stat too, as that caller may see it: zeroed for a
    /// child it may not read (the names come with READ on the parent; a child's stat needs
    /// READ on the child, as `Exists` does).
    fn children(
        &self,
        path: &str,
        after: &str,
        limit: usize,
        stats_for: Option<&Caller>,
    ) -> Result<ChildrenPage, GroveError> {
        let (start, end) = keys::children_range(path);
        let mut from = start.clone();
        if !after.is_empty() {
            from.extend_from_slice(after.as_bytes());
            // The smallest key greater than `after`'s own key.
            from.push(0);
        }
        let mut page = ChildrenPage::default();
        for item in self.table(Table::Nodes)?.range(&from[..]..&end[..]).map_err(GroveError::storage)? {
            let (k, v) = item.map_err(GroveError::storage)?;
            if page.names.len() == limit {
                page.next = page.names.last().cloned();
                break;
            }
            page.names.push(String::from_utf8_lossy(keys::key_name(k.value())).into_owned());
            if let Some(caller) = stats_for {
                let readable = caller.may(&Znode::acl_of(v.value())?, acl::READ);
                page.stats.push(if readable { Znode::decode_stat(v.value())? } else { Stat::default() });
            }
        }
        Ok(page)
    }

    /// Number of nodes below `path`.
    fn count_descendants(&self, path: &str) -> Result<u64, GroveError> {
        let nodes = self.table(Table::Nodes)?;
        if path == "/" {
            return Ok(nodes.len().map_err(GroveError::storage)?.saturating_sub(1));
        }
        let mut count = 0u64;
        for (start, end) in [keys::children_range(path), keys::deep_descendants_range(path)] {
            for item in nodes.range(&start[..]..&end[..]).map_err(GroveError::storage)? {
                item.map_err(GroveError::storage)?;
                count += 1;
            }
        }
        Ok(count)
    }

    fn node_count(&self) -> Result<u64, GroveError> {
        self.table(Table::Nodes)?.len().map_err(GroveError::storage)
    }

    /// (nodes, data bytes) of the subtree at `path`, itself included.
    fn subtree_usage(&self, path: &str) -> Result<(i64, i64), GroveError> {
        let Some(own) = self.stat(path)? else { return Ok((0, 0)) };
        let mut count = 1i64;
        let mut bytes = i64::from(own.data_length);
        let nodes = self.table(Table::Nodes)?;
        for (start, end) in [keys::children_range(path), keys::deep_descendants_range(path)] {
            for item in nodes.range(&start[..]..&end[..]).map_err(GroveError::storage)? {
                let (_, v) = item.map_err(GroveError::storage)?;
                count += 1;
                bytes += i64::from(Znode::decode_stat(v.value())?.data_length);
            }
        }
        Ok((count, bytes))
    }

    fn session(&self, id: u64) -> Result<Option<SessionRecord>, GroveError> {
        self.get(Table::Sessions, &id.to_be_bytes(), SessionRecord::decode)
    }

    /// Every live session.
    fn sessions(&self) -> Result<Vec<(u64, SessionRecord)>, GroveError> {
        let mut out = Vec::new();
        for item in self.table(Table::Sessions)?.iter().map_err(GroveError::storage)? {
            let (k, v) = item.map_err(GroveError::storage)?;
            let id = u64::from_be_bytes(k.value().try_into().map_err(|_| GroveError::internal("corrupt session key"))?);
            out.push((id, SessionRecord::decode(v.value())?));
        }
        Ok(out)
    }

    /// Whether the session ended recently (closed or expired, and still remembered).
    fn session_ended(&self, id: u64) -> Result<bool, GroveError> {
        Ok(self.table(Table::Ended)?.get(&id.to_be_bytes()[..]).map_err(GroveError::storage)?.is_some())
    }

    /// Paths of every ephemeral owned by a session, in byte order.
    fn session_ephemerals(&self, id: u64) -> Result<Vec<String>, GroveError> {
        self.ephemerals(id, "")
    }

    /// Ephemerals of `session` whose path starts with `prefix`.
    fn ephemerals(&self, session: u64, prefix: &str) -> Result<Vec<String>, GroveError> {
        let (start, end) = keys::session_ephemerals_range(session);
        let mut out = Vec::new();
        for k in self.keys_in(Table::Ephemerals, &start, &end, usize::MAX)? {
            let path = keys::ephemeral_key_path(&k);
            if path.starts_with(prefix) {
                out.push(path.to_string());
            }
        }
        Ok(out)
    }

    /// Container and TTL nodes that qualify for deletion at `now_ms`, at most `limit`.
    fn reapable(&self, now_ms: i64, limit: usize) -> Result<Vec<String>, GroveError> {
        let mut out = Vec::new();
        for item in self.table(Table::Expiring)?.iter().map_err(GroveError::storage)? {
            let (k, _) = item.map_err(GroveError::storage)?;
            let path = String::from_utf8_lossy(k.value()).into_owned();
            if let Some(stat) = self.stat(&path)?
                && znode::reapable(&stat, now_ms)
            {
                out.push(path);
                if out.len() == limit {
                    break;
                }
            }
        }
        Ok(out)
    }

    fn lock(&self, node: &str) -> Result<Option<LockRecord>, GroveError> {
        self.get(Table::Locks, node.as_bytes(), LockRecord::decode)
    }

    fn queue(&self, dir: &str) -> Result<Option<QueueRecord>, GroveError> {
        self.get(Table::Queues, dir.as_bytes(), QueueRecord::decode)
    }

    /// The lock nodes of a queue directory in line order: (node path, record).
    fn lock_queue(&self, dir: &str) -> Result<Vec<(String, LockRecord)>, GroveError> {
        locks::in_line(dir, self.child_names(dir)?, |node| self.lock(node))
    }

    /// Lock queue directories with their settings, in byte order, at most `limit` (the web
    /// console's list of locks: every queue ever used that still has its record).
    fn lock_queues(&self, limit: usize) -> Result<Vec<(String, QueueRecord)>, GroveError> {
        let mut out = Vec::new();
        for item in self.table(Table::Queues)?.iter().map_err(GroveError::storage)?.take(limit) {
            let (k, v) = item.map_err(GroveError::storage)?;
            out.push((String::from_utf8_lossy(k.value()).into_owned(), QueueRecord::decode(v.value())?));
        }
        Ok(out)
    }

    fn quota(&self, root: &str) -> Result<Option<QuotaRecord>, GroveError> {
        self.get(Table::Quotas, root.as_bytes(), QuotaRecord::decode)
    }

    /// Whether any quota exists: while none does, writes skip quota accounting.
    fn has_quotas(&self) -> Result<bool, GroveError> {
        Ok(!self.table(Table::Quotas)?.is_empty().map_err(GroveError::storage)?)
    }

    /// The quota governing `path`: on it or on an ancestor (they do not nest).
    fn quota_over(&self, path: &str) -> Result<Option<(String, QuotaRecord)>, GroveError> {
        for p in path::ancestors(path).chain(std::iter::once(path)) {
            if let Some(q) = self.quota(p)? {
                return Ok(Some((p.to_string(), q)));
            }
        }
        Ok(None)
    }

    /// Quota roots strictly below `path`.
    fn quotas_below(&self, path: &str) -> Result<Vec<String>, GroveError> {
        let (start, end) = keys::deep_descendants_range(path);
        Ok(self
            .keys_in(Table::Quotas, &start, &end, usize::MAX)?
            .into_iter()
            .map(|k| String::from_utf8_lossy(&k).into_owned())
            .collect())
    }

    /// The cluster's id (0: not formed yet).
    fn cluster_id(&self) -> Result<u64, GroveError> {
        Ok(self
            .get(Table::Cluster, keys::cluster_key(), |raw| {
                raw.try_into().map(u64::from_le_bytes).map_err(|_| GroveError::internal("corrupt cluster id"))
            })?
            .unwrap_or(0))
    }

    /// The latest entry time applied (ms since the epoch; 0: none yet).
    fn clock(&self) -> Result<i64, GroveError> {
        Ok(self
            .get(Table::Cluster, keys::clock_key(), |raw| {
                raw.try_into().map(i64::from_le_bytes).map_err(|_| GroveError::internal("corrupt entry clock"))
            })?
            .unwrap_or(0))
    }

    /// How many request results are remembered.
    fn request_records(&self) -> Result<u64, GroveError> {
        self.table(Table::Requests)?.len().map_err(GroveError::storage)
    }

    /// What the member registry knows of server `id`.
    fn member(&self, id: u64) -> Result<Option<MemberRecord>, GroveError> {
        self.get(Table::Cluster, &keys::member_key(id), MemberRecord::decode)
    }

    /// The ids of the membership last applied (voters and learners), once one has been.
    /// The backup this cluster was restored from (`raft::backup`), if it was.
    fn restored_from(&self) -> Result<Option<String>, GroveError> {
        self.get(Table::Cluster, keys::restored_key(), |raw| Ok(String::from_utf8_lossy(raw).into_owned()))
    }

    fn membership(&self) -> Result<Option<Vec<u64>>, GroveError> {
        self.get(Table::Cluster, keys::membership_key(), |raw| {
            postcard::from_bytes(raw).map_err(|_| GroveError::internal("corrupt membership record"))
        })
    }

    /// Every registered member: (id, record).
    fn members(&self) -> Result<Vec<(u64, MemberRecord)>, GroveError> {
        let mut out = Vec::new();
        for item in self.table(Table::Cluster)?.range(&[1u8][..]..&[2u8][..]).map_err(GroveError::storage)? {
            let (k, v) = item.map_err(GroveError::storage)?;
            let id = k.value().get(1..9).and_then(|b| b.try_into().ok()).map(u64::from_be_bytes);
            let id = id.ok_or_else(|| GroveError::internal("corrupt member key"))?;
            out.push((id, MemberRecord::decode(v.value())?));
        }
        Ok(out)
    }

    /// Every quota, by path, at most `limit`.
    fn quotas(&self, limit: usize) -> Result<Vec<(String, QuotaRecord)>, GroveError> {
        let mut out = Vec::new();
        for item in self.table(Table::Quotas)?.iter().map_err(GroveError::storage)?.take(limit) {
            let (k, v) = item.map_err(GroveError::storage)?;
            out.push((String::from_utf8_lossy(k.value()).into_owned(), QuotaRecord::decode(v.value())?));
        }
        Ok(out)
    }
}
