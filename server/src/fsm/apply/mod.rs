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
pub mod requests;
mod sessions;
mod staged;
mod znodes;

pub use self::members::forget_members;
use self::staged::Staged;
use super::command::{
    Applied, Command, CommandResult, MAX_BATCH, MultiOp, MultiOutcome, Op, Outcome, Write, session_id,
};
use crate::error::GroveError;
use crate::storage::access::{StateTables, Table};
use crate::storage::keys;
use crate::storage::write::WriteTables;

/// Applies the writes of one entry at `zxid`, each on its own and all-or-nothing.
///
/// The outer error is a storage failure (or a corrupt record): the batch must not be
/// committed, because another replica would apply the same entry successfully. Domain
/// failures (no node, bad version...) are committed results inside `Applied`.
pub fn apply(tables: &mut WriteTables<'_>, zxid: u64, cmd: &Command) -> Result<Applied, GroveError> {
    cmd.check_format()?;
    // The entry's time never goes back, whatever the clocks of successive leaders: TTLs,
    // ctime/mtime and request retention only ever see time move forward (leaders stamp
    // ahead of the latest entry they applied: node::clock; this is the backstop).
    let clock = tables.clock()?;
    let time = cmd.time_ms.max(clock);
    if time > clock {
        tables.put(Table::Cluster, keys::clock_key(), Some(&time.to_le_bytes()))?;
    }
    let mut applied = Applied::empty(zxid);
    applied.time = time;
    requests::prune_for_entry(tables, time, cmd.writes.iter().filter(|w| w.request_id != 0).count())?;
    for (position, write) in cmd.writes.iter().enumerate() {
        if position >= MAX_BATCH {
            applied.results.push(Err(GroveError::bad_args("", format!("an entry holds at most {MAX_BATCH} writes"))));
            continue;
        }
        let request = write.request_id;
        if request != 0
            && let Some(first) = requests::recall(tables, request)?
        {
            // A retry of a request already applied: answer as the first time did.
            applied.results.push(first);
            continue;
        }
        let mut staged = Staged::new(zxid, time, position, write.caller.clone());
        staged.grant_base = applied.grants.len();
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
        // Only what took effect is remembered: a refused write changed nothing, and its
        // retry may as well be applied.
        if request != 0 && result.is_ok() {
            requests::remember(tables, request, &write.caller, time, &result)?;
        }
        applied.results.push(result);
        if matches!(write.op, Op::CloseSession | Op::ExpireSessions { .. }) {
            sessions::prune_ended_sessions(tables, time)?;
        }
    }
    Ok(applied)
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
