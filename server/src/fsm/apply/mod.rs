//! Applying committed entries to the tree with ZooKeeper's rules.
//!
//! Every write of an entry runs against a staging overlay (`staged.rs`) on top of the
//! batch's write transaction and is flushed only if it succeeds, so each write is
//! all-or-nothing: a Multi that fails at its third operation, a create whose parent turns
//! out to be ephemeral, or a storage error halfway leave the tree as it was. Applying is
//! deterministic: it reads only the tables, the entry's zxid and the time stamped in the
//! entry. The state machine is the authority on what a write may do: the API layer only
//! parses requests, every rule (paths, modes, TTLs, sessions, ACLs, quotas) is checked here.
//!
//! One file per concept: `znodes.rs` (create, delete, set, check, ACLs), `locks.rs`
//! (queues, grants, fencing), `quotas.rs`, `sessions.rs`; this file dispatches a write to
//! them and answers retried requests from the results remembered for them.

mod locks;
mod members;
mod quotas;
mod sessions;
mod staged;
mod znodes;

pub use self::members::forget_members;
use self::staged::Staged;
use super::command::{
    Applied, Command, CommandResult, MAX_BATCH, MultiOp, MultiOutcome, Op, Outcome, REQUEST_RETENTION_MS, Write,
    session_id,
};
use crate::error::GroveError;
use crate::storage::access::{StateTables, Table};
use crate::storage::write::WriteTables;

/// Applies the writes of one entry at `zxid`, each on its own and all-or-nothing.
///
/// The outer error is a storage failure (or a corrupt record): the batch must not be
/// committed, because another replica would apply the same entry successfully. Domain
/// failures (no node, bad version...) are committed results inside `Applied`.
pub fn apply(tables: &mut WriteTables<'_>, zxid: u64, cmd: &Command) -> Result<Applied, GroveError> {
    cmd.check_format()?;
    let mut applied = Applied::empty(zxid);
    let mut identified = false;
    for (position, write) in cmd.writes.iter().enumerate() {
        if position >= MAX_BATCH {
            applied.results.push(Err(GroveError::bad_args("", format!("an entry holds at most {MAX_BATCH} writes"))));
            continue;
        }
        let request = write.request_id;
        if request != 0 {
            identified = true;
            if let Some(first) = tables.get(Table::Requests, &request.to_be_bytes(), |raw| {
                postcard::from_bytes::<CommandResult>(raw).map_err(GroveError::internal)
            })? {
                // A retry of a request already applied: answer as the first time did.
                applied.results.push(first);
                continue;
            }
        }
        let mut staged = Staged::new(zxid, cmd.time_ms, position, write.caller.clone());
        let result = match run(tables, &mut staged, write).and_then(|outcome| staged.settle(tables).map(|_| outcome)) {
            Ok(outcome) => {
                staged.flush(tables, &mut applied)?;
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
            tables.put(Table::Requests, &request.to_be_bytes(), Some(&encoded))?;
        }
        applied.results.push(result);
        if matches!(write.op, Op::CloseSession | Op::ExpireSessions { .. }) {
            sessions::prune_ended_sessions(tables, cmd.time_ms)?;
        }
    }
    if identified {
        prune_requests(tables, cmd.time_ms)?;
    }
    Ok(applied)
}

/// Forgets request results older than the retention, oldest first, a bounded number per
/// entry. Request ids begin with their issuer's clock, so the oldest come first.
fn prune_requests(t: &mut WriteTables<'_>, now_ms: i64) -> Result<(), GroveError> {
    let horizon = (now_ms - REQUEST_RETENTION_MS).max(0) as u128;
    let end = (horizon << 64).to_be_bytes();
    for k in t.keys_in(Table::Requests, &[], &end, 64)? {
        t.put(Table::Requests, &k, None)?;
    }
    Ok(())
}

/// Runs one write against the overlay.
fn run(t: &WriteTables<'_>, s: &mut Staged, write: &Write) -> CommandResult {
    match &write.op {
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
                    Err(error) => return Err(GroveError::MultiFailed { index, error: Box::new(error) }),
                }
            }
            Ok(Outcome::Multi(out))
        }
        Op::OpenSession { timeout_ms, secret } => s.open_session(session_id(s.zxid, s.position), *timeout_ms, *secret),
        Op::CloseSession => s.close_session(t),
        Op::ExpireSessions { session_ids } => s.expire_sessions(t, session_ids),
        Op::Reap { paths } => {
            s.reap(t, paths)?;
            Ok(Outcome::Done)
        }
        Op::Noop => Ok(Outcome::Done),
        Op::Lock(l) => s.lock(t, l),
        Op::Unlock { node } => s.unlock(t, node),
        Op::Proclaim { node, data } => s.proclaim(t, node, data),
        Op::SetAcl { path, acl, version } => Ok(Outcome::Set { stat: s.set_acl(t, path, acl, *version)? }),
        Op::SetQuota { path, change } => Ok(Outcome::Quota { record: s.set_quota(t, path, change)? }),
        Op::DeleteQuota { path } => {
            s.delete_quota(t, path)?;
            Ok(Outcome::Quota { record: None })
        }
        Op::RegisterMember { id, incarnation, boot, cluster_id } => {
            s.register_member(t, *id, *incarnation, *boot, *cluster_id)
        }
    }
}
