//! Applying commands to the tree with ZooKeeper's rules.
//!
//! Every command runs against a staging overlay on top of the batch's write transaction
//! and is flushed only if it succeeds, so each command is all-or-nothing: a Multi that
//! fails at its third operation, a create whose parent turns out to be ephemeral, or a
//! storage error halfway leave the tree as it was. Applying is deterministic: it reads only
//! the tables, the entry's zxid and the time stamped in the entry.

use std::collections::{BTreeSet, HashMap};

use bytes::Bytes;
use redb::ReadableTable;

use super::acl::{self, Acl, Caller};
use super::command::*;
use super::locks::{self, LockKind, LockRecord, QueueRecord};
use super::node::{CreateMode, NodeRecord, SessionRecord, Stat};
use super::path;
use super::quota::{LimitsChange, QuotaRecord};
use super::tables::{WriteTables, storage_err};
use crate::error::GroveError;
use crate::storage::keys;

/// How long ended sessions are remembered, so late resumes learn they expired.
const ENDED_SESSION_RETENTION_MS: i64 = 60 * 60 * 1000;
/// Ended sessions forgotten per applied session command, bounding the work of one entry.
const ENDED_SESSION_PRUNE_BATCH: usize = 64;

/// True if a container or TTL node with this stat may be deleted at `now_ms`.
pub fn reapable(stat: &Stat, now_ms: i64) -> bool {
    if stat.num_children != 0 {
        return false;
    }
    if stat.mode.is_container() {
        // ZooKeeper reaps containers that have had children and have none left.
        return stat.cversion > 0;
    }
    stat.mode.is_ttl() && stat.mtime.saturating_add(stat.ttl_ms) <= now_ms
}

/// Applies the operations of one entry at `zxid`, each on its own and all-or-nothing.
///
/// The outer error is a storage failure (or a corrupt record): the batch must not be
/// committed, because another replica would apply the same entry successfully. Domain
/// failures (no node, bad version...) are committed results inside `Applied`.
pub fn apply(tables: &mut WriteTables<'_>, zxid: u64, cmd: &Command) -> Result<Applied, GroveError> {
    let mut applied = Applied::empty(zxid);
    for (position, op) in cmd.ops.iter().enumerate() {
        if position >= MAX_BATCH {
            applied
                .results
                .push(Err(GroveError::bad_args("", format!("an entry holds at most {MAX_BATCH} operations"))));
            continue;
        }
        let request = cmd.request_ids.get(position).copied().unwrap_or(0);
        if request != 0
            && let Some(first) = tables.requests.get(&request.to_be_bytes()[..]).map_err(storage_err)?
        {
            // A retry of a request already applied: answer as the first time did.
            let result: CommandResult = postcard::from_bytes(first.value()).map_err(GroveError::internal)?;
            drop(first);
            applied.results.push(result);
            continue;
        }
        let mut sessions = Vec::new();
        let mut staged = Staged::new(zxid, cmd.time_ms, position);
        let result = match run(tables, &mut staged, &mut sessions, session_id(zxid, position), cmd.time_ms, op)
            .and_then(|outcome| staged.settle(tables).map(|_| outcome))
        {
            Ok(outcome) => {
                let grants = std::mem::take(&mut staged.grants);
                for warning in std::mem::take(&mut staged.quota_warnings) {
                    // Soft limits: the write went through; operators hear of it.
                    tracing::warn!(zxid, "{warning}");
                    metrics::counter!("grove_quota_exceeded_total", "limit" => "soft").increment(1);
                }
                applied.events.extend(staged.flush(tables)?);
                applied.sessions.extend(sessions);
                applied.grants.extend(grants);
                Ok(outcome)
            }
            Err(e @ GroveError::Internal(_)) => return Err(e),
            Err(GroveError::MultiFailed { error, .. }) if matches!(*error, GroveError::Internal(_)) => {
                return Err(*error);
            }
            Err(e) => Err(e),
        };
        if request != 0 {
            let encoded = postcard::to_allocvec(&result).map_err(GroveError::internal)?;
            tables.requests.insert(&request.to_be_bytes()[..], &encoded[..]).map_err(storage_err)?;
        }
        applied.results.push(result);
    }
    if !cmd.request_ids.is_empty() {
        prune_requests(tables, cmd.time_ms)?;
    }
    Ok(applied)
}

/// Forgets request results older than the retention, oldest first, a bounded number per
/// entry. Request ids begin with their issuer's clock, so the oldest come first.
fn prune_requests(t: &mut WriteTables<'_>, now_ms: i64) -> Result<(), GroveError> {
    let horizon = (now_ms - REQUEST_RETENTION_MS).max(0) as u128;
    let end = (horizon << 64).to_be_bytes();
    let mut old = Vec::new();
    for item in t.requests.range(..&end[..]).map_err(storage_err)?.take(64) {
        let (k, _) = item.map_err(storage_err)?;
        old.push(k.value().to_vec());
    }
    for k in old {
        t.requests.remove(&k[..]).map_err(storage_err)?;
    }
    Ok(())
}

fn run(
    t: &mut WriteTables<'_>,
    s: &mut Staged,
    sessions: &mut Vec<SessionChange>,
    new_session_id: u64,
    time_ms: i64,
    op: &Op,
) -> CommandResult {
    match op {
        Op::Create(op) => {
            let (path, stat) = s.create(t, op)?;
            Ok(Outcome::Created { path, stat })
        }
        Op::Delete(op) => {
            s.delete(t, op)?;
            Ok(Outcome::Deleted)
        }
        Op::Set(op) => Ok(Outcome::Set { stat: s.set(t, op)? }),
        Op::Multi(ops) => {
            let mut out = Vec::with_capacity(ops.len());
            for (index, op) in ops.iter().enumerate() {
                let r = match op {
                    MultiOp::Create(c) => s.create(t, c).map(|(path, stat)| MultiOutcome::Created { path, stat }),
                    MultiOp::Delete(d) => s.delete(t, d).map(|_| MultiOutcome::Deleted),
                    MultiOp::Set(o) => s.set(t, o).map(|stat| MultiOutcome::Set { stat }),
                    MultiOp::Check { path, version } => s.check(t, path, *version).map(|_| MultiOutcome::Checked),
                    MultiOp::CheckFence { path, token } => s.check_fence(t, path, *token).map(|_| MultiOutcome::Fenced),
                };
                match r {
                    Ok(o) => out.push(o),
                    Err(error) => {
                        return Err(GroveError::MultiFailed { index, error: Box::new(error) });
                    }
                }
            }
            Ok(Outcome::Multi(out))
        }
        Op::OpenSession { timeout_ms, secret } => {
            if *timeout_ms <= 0 {
                return Err(GroveError::bad_args("", "session timeout must be positive"));
            }
            let rec = SessionRecord { timeout_ms: *timeout_ms, secret: *secret };
            s.opened_sessions.push((new_session_id, rec));
            sessions.push(SessionChange::Opened { id: new_session_id, timeout_ms: *timeout_ms, secret: *secret });
            Ok(Outcome::SessionOpened { session_id: new_session_id, timeout_ms: *timeout_ms, secret: *secret })
        }
        Op::CloseSession { session_id } => {
            if t.session(*session_id)?.is_none() {
                return Err(if t.session_ended(*session_id)? {
                    GroveError::SessionExpired { id: *session_id }
                } else {
                    GroveError::UnknownSession { id: *session_id }
                });
            }
            s.end_session(t, *session_id)?;
            sessions.push(SessionChange::Ended { id: *session_id });
            prune_ended_sessions(t, time_ms)?;
            Ok(Outcome::SessionClosed)
        }
        Op::ExpireSessions { session_ids } => {
            for &id in session_ids {
                if t.session(id)?.is_some() {
                    s.end_session(t, id)?;
                    sessions.push(SessionChange::Ended { id });
                }
            }
            prune_ended_sessions(t, time_ms)?;
            Ok(Outcome::Done)
        }
        Op::Reap { paths } => {
            for p in paths {
                if path::validate(p).is_err() || p == "/" {
                    continue;
                }
                if let Some(rec) = s.get(t, p)?
                    && reapable(&rec.stat, time_ms)
                {
                    s.remove_node(t, p, rec)?;
                }
            }
            Ok(Outcome::Done)
        }
        Op::Noop => Ok(Outcome::Done),
        Op::Lock(l) => s.lock(t, l),
        Op::SetAcl { path, acl, version } => Ok(Outcome::Set { stat: s.set_acl(t, path, acl, *version)? }),
        Op::SetQuota { path, change } => Ok(Outcome::Quota { record: s.set_quota(t, path, change)? }),
        Op::DeleteQuota { path } => {
            s.delete_quota(t, path)?;
            Ok(Outcome::Quota { record: None })
        }
        Op::As { caller, op } => {
            if matches!(**op, Op::As { .. }) {
                return Err(GroveError::bad_args("", "an operation has one caller"));
            }
            s.caller = caller.clone();
            run(t, s, sessions, new_session_id, time_ms, op)
        }
        Op::Unlock { node, session_id } => s.unlock(t, node, *session_id),
        Op::Proclaim { node, data, session_id } => {
            let rec = s.get_lock(t, node)?.filter(|r| r.granted && r.session == *session_id);
            let Some(rec) = rec else {
                return Err(GroveError::Fenced { path: node.clone(), token: 0 });
            };
            // Holding the leadership is the right to proclaim: the session's own node.
            s.caller = Caller::server();
            s.set(t, &SetOp { path: node.clone(), data: data.clone(), version: None })?;
            Ok(Outcome::Locked { nodes: vec![node.clone()], granted: true, token: rec.token })
        }
    }
}

fn prune_ended_sessions(t: &mut WriteTables<'_>, now_ms: i64) -> Result<(), GroveError> {
    let mut expired = Vec::new();
    // Session ids grow with the zxid, so the table is ordered by age: scanning from the
    // start finds the oldest first.
    for item in t.ended.iter().map_err(storage_err)?.take(ENDED_SESSION_PRUNE_BATCH) {
        let (k, v) = item.map_err(storage_err)?;
        let ended_at = i64::from_le_bytes(v.value().try_into().unwrap_or([0; 8]));
        if ended_at + ENDED_SESSION_RETENTION_MS < now_ms {
            expired.push(k.value().to_vec());
        }
    }
    for k in expired {
        t.ended.remove(&k[..]).map_err(storage_err)?;
    }
    Ok(())
}

/// Changes of one command, not yet written.
struct Staged {
    zxid: u64,
    time: i64,
    /// Path → new record (`None`: deleted). Reads see these before the tables.
    nodes: HashMap<String, Option<NodeRecord>>,
    /// Ephemeral index changes: (key, inserted?).
    ephemerals: Vec<(Vec<u8>, bool)>,
    /// Reaping-candidate index changes: (path, inserted?).
    expiring: Vec<(String, bool)>,
    opened_sessions: Vec<(u64, SessionRecord)>,
    ended_sessions: Vec<u64>,
    events: Vec<Event>,
    /// The operation's position in its entry (for fencing tokens).
    position: usize,
    /// Lock node records and queue settings changed by this command (`None`: removed).
    locks: HashMap<String, Option<LockRecord>>,
    queues: HashMap<String, Option<QueueRecord>>,
    /// Lock queues whose nodes changed: to settle before flushing.
    dirty: BTreeSet<String>,
    /// Lock nodes granted by this command.
    grants: Vec<(String, u64)>,
    /// Whose ACL rights the operation uses (anonymous unless it came wrapped in `Op::As`).
    caller: Caller,
    /// Quotas changed by this command (`None`: removed).
    quotas: HashMap<String, Option<QuotaRecord>>,
    /// Soft quota limits this command went past, reported once it is applied.
    quota_warnings: Vec<String>,
}

impl Staged {
    fn new(zxid: u64, time: i64, position: usize) -> Self {
        Staged {
            zxid,
            time,
            nodes: HashMap::new(),
            ephemerals: Vec::new(),
            expiring: Vec::new(),
            opened_sessions: Vec::new(),
            ended_sessions: Vec::new(),
            events: Vec::new(),
            position,
            locks: HashMap::new(),
            queues: HashMap::new(),
            dirty: BTreeSet::new(),
            grants: Vec::new(),
            caller: Caller::default(),
            quotas: HashMap::new(),
            quota_warnings: Vec::new(),
        }
    }

    fn get(&self, t: &WriteTables<'_>, path: &str) -> Result<Option<NodeRecord>, GroveError> {
        match self.nodes.get(path) {
            Some(staged) => Ok(staged.clone()),
            None => t.node(path),
        }
    }

    fn put(&mut self, path: &str, rec: NodeRecord) {
        self.nodes.insert(path.to_string(), Some(rec));
    }

    fn event(&mut self, kind: EventKind, path: &str, stat: Stat, data: Bytes, acl: &Acl) {
        self.events.push(Event { kind, path: path.to_string(), stat, data, acl: acl.clone() });
    }

    fn create(&mut self, t: &WriteTables<'_>, op: &CreateOp) -> Result<(String, Stat), GroveError> {
        let mode = op.mode;
        if mode.is_sequential() {
            path::validate_sequential_prefix(&op.path)?;
        } else {
            path::validate(&op.path)?;
        }
        if mode.is_ttl() != (op.ttl_ms > 0) {
            return Err(GroveError::bad_args(
                &op.path,
                if mode.is_ttl() { "TTL modes need ttl_ms > 0" } else { "ttl_ms is only valid with a TTL mode" },
            ));
        }
        if mode.is_ephemeral() {
            if op.session_id == 0 {
                return Err(GroveError::bad_args(&op.path, "ephemeral nodes need a session"));
            }
            if t.session(op.session_id)?.is_none() {
                return Err(GroveError::SessionExpired { id: op.session_id });
            }
        }
        if op.path == "/" && !mode.is_sequential() {
            return Err(GroveError::NodeExists { path: op.path.clone() });
        }
        // For a sequential prefix ending in '/', the parent is the prefix without it.
        let parent_path = match op.path.strip_suffix('/') {
            Some("") => "/",
            Some(p) if mode.is_sequential() => p,
            _ => path::parent(&op.path),
        };
        let mut parent = match self.get(t, parent_path)? {
            Some(p) => p,
            None if op.create_parents => self.create_ancestors(t, parent_path, &op.path)?,
            None => return Err(GroveError::no_node(&op.path)),
        };
        self.caller.check(&parent.acl, acl::CREATE, &op.path)?;
        if parent.stat.mode.is_ephemeral() {
            return Err(GroveError::NoChildrenForEphemerals { path: op.path.clone() });
        }
        let node_acl = acl::resolve(&op.acl, &self.caller, &op.path)?;
        let path = if mode.is_sequential() {
            let counter = parent.stat.cversion;
            if !(0..i32::MAX).contains(&counter) {
                return Err(GroveError::SequenceOverflow { path: parent_path.to_string() });
            }
            let p = path::sequential(&op.path, counter);
            path::validate(&p)?;
            p
        } else {
            op.path.clone()
        };
        if self.get(t, &path)?.is_some() {
            return Err(GroveError::NodeExists { path });
        }
        let stat = Stat {
            czxid: self.zxid,
            mzxid: self.zxid,
            pzxid: self.zxid,
            ctime: self.time,
            mtime: self.time,
            version: 0,
            cversion: 0,
            aversion: 0,
            ephemeral_owner: if mode.is_ephemeral() { op.session_id } else { 0 },
            data_length: op.data.len() as i32,
            num_children: 0,
            mode,
            ttl_ms: op.ttl_ms,
        };
        self.charge(t, &path, 1, op.data.len() as i64)?;
        self.event(EventKind::Created, &path, stat, op.data.clone(), &node_acl);
        self.put(&path, NodeRecord { stat, acl: node_acl, data: op.data.clone() });
        if mode.is_ephemeral() {
            self.ephemerals.push((keys::ephemeral_key(op.session_id, &path), true));
        }
        if mode.is_expiring() {
            self.expiring.push((path.clone(), true));
        }
        parent.stat.cversion = parent.stat.cversion.wrapping_add(1);
        parent.stat.num_children += 1;
        parent.stat.pzxid = self.zxid;
        self.event(EventKind::ChildrenChanged, parent_path, parent.stat, Bytes::new(), &parent.acl);
        self.put(parent_path, parent);
        Ok((path, stat))
    }

    /// Creates the missing ancestors of a node as persistent nodes, top down; returns the
    /// record of `parent_path`.
    fn create_ancestors(
        &mut self,
        t: &WriteTables<'_>,
        parent_path: &str,
        for_path: &str,
    ) -> Result<NodeRecord, GroveError> {
        let mut chain: Vec<&str> = path::ancestors(parent_path).collect();
        chain.push(parent_path);
        for p in chain {
            if self.get(t, p)?.is_none() {
                self.create(
                    t,
                    &CreateOp {
                        path: p.to_string(),
                        data: Bytes::new(),
                        mode: CreateMode::Persistent,
                        ttl_ms: 0,
                        create_parents: false,
                        session_id: 0,
                        acl: self.inherited_acl(t, p)?,
                    },
                )
                .map_err(|e| match e {
                    GroveError::NoChildrenForEphemerals { .. } => {
                        GroveError::NoChildrenForEphemerals { path: for_path.to_string() }
                    }
                    e => e,
                })?;
            }
        }
        self.get(t, parent_path)?.ok_or_else(|| GroveError::internal("ancestor creation left no parent"))
    }

    /// The ACL a node Grove creates on a client's behalf (a missing parent, a lock's
    /// directory) takes: its parent's, so a protected subtree stays protected.
    fn inherited_acl(&self, t: &WriteTables<'_>, p: &str) -> Result<Acl, GroveError> {
        Ok(self.get(t, path::parent(p))?.map(|r| r.acl).unwrap_or_default())
    }

    fn delete(&mut self, t: &WriteTables<'_>, op: &DeleteOp) -> Result<(), GroveError> {
        path::validate(&op.path)?;
        if op.path == "/" {
            return Err(GroveError::bad_args("/", "the root node cannot be deleted"));
        }
        let rec = self.get(t, &op.path)?.ok_or_else(|| GroveError::no_node(&op.path))?;
        let parent = self.get(t, path::parent(&op.path))?.map(|p| p.acl).unwrap_or_default();
        self.caller.check(&parent, acl::DELETE, &op.path)?;
        check_version(&op.path, op.version, rec.stat.version)?;
        if rec.stat.num_children > 0 {
            return Err(GroveError::NotEmpty { path: op.path.clone() });
        }
        self.remove_node(t, &op.path, rec)
    }

    /// Deletes a childless node and updates its parent.
    fn remove_node(&mut self, t: &WriteTables<'_>, path: &str, rec: NodeRecord) -> Result<(), GroveError> {
        let parent_path = path::parent(path);
        if let Some(lock) = self.get_lock(t, path)? {
            // A lock node going away (released, withdrawn, its session ended, deleted by
            // hand): its queue moves on, and a multi-lock's other holds go with it.
            self.locks.insert(path.to_string(), None);
            self.dirty.insert(parent_path.to_string());
            for sibling in &lock.group {
                if self.get_lock(t, sibling)?.is_some()
                    && let Some(srec) = self.get(t, sibling)?
                {
                    self.remove_node(t, sibling, srec)?;
                }
            }
        }
        if self.get_queue(t, path)?.is_some() {
            self.queues.insert(path.to_string(), None);
        }
        if self.any_quota(t)? && self.get_quota(t, path)?.is_some() {
            // The quota's root goes: the quota goes with it.
            self.quotas.insert(path.to_string(), None);
        } else {
            self.charge(t, path, -1, -i64::from(rec.stat.data_length))?;
        }
        let mut parent =
            self.get(t, parent_path)?.ok_or_else(|| GroveError::internal(format!("node {path} has no parent")))?;
        self.nodes.insert(path.to_string(), None);
        if rec.stat.mode.is_ephemeral() {
            self.ephemerals.push((keys::ephemeral_key(rec.stat.ephemeral_owner, path), false));
        }
        if rec.stat.mode.is_expiring() {
            self.expiring.push((path.to_string(), false));
        }
        parent.stat.cversion = parent.stat.cversion.wrapping_add(1);
        parent.stat.num_children -= 1;
        parent.stat.pzxid = self.zxid;
        self.event(EventKind::Deleted, path, rec.stat, Bytes::new(), &rec.acl);
        self.event(EventKind::ChildrenChanged, parent_path, parent.stat, Bytes::new(), &parent.acl);
        self.put(parent_path, parent);
        Ok(())
    }

    fn set(&mut self, t: &WriteTables<'_>, op: &SetOp) -> Result<Stat, GroveError> {
        path::validate(&op.path)?;
        let mut rec = self.get(t, &op.path)?.ok_or_else(|| GroveError::no_node(&op.path))?;
        self.caller.check(&rec.acl, acl::WRITE, &op.path)?;
        check_version(&op.path, op.version, rec.stat.version)?;
        self.charge(t, &op.path, 0, op.data.len() as i64 - i64::from(rec.stat.data_length))?;
        rec.stat.version = rec.stat.version.wrapping_add(1);
        rec.stat.mzxid = self.zxid;
        rec.stat.mtime = self.time;
        rec.stat.data_length = op.data.len() as i32;
        rec.data = op.data.clone();
        let stat = rec.stat;
        self.event(EventKind::DataChanged, &op.path, stat, op.data.clone(), &rec.acl);
        self.put(&op.path, rec);
        Ok(stat)
    }

    fn check(&mut self, t: &WriteTables<'_>, p: &str, version: Option<i32>) -> Result<(), GroveError> {
        path::validate(p)?;
        let rec = self.get(t, p)?.ok_or_else(|| GroveError::no_node(p))?;
        self.caller.check(&rec.acl, acl::READ, p)?;
        check_version(p, version, rec.stat.version)
    }

    /// Replaces a node's ACL and bumps its aversion. Like ZooKeeper's setACL it fires no
    /// watch and leaves mzxid alone: neither the data nor the children changed.
    fn set_acl(&mut self, t: &WriteTables<'_>, p: &str, new: &Acl, version: Option<i32>) -> Result<Stat, GroveError> {
        path::validate(p)?;
        let mut rec = self.get(t, p)?.ok_or_else(|| GroveError::no_node(p))?;
        self.caller.check(&rec.acl, acl::ADMIN, p)?;
        if let Some(v) = version
            && v != -1
            && v != rec.stat.aversion
        {
            return Err(GroveError::BadVersion { path: p.to_string(), expected: v, actual: rec.stat.aversion });
        }
        rec.acl = acl::resolve(new, &self.caller, p)?;
        rec.stat.aversion = rec.stat.aversion.wrapping_add(1);
        let stat = rec.stat;
        self.put(p, rec);
        Ok(stat)
    }

    fn any_quota(&self, t: &WriteTables<'_>) -> Result<bool, GroveError> {
        Ok(!self.quotas.is_empty() || t.has_quotas()?)
    }

    fn get_quota(&self, t: &WriteTables<'_>, root: &str) -> Result<Option<QuotaRecord>, GroveError> {
        match self.quotas.get(root) {
            Some(staged) => Ok(*staged),
            None => t.quota(root),
        }
    }

    /// Charges a change of nodes and bytes at `path` to the quota governing it, if any.
    fn charge(&mut self, t: &WriteTables<'_>, path: &str, count: i64, bytes: i64) -> Result<(), GroveError> {
        if (count == 0 && bytes == 0) || !self.any_quota(t)? {
            return Ok(());
        }
        for root in path::ancestors(path).chain(std::iter::once(path)) {
            if let Some(mut q) = self.get_quota(t, root)? {
                if let Some(warning) = q.charge(root, path, count, bytes)? {
                    self.quota_warnings.push(warning);
                }
                self.quotas.insert(root.to_string(), Some(q));
                // Quotas do not nest: this is the only one.
                return Ok(());
            }
        }
        Ok(())
    }

    /// Quotas are the operators' tool: changing one needs ADMIN on the root node.
    fn check_quota_admin(&self, t: &WriteTables<'_>) -> Result<(), GroveError> {
        let root = self.get(t, "/")?.map(|r| r.acl).unwrap_or_default();
        self.caller.check(&root, acl::ADMIN, "/")
    }

    fn set_quota(
        &mut self,
        t: &WriteTables<'_>,
        p: &str,
        change: &LimitsChange,
    ) -> Result<Option<QuotaRecord>, GroveError> {
        path::validate(p)?;
        if p == "/" {
            return Err(GroveError::bad_args(p, "the root cannot have a quota: set it on a subtree"));
        }
        self.check_quota_admin(t)?;
        self.get(t, p)?.ok_or_else(|| GroveError::no_node(p))?;
        let existing = self.get_quota(t, p)?;
        if existing.is_none() {
            for above in path::ancestors(p) {
                if t.quota(above)?.is_some() {
                    return Err(GroveError::bad_args(p, format!("{above} already has a quota; quotas do not nest")));
                }
            }
            if let Some(below) = t.quotas_below(p)?.first() {
                return Err(GroveError::bad_args(p, format!("{below} already has a quota; quotas do not nest")));
            }
        }
        let (count, bytes) = match existing {
            Some(q) => (q.count, q.bytes),
            None => t.subtree_usage(p)?,
        };
        let limits = change.apply(existing.map(|q| q.limits).unwrap_or_default(), p)?;
        let record = (!limits.is_empty()).then_some(QuotaRecord { limits, count, bytes });
        self.quotas.insert(p.to_string(), record);
        Ok(record)
    }

    fn delete_quota(&mut self, t: &WriteTables<'_>, p: &str) -> Result<(), GroveError> {
        path::validate(p)?;
        self.check_quota_admin(t)?;
        if self.get_quota(t, p)?.is_none() {
            return Err(GroveError::bad_args(p, format!("there is no quota on {p}")));
        }
        self.quotas.insert(p.to_string(), None);
        Ok(())
    }

    /// Deletes a session's ephemerals (firing their watches) and forgets the session.
    fn end_session(&mut self, t: &WriteTables<'_>, id: u64) -> Result<(), GroveError> {
        for p in t.session_ephemerals(id)? {
            if let Some(rec) = self.get(t, &p)? {
                self.remove_node(t, &p, rec)?;
            }
        }
        self.ended_sessions.push(id);
        Ok(())
    }

    /// Writes the staged changes; returns the events in the order they happened.
    fn flush(self, t: &mut WriteTables<'_>) -> Result<Vec<Event>, GroveError> {
        for (p, rec) in &self.nodes {
            let key = keys::node_key(p);
            match rec {
                Some(rec) => t.nodes.insert(&key[..], &rec.encode()[..]).map(|_| ()),
                None => t.nodes.remove(&key[..]).map(|_| ()),
            }
            .map_err(storage_err)?;
        }
        for (key, insert) in &self.ephemerals {
            if *insert {
                t.ephemerals.insert(&key[..], &[][..]).map_err(storage_err)?;
            } else {
                t.ephemerals.remove(&key[..]).map_err(storage_err)?;
            }
        }
        for (p, insert) in &self.expiring {
            if *insert {
                t.expiring.insert(p.as_bytes(), &[][..]).map_err(storage_err)?;
            } else {
                t.expiring.remove(p.as_bytes()).map_err(storage_err)?;
            }
        }
        for (node, rec) in &self.locks {
            match rec {
                Some(rec) => {
                    let raw = postcard::to_allocvec(rec).map_err(GroveError::internal)?;
                    t.locks.insert(node.as_bytes(), &raw[..]).map(|_| ())
                }
                None => t.locks.remove(node.as_bytes()).map(|_| ()),
            }
            .map_err(storage_err)?;
        }
        for (dir, rec) in &self.queues {
            match rec {
                Some(rec) => {
                    let raw = postcard::to_allocvec(rec).map_err(GroveError::internal)?;
                    t.queues.insert(dir.as_bytes(), &raw[..]).map(|_| ())
                }
                None => t.queues.remove(dir.as_bytes()).map(|_| ()),
            }
            .map_err(storage_err)?;
        }
        for (root, rec) in &self.quotas {
            match rec {
                Some(rec) => t.quotas.insert(root.as_bytes(), &rec.encode()[..]).map(|_| ()),
                None => t.quotas.remove(root.as_bytes()).map(|_| ()),
            }
            .map_err(storage_err)?;
        }
        for (id, rec) in &self.opened_sessions {
            t.sessions.insert(&id.to_be_bytes()[..], &rec.encode()[..]).map_err(storage_err)?;
        }
        for id in &self.ended_sessions {
            t.sessions.remove(&id.to_be_bytes()[..]).map_err(storage_err)?;
            t.ended.insert(&id.to_be_bytes()[..], &self.time.to_le_bytes()[..]).map_err(storage_err)?;
        }
        Ok(self.events)
    }
}

impl Staged {
    fn get_lock(&self, t: &WriteTables<'_>, node: &str) -> Result<Option<LockRecord>, GroveError> {
        match self.locks.get(node) {
            Some(staged) => Ok(staged.clone()),
            None => t.lock(node),
        }
    }

    fn get_queue(&self, t: &WriteTables<'_>, dir: &str) -> Result<Option<QueueRecord>, GroveError> {
        match self.queues.get(dir) {
            Some(staged) => Ok(staged.clone()),
            None => t.queue(dir),
        }
    }

    /// A directory's children as this command leaves them.
    fn children(&self, t: &WriteTables<'_>, dir: &str) -> Result<Vec<String>, GroveError> {
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

    /// A queue's lock nodes in line order.
    fn lock_queue(&self, t: &WriteTables<'_>, dir: &str) -> Result<Vec<(String, LockRecord)>, GroveError> {
        let mut out = Vec::new();
        for name in self.children(t, dir)? {
            let node = path::join(dir, &name);
            if let Some(rec) = self.get_lock(t, &node)? {
                out.push((node, rec));
            }
        }
        out.sort_by_key(|(n, _)| locks::sequence(n));
        Ok(out)
    }

    /// Creates a lock path (and a semaphore's lease directory) as containers: they go away
    /// once nobody waits or holds.
    fn ensure_queue_dir(&mut self, t: &WriteTables<'_>, lock: &str, dir: &str) -> Result<(), GroveError> {
        for p in [lock, dir] {
            if self.get(t, p)?.is_some() {
                continue;
            }
            let parent = path::parent(p);
            if self.get(t, parent)?.is_none() {
                self.create_ancestors(t, parent, p)?;
            }
            self.create(
                t,
                &CreateOp {
                    path: p.to_string(),
                    data: Bytes::new(),
                    mode: CreateMode::Container,
                    ttl_ms: 0,
                    create_parents: false,
                    session_id: 0,
                    acl: self.inherited_acl(t, p)?,
                },
            )?;
        }
        Ok(())
    }

    fn lock(&mut self, t: &WriteTables<'_>, op: &LockOp) -> CommandResult {
        let first = op.paths.first().cloned().unwrap_or_default();
        if op.session_id == 0 {
            return Err(GroveError::bad_args(
                &first,
                "locks are held by a session: open one and pass grove-session-id",
            ));
        }
        if t.session(op.session_id)?.is_none() {
            return Err(GroveError::SessionExpired { id: op.session_id });
        }
        if op.paths.is_empty() {
            return Err(GroveError::bad_args("", "a lock request names at least one path"));
        }
        if op.paths.len() > 1 && op.kind != LockKind::Mutex {
            return Err(GroveError::bad_args(&first, "a multi-lock is a set of mutexes"));
        }
        let mut seen = BTreeSet::new();
        for p in &op.paths {
            path::validate(p)?;
            if p == "/" {
                return Err(GroveError::bad_args(p, "the root cannot be a lock"));
            }
            if !seen.insert(p.as_str()) {
                return Err(GroveError::bad_args(p, "a multi-lock names each path once"));
            }
        }
        let permits = if op.kind == LockKind::Semaphore { op.permits.max(1) } else { 1 };
        // Reentrancy, and the one forbidden move of a read/write lock.
        if op.paths.len() == 1 {
            let dir = op.kind.queue_dir(&first);
            for (node, mut rec) in self.lock_queue(t, &dir)? {
                if rec.session != op.session_id || rec.owner != op.owner {
                    continue;
                }
                if rec.kind == LockKind::Read && op.kind == LockKind::Write {
                    return Err(GroveError::bad_args(
                        &first,
                        "a read lock cannot be upgraded to a write lock: release the read lock first",
                    ));
                }
                if rec.kind == op.kind && op.reentrant && rec.reentrant {
                    rec.holds += 1;
                    let (granted, token) = (rec.granted, rec.token);
                    self.locks.insert(node.clone(), Some(rec));
                    return Ok(Outcome::Locked { nodes: vec![node], granted, token });
                }
            }
        }
        let mut nodes = Vec::new();
        for p in &op.paths {
            let dir = op.kind.queue_dir(p);
            match self.get_queue(t, &dir)? {
                Some(q) if q.family != op.kind.family() => {
                    return Err(GroveError::bad_args(p, format!("{p} is already a lock of another kind")));
                }
                Some(q) if op.kind == LockKind::Semaphore && op.max_leases != 0 && q.max_leases != op.max_leases => {
                    return Err(GroveError::bad_args(
                        p,
                        format!("the semaphore {p} has {} leases, not {}", q.max_leases, op.max_leases),
                    ));
                }
                Some(q) if permits > q.max_leases && op.kind == LockKind::Semaphore => {
                    return Err(GroveError::bad_args(
                        p,
                        format!("{permits} leases asked of a semaphore of {}", q.max_leases),
                    ));
                }
                Some(_) => {}
                None => {
                    if op.kind == LockKind::Semaphore && (op.max_leases == 0 || permits > op.max_leases) {
                        return Err(GroveError::bad_args(p, "a new semaphore needs max_leases >= the leases asked"));
                    }
                    self.queues
                        .insert(dir.clone(), Some(QueueRecord { family: op.kind.family(), max_leases: op.max_leases }));
                }
            }
            self.ensure_queue_dir(t, p, &dir)?;
            let (node, _) = self.create(
                t,
                &CreateOp {
                    path: path::join(&dir, op.kind.prefix()),
                    data: op.data.clone(),
                    mode: CreateMode::EphemeralSequential,
                    ttl_ms: 0,
                    create_parents: false,
                    session_id: op.session_id,
                    acl: self.get(t, &dir)?.map(|d| d.acl).unwrap_or_default(),
                },
            )?;
            nodes.push(node);
            self.dirty.insert(dir);
        }
        for node in &nodes {
            let group = nodes.iter().filter(|n| *n != node).cloned().collect();
            let rec = LockRecord {
                kind: op.kind,
                session: op.session_id,
                owner: op.owner.clone(),
                reentrant: op.reentrant,
                holds: 1,
                permits,
                granted: false,
                token: 0,
                group,
            };
            self.locks.insert(node.clone(), Some(rec));
        }
        self.settle(t)?;
        let rec = self.get_lock(t, &nodes[0])?.ok_or_else(|| GroveError::internal("lock record vanished"))?;
        Ok(Outcome::Locked { nodes, granted: rec.granted, token: rec.token })
    }

    fn unlock(&mut self, t: &WriteTables<'_>, node: &str, session_id: u64) -> CommandResult {
        path::validate(node)?;
        let Some(mut rec) = self.get_lock(t, node)? else {
            return Ok(Outcome::Unlocked { released: false });
        };
        if rec.session != session_id {
            return Err(GroveError::bad_args(node, format!("the lock node {node} belongs to another session")));
        }
        if rec.holds > 1 {
            rec.holds -= 1;
            self.locks.insert(node.to_string(), Some(rec));
            return Ok(Outcome::Unlocked { released: true });
        }
        if let Some(n) = self.get(t, node)? {
            self.remove_node(t, node, n)?;
        }
        Ok(Outcome::Unlocked { released: true })
    }

    fn check_fence(&mut self, t: &WriteTables<'_>, lock: &str, token: u64) -> Result<(), GroveError> {
        path::validate(lock)?;
        if let Some(rec) = self.get(t, lock)? {
            self.caller.check(&rec.acl, acl::READ, lock)?;
        }
        for dir in [lock.to_string(), LockKind::Semaphore.queue_dir(lock)] {
            if self.lock_queue(t, &dir)?.iter().any(|(_, r)| r.granted && r.token == token) {
                return Ok(());
            }
        }
        Err(GroveError::Fenced { path: lock.to_string(), token })
    }

    /// Is every node of a multi-lock first in line in its own queue?
    fn group_ready(&self, t: &WriteTables<'_>, rec: &LockRecord) -> Result<bool, GroveError> {
        for sibling in &rec.group {
            let queue = self.lock_queue(t, path::parent(sibling))?;
            if queue.first().map(|(n, _)| n.as_str()) != Some(sibling.as_str()) {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Grants whatever the changed queues now allow.
    fn settle(&mut self, t: &WriteTables<'_>) -> Result<(), GroveError> {
        while let Some(dir) = self.dirty.pop_first() {
            let queue = self.lock_queue(t, &dir)?;
            let Some((_, first)) = queue.first() else { continue };
            let max_leases = self.get_queue(t, &dir)?.map(|q| q.max_leases).unwrap_or(0);
            let ready = if first.group.is_empty() { true } else { self.group_ready(t, first)? };
            let held = locks::holders(&queue, max_leases, |_| ready);
            for ((node, rec), held) in queue.into_iter().zip(held) {
                if held && !rec.granted {
                    let token = locks::token(self.zxid, self.position, self.grants.len());
                    for n in std::iter::once(node).chain(rec.group.iter().cloned()) {
                        if let Some(mut r) = self.get_lock(t, &n)? {
                            r.granted = true;
                            r.token = token;
                            self.locks.insert(n.clone(), Some(r));
                            self.grants.push((n, token));
                        }
                    }
                }
            }
        }
        Ok(())
    }
}

fn check_version(path: &str, expected: Option<i32>, actual: i32) -> Result<(), GroveError> {
    match expected {
        Some(v) if v != actual => Err(GroveError::BadVersion { path: path.to_string(), expected: v, actual }),
        _ => Ok(()),
    }
}
