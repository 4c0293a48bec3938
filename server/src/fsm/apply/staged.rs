//! The overlay one write runs against: reads see its own changes before the tables, and
//! nothing reaches the tables unless the whole write succeeded.

use std::collections::{BTreeSet, HashMap};

use bytes::Bytes;

use crate::error::GroveError;
use crate::fsm::acl::{Acl, Caller};
use crate::fsm::command::{Applied, Event, EventKind, SessionChange};
use crate::fsm::locks::{self, LockRecord, QueueRecord};
use crate::fsm::path;
use crate::fsm::quota::QuotaRecord;
use crate::fsm::session::SessionRecord;
use crate::fsm::znode::{Stat, Znode};
use crate::storage::access::{StateTables, Table};
use crate::storage::keys;
use crate::storage::write::WriteTables;

/// Changes of one write, not yet written.
pub(super) struct Staged {
    pub zxid: u64,
    pub time: i64,
    /// The write's position in its entry (session ids).
    pub position: usize,
    /// Whose rights the write uses, and the session it acts for.
    pub caller: Caller,
    /// Path → new record (`None`: deleted). Reads see these before the tables.
    pub nodes: HashMap<String, Option<Znode>>,
    /// Ephemeral index changes: (key, inserted?).
    pub ephemerals: Vec<(Vec<u8>, bool)>,
    /// Reaping-candidate index changes: (path, inserted?).
    pub expiring: Vec<(String, bool)>,
    pub opened_sessions: Vec<(u64, SessionRecord)>,
    pub ended_sessions: Vec<u64>,
    pub session_changes: Vec<SessionChange>,
    pub events: Vec<Event>,
    /// Lock node records and queue settings changed by this write (`None`: removed).
    pub locks: HashMap<String, Option<LockRecord>>,
    pub queues: HashMap<String, Option<QueueRecord>>,
    /// Lock queues whose nodes changed: to settle before flushing.
    pub dirty: BTreeSet<String>,
    /// Lock nodes granted by this write, with their tokens.
    pub grants: Vec<(String, u64)>,
    /// Grants the entry's earlier writes made: this write's count on from there.
    pub grant_base: usize,
    /// Quotas changed by this write (`None`: removed).
    pub quotas: HashMap<String, Option<QuotaRecord>>,
    /// Soft quota limits this write went past, reported once it is applied.
    pub quota_warnings: Vec<String>,
    /// Cluster table changes: (key, value; `None` removes).
    pub cluster: Vec<(Vec<u8>, Option<Vec<u8>>)>,
}

impl Staged {
    pub fn new(zxid: u64, time: i64, position: usize, caller: Caller) -> Self {
        Staged {
            zxid,
            time,
            position,
            caller,
            nodes: HashMap::new(),
            ephemerals: Vec::new(),
            expiring: Vec::new(),
            opened_sessions: Vec::new(),
            ended_sessions: Vec::new(),
            session_changes: Vec::new(),
            events: Vec::new(),
            locks: HashMap::new(),
            queues: HashMap::new(),
            dirty: BTreeSet::new(),
            grants: Vec::new(),
            grant_base: 0,
            quotas: HashMap::new(),
            quota_warnings: Vec::new(),
            cluster: Vec::new(),
        }
    }

    pub fn get(&self, t: &WriteTables<'_>, path: &str) -> Result<Option<Znode>, GroveError> {
        match self.nodes.get(path) {
            Some(staged) => Ok(staged.clone()),
            None => t.node(path),
        }
    }

    pub fn put(&mut self, path: &str, rec: Znode) {
        self.nodes.insert(path.to_string(), Some(rec));
    }

    pub fn event(&mut self, kind: EventKind, path: &str, stat: Stat, data: Bytes, acl: &Acl) {
        self.events.push(Event { kind, path: path.to_string(), stat, data, acl: acl.clone() });
    }

    pub fn get_lock(&self, t: &WriteTables<'_>, node: &str) -> Result<Option<LockRecord>, GroveError> {
        match self.locks.get(node) {
            Some(staged) => Ok(staged.clone()),
            None => t.lock(node),
        }
    }

    pub fn get_queue(&self, t: &WriteTables<'_>, dir: &str) -> Result<Option<QueueRecord>, GroveError> {
        match self.queues.get(dir) {
            Some(staged) => Ok(staged.clone()),
            None => t.queue(dir),
        }
    }

    pub fn get_quota(&self, t: &WriteTables<'_>, root: &str) -> Result<Option<QuotaRecord>, GroveError> {
        match self.quotas.get(root) {
            Some(staged) => Ok(*staged),
            None => t.quota(root),
        }
    }

    /// A directory's children as this write leaves them.
    pub fn children(&self, t: &WriteTables<'_>, dir: &str) -> Result<Vec<String>, GroveError> {
        let mut names: BTreeSet<String> = t.child_names(dir)?.into_iter().collect();
        for (p, rec) in &self.nodes {
            if p != "/" && path::parent(p) == dir {
                let name = path::split(p).1.to_string();
                match rec {
                    Some(_) => names.insert(name),
                    None => names.remove(&name),
                };
            }
        }
        Ok(names.into_iter().collect())
    }

    /// A queue's lock nodes in line order, as this write leaves them.
    pub fn lock_queue(&self, t: &WriteTables<'_>, dir: &str) -> Result<Vec<(String, LockRecord)>, GroveError> {
        locks::in_line(dir, self.children(t, dir)?, |node| self.get_lock(t, node))
    }

    /// Writes the staged changes and adds what they produced to `applied`: events in the
    /// order they happened, session changes, grants.
    pub fn flush(self, t: &mut WriteTables<'_>, applied: &mut Applied) -> Result<(), GroveError> {
        let mut writes: Vec<(Table, Vec<u8>, Option<Vec<u8>>)> = Vec::new();
        for (p, rec) in &self.nodes {
            writes.push((Table::Nodes, keys::node_key(p), rec.as_ref().map(|r| r.encode())));
        }
        for (key, insert) in self.ephemerals {
            writes.push((Table::Ephemerals, key, insert.then(Vec::new)));
        }
        for (p, insert) in self.expiring {
            writes.push((Table::Expiring, p.into_bytes(), insert.then(Vec::new)));
        }
        for (node, rec) in &self.locks {
            writes.push((Table::Locks, node.clone().into_bytes(), rec.as_ref().map(|r| r.encode())));
        }
        for (dir, rec) in &self.queues {
            writes.push((Table::Queues, dir.clone().into_bytes(), rec.as_ref().map(|r| r.encode())));
        }
        for (root, rec) in &self.quotas {
            writes.push((Table::Quotas, root.clone().into_bytes(), rec.as_ref().map(|r| r.encode())));
        }
        for (id, rec) in &self.opened_sessions {
            writes.push((Table::Sessions, id.to_be_bytes().to_vec(), Some(rec.encode())));
        }
        for id in &self.ended_sessions {
            writes.push((Table::Sessions, id.to_be_bytes().to_vec(), None));
            writes.push((Table::Ended, id.to_be_bytes().to_vec(), Some(self.time.to_le_bytes().to_vec())));
        }
        for (key, value) in self.cluster {
            writes.push((Table::Cluster, key, value));
        }
        for (table, key, value) in &writes {
            t.put(*table, key, value.as_deref())?;
        }
        for warning in self.quota_warnings {
            // Soft limits: the write went through; operators hear of it.
            tracing::warn!(zxid = self.zxid, "{warning}");
            metrics::counter!("grove_quota_exceeded_total", "limit" => "soft").increment(1);
        }
        applied.events.extend(self.events);
        applied.sessions.extend(self.session_changes);
        applied.grants.extend(self.grants);
        Ok(())
    }
}
