//! Znodes: create (every mode, with parents), delete, set, check and set ACL, with
//! ZooKeeper's stat rules, ACL checks and quota charges.

use bytes::Bytes;

use super::staged::Staged;
use crate::error::GroveError;
use crate::fsm::acl::{self, Acl};
use crate::fsm::command::{CreateOp, DeleteOp, EventKind, SetOp};
use crate::fsm::path;
use crate::fsm::znode::{self, CreateMode, Stat, Znode};
use crate::storage::access::StateTables;
use crate::storage::keys;
use crate::storage::write::WriteTables;

/// The longest TTL: ZooKeeper's 40-bit limit (about 34 years).
pub const MAX_TTL_MS: i64 = 0xFF_FFFF_FFFF;

impl Staged {
    pub(super) fn create(&mut self, t: &WriteTables<'_>, op: &CreateOp) -> Result<(String, Stat), GroveError> {
        let mode = op.mode;
        if mode.is_sequential() {
            path::validate_sequential_prefix(&op.path)?;
        } else {
            path::validate(&op.path)?;
        }
        if mode.is_ttl() {
            if !(1..=MAX_TTL_MS).contains(&op.ttl_ms) {
                return Err(GroveError::bad_args(
                    &op.path,
                    format!("ttl_ms must be between 1 and {MAX_TTL_MS} for TTL modes, not {}", op.ttl_ms),
                ));
            }
        } else if op.ttl_ms != 0 {
            return Err(GroveError::bad_args(&op.path, "ttl_ms is only valid with a TTL mode"));
        }
        let session = self.caller.session;
        if mode.is_ephemeral() {
            if session == 0 {
                return Err(GroveError::bad_args(
                    &op.path,
                    "ephemeral nodes need a session: open one with Sessions.Open and pass grove-session-id",
                ));
            }
            if t.session(session)?.is_none() {
                return Err(GroveError::SessionExpired { id: session });
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
            ephemeral_owner: if mode.is_ephemeral() { session } else { 0 },
            data_length: op.data.len() as i32,
            num_children: 0,
            mode,
            ttl_ms: op.ttl_ms,
        };
        self.charge(t, &path, 1, op.data.len() as i64)?;
        self.event(EventKind::Created, &path, stat, op.data.clone(), &node_acl);
        self.put(&path, Znode { stat, acl: node_acl, data: op.data.clone() });
        if mode.is_ephemeral() {
            self.ephemerals.push((keys::ephemeral_key(session, &path), true));
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
    pub(super) fn create_ancestors(
        &mut self,
        t: &WriteTables<'_>,
        parent_path: &str,
        for_path: &str,
    ) -> Result<Znode, GroveError> {
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
    pub(super) fn inherited_acl(&self, t: &WriteTables<'_>, p: &str) -> Result<Acl, GroveError> {
        Ok(self.get(t, path::parent(p))?.map(|r| r.acl).unwrap_or_default())
    }

    pub(super) fn delete(&mut self, t: &WriteTables<'_>, op: &DeleteOp) -> Result<(), GroveError> {
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
    pub(super) fn remove_node(&mut self, t: &WriteTables<'_>, path: &str, rec: Znode) -> Result<(), GroveError> {
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

    pub(super) fn set(&mut self, t: &WriteTables<'_>, op: &SetOp) -> Result<Stat, GroveError> {
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

    pub(super) fn check(&mut self, t: &WriteTables<'_>, p: &str, version: Option<i32>) -> Result<(), GroveError> {
        path::validate(p)?;
        let rec = self.get(t, p)?.ok_or_else(|| GroveError::no_node(p))?;
        self.caller.check(&rec.acl, acl::READ, p)?;
        check_version(p, version, rec.stat.version)
    }

    /// Replaces a node's ACL and bumps its aversion. Like ZooKeeper's setACL it fires no
    /// watch and leaves mzxid alone: neither the data nor the children changed.
    pub(super) fn set_acl(
        &mut self,
        t: &WriteTables<'_>,
        p: &str,
        new: &Acl,
        version: Option<i32>,
    ) -> Result<Stat, GroveError> {
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

    /// Deletes the container and TTL nodes named, if at apply time they still qualify (the
    /// leader chose them from its own view, perhaps a moment ago).
    pub(super) fn reap(&mut self, t: &WriteTables<'_>, paths: &[String]) -> Result<(), GroveError> {
        for p in paths {
            if path::validate(p).is_err() || p == "/" {
                continue;
            }
            if let Some(rec) = self.get(t, p)?
                && znode::reapable(&rec.stat, self.time)
            {
                self.remove_node(t, p, rec)?;
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
