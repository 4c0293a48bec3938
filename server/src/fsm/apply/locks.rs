//! Locks, read/write locks, semaphores, multi-locks and elections: queued as ephemeral
//! sequential nodes, granted FIFO when a queue changes, each grant with its fencing token.

use std::collections::BTreeSet;

use bytes::Bytes;

use super::staged::Staged;
use crate::error::GroveError;
use crate::fsm::acl::{self, Caller};
use crate::fsm::command::{CommandResult, CreateOp, LockOp, Outcome, SetOp};
use crate::fsm::locks::{self, LockKind, LockRecord, QueueRecord};
use crate::fsm::path;
use crate::fsm::znode::CreateMode;
use crate::storage::access::StateTables;
use crate::storage::write::WriteTables;

impl Staged {
    /// Creates a lock path (and a semaphore's lease directory) as containers: they go away
    /// once nobody waits or holds.
    pub(super) fn ensure_queue_dir(&mut self, t: &WriteTables<'_>, lock: &str, dir: &str) -> Result<(), GroveError> {
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
                    acl: self.inherited_acl(t, p)?,
                },
            )?;
        }
        Ok(())
    }

    pub(super) fn lock(&mut self, t: &WriteTables<'_>, op: &LockOp) -> CommandResult {
        let first = op.paths.first().cloned().unwrap_or_default();
        let session = self.caller.session;
        if session == 0 {
            return Err(GroveError::bad_args(
                &first,
                "locks are held by a session: open one and pass grove-session-id",
            ));
        }
        if t.session(session)?.is_none() {
            return Err(GroveError::SessionExpired { id: session });
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
                if rec.session != session || rec.owner != op.owner {
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
                session,
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

    pub(super) fn unlock(&mut self, t: &WriteTables<'_>, node: &str) -> CommandResult {
        let session_id = self.caller.session;
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

    /// Sets the value of an election's leader node: only its own session, while it holds.
    pub(super) fn proclaim(&mut self, t: &WriteTables<'_>, node: &str, data: &Bytes) -> CommandResult {
        let rec = self.get_lock(t, node)?.filter(|r| r.granted && r.session == self.caller.session);
        let Some(rec) = rec else {
            return Err(GroveError::Fenced { path: node.to_string(), token: 0 });
        };
        // Holding the leadership is the right to proclaim: the session's own node.
        let session = self.caller.session;
        self.caller = Caller::server();
        self.caller.session = session;
        self.set(t, &SetOp { path: node.to_string(), data: data.clone(), version: None })?;
        Ok(Outcome::Locked { nodes: vec![node.to_string()], granted: true, token: rec.token })
    }

    pub(super) fn check_fence(&mut self, t: &WriteTables<'_>, lock: &str, token: u64) -> Result<(), GroveError> {
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
    pub(super) fn group_ready(&self, t: &WriteTables<'_>, rec: &LockRecord) -> Result<bool, GroveError> {
        for sibling in &rec.group {
            let queue = self.lock_queue(t, path::parent(sibling))?;
            if queue.first().map(|(n, _)| n.as_str()) != Some(sibling.as_str()) {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Grants whatever the changed queues now allow.
    pub(super) fn settle(&mut self, t: &WriteTables<'_>) -> Result<(), GroveError> {
        while let Some(dir) = self.dirty.pop_first() {
            let queue = self.lock_queue(t, &dir)?;
            let Some((_, first)) = queue.first() else { continue };
            let max_leases = self.get_queue(t, &dir)?.map(|q| q.max_leases).unwrap_or(0);
            let ready = if first.group.is_empty() { true } else { self.group_ready(t, first)? };
            let held = locks::holders(&queue, max_leases, |_| ready);
            for ((node, rec), held) in queue.into_iter().zip(held) {
                if held && !rec.granted {
                    let token = locks::token(self.zxid, self.grant_base + self.grants.len());
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
