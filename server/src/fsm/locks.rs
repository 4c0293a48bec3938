//! Locks, read/write locks, semaphores, multi-locks and elections, decided at apply time.
//!
//! A lock's waiters and holders are ephemeral sequential children of its queue directory
//! (the lock's path; for a semaphore `path/leases`), owned by their session, so the tree
//! shows who waits and a session's end releases its holds. Each such node has a record in
//! the `locks` table: kind, owner, reentrancy count, and whether and with which fencing
//! token it was granted. Whenever an operation creates or deletes a lock node, the queue is
//! re-evaluated in the same step: grants are FIFO by sequence number and happen in the
//! entry that made them possible, so a contended hand-off is one committed entry.

use serde::{Deserialize, Serialize};

use super::path;
use crate::error::GroveError;

/// What a lock node is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum LockKind {
    Mutex,
    Read,
    Write,
    Semaphore,
}

impl LockKind {
    /// The name prefix of this kind's nodes (Curator's layout).
    pub fn prefix(self) -> &'static str {
        match self {
            LockKind::Mutex => "lock-",
            LockKind::Read => "__READ__",
            LockKind::Write => "__WRIT__",
            LockKind::Semaphore => "lease-",
        }
    }

    /// The directory of a lock's queue: the lock's path, or `path/leases` for a semaphore.
    pub fn queue_dir(self, lock: &str) -> String {
        match self {
            LockKind::Semaphore => path::join(lock, "leases"),
            _ => lock.to_string(),
        }
    }

    /// Kinds that may share one queue directory.
    pub fn family(self) -> u8 {
        match self {
            LockKind::Mutex => 0,
            LockKind::Read | LockKind::Write => 1,
            LockKind::Semaphore => 2,
        }
    }
}

/// A lock node's record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockRecord {
    pub kind: LockKind,
    pub session: u64,
    /// Who holds within the session; empty for the session itself.
    pub owner: String,
    pub reentrant: bool,
    /// Reentrant holds (1 for a plain hold).
    pub holds: u32,
    /// Semaphore leases this node stands for.
    pub permits: u32,
    pub granted: bool,
    pub token: u64,
    /// The other nodes of a multi-lock: all are granted together.
    pub group: Vec<String>,
}

impl LockRecord {
    pub fn encode(&self) -> Vec<u8> {
        // A plain struct into a Vec: postcard cannot fail here.
        postcard::to_allocvec(self).expect("lock records encode")
    }

    pub fn decode(raw: &[u8]) -> Result<LockRecord, GroveError> {
        postcard::from_bytes(raw).map_err(|e| GroveError::internal(format!("corrupt lock record: {e}")))
    }
}

/// A queue directory's settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueRecord {
    pub family: u8,
    /// Semaphore size.
    pub max_leases: u32,
}

impl QueueRecord {
    pub fn encode(&self) -> Vec<u8> {
        postcard::to_allocvec(self).expect("queue records encode")
    }

    pub fn decode(raw: &[u8]) -> Result<QueueRecord, GroveError> {
        postcard::from_bytes(raw).map_err(|e| GroveError::internal(format!("corrupt lock queue record: {e}")))
    }
}

/// Grants one entry can make with distinct tokens (2^20): far above what the waiter
/// limits allow (`--max-lock-waiters` on every server together).
pub const MAX_GRANTS_PER_ENTRY: usize = 1 << 20;

/// The fencing token of the `grant`-th grant made by the entry at `zxid` (counted across
/// its writes): the zxid in the high bits, so tokens are unique and increase along the log.
pub fn token(zxid: u64, grant: usize) -> u64 {
    (zxid << 20) | (grant.min(MAX_GRANTS_PER_ENTRY - 1) as u64)
}

/// The sequence number at the end of a lock node's name.
pub fn sequence(name: &str) -> u64 {
    name.get(name.len().saturating_sub(path::SEQUENCE_DIGITS)..).and_then(|s| s.parse().ok()).unwrap_or(u64::MAX)
}

/// A queue's lock nodes in line order (by sequence number), from its directory's child
/// names and a lookup of each node's record; children without one are not lock nodes.
pub fn in_line<E>(
    dir: &str,
    names: Vec<String>,
    mut record: impl FnMut(&str) -> Result<Option<LockRecord>, E>,
) -> Result<Vec<(String, LockRecord)>, E> {
    let mut out = Vec::new();
    for name in names {
        let node = path::join(dir, &name);
        if let Some(rec) = record(&node)? {
            out.push((node, rec));
        }
    }
    out.sort_by_key(|(n, _)| sequence(n));
    Ok(out)
}

/// Which of a queue's nodes (in sequence order, `(name, record)`) hold, under FIFO rules.
/// `group_ready(node)` says whether a multi-lock node's siblings are each first in line in
/// their own queues. Returns one bool per node.
pub fn holders(
    queue: &[(String, LockRecord)],
    max_leases: u32,
    group_ready: impl Fn(&LockRecord) -> bool,
) -> Vec<bool> {
    let mut out = vec![false; queue.len()];
    let Some((_, first)) = queue.first() else { return out };
    match first.kind {
        LockKind::Mutex => {
            // The first in line holds (a multi-lock node only with all its siblings).
            out[0] = first.granted || first.group.is_empty() || group_ready(first);
        }
        LockKind::Read | LockKind::Write => {
            // A writer holds when first in line. A reader holds when no writer is ahead of
            // it, or every writer ahead is the same owner holding: a writer may take the
            // read lock. Readers never overtake a waiting writer (fairness).
            for (i, (_, rec)) in queue.iter().enumerate() {
                let ahead = &queue[..i];
                out[i] = match rec.kind {
                    LockKind::Write => i == 0,
                    _ => ahead.iter().enumerate().all(|(j, (_, a))| {
                        a.kind == LockKind::Read || (out[j] && a.session == rec.session && a.owner == rec.owner)
                    }),
                };
            }
        }
        LockKind::Semaphore => {
            let mut used = 0u32;
            for (i, (_, rec)) in queue.iter().enumerate() {
                if used.saturating_add(rec.permits) > max_leases {
                    // First come, first served: nobody overtakes a waiter that does not fit.
                    break;
                }
                used += rec.permits;
                out[i] = true;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(kind: LockKind, session: u64) -> LockRecord {
        LockRecord {
            kind,
            session,
            owner: String::new(),
            reentrant: false,
            holds: 1,
            permits: 1,
            granted: false,
            token: 0,
            group: vec![],
        }
    }

    fn q(items: Vec<LockRecord>) -> Vec<(String, LockRecord)> {
        items.into_iter().enumerate().map(|(i, r)| (format!("x{i:010}"), r)).collect()
    }

    #[test]
    fn a_mutex_goes_to_the_first_in_line() {
        let r = holders(&q(vec![rec(LockKind::Mutex, 1), rec(LockKind::Mutex, 2)]), 0, |_| true);
        assert_eq!(r, vec![true, false]);
    }

    #[test]
    fn read_write_is_fair_and_a_writer_may_read() {
        use LockKind::*;
        assert_eq!(
            holders(&q(vec![rec(Read, 1), rec(Read, 2), rec(Write, 3), rec(Read, 4)]), 0, |_| true),
            vec![true, true, false, false]
        );
        assert_eq!(holders(&q(vec![rec(Write, 1), rec(Read, 1), rec(Read, 2)]), 0, |_| true), vec![true, true, false]);
        assert_eq!(holders(&q(vec![rec(Read, 1), rec(Write, 1)]), 0, |_| true), vec![true, false], "no upgrade");
    }

    #[test]
    fn a_semaphore_grants_leases_in_order_without_overtaking() {
        let mut big = rec(LockKind::Semaphore, 2);
        big.permits = 3;
        let r = holders(&q(vec![rec(LockKind::Semaphore, 1), big, rec(LockKind::Semaphore, 3)]), 3, |_| true);
        assert_eq!(r, vec![true, false, false]);
    }

    #[test]
    fn tokens_increase_along_the_log() {
        assert!(token(10, 0) < token(10, 1));
        assert!(token(10, 1023) < token(10, 1024), "more than 1023 grants in an entry still differ");
        assert!(token(10, MAX_GRANTS_PER_ENTRY - 1) < token(11, 0));
        assert_eq!(sequence("lock-0000000042"), 42);
        assert_eq!(sequence("__WRIT__0000000007"), 7);
    }
}
