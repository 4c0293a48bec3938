//! What the log carries and what applying it returns.
//!
//! A log entry carries a batch of operations: the leader gathers the client requests that
//! arrive while earlier entries are being written, so one fsync and one apply transaction
//! serve many of them. The operations of an entry are applied in order, each on its own and
//! all-or-nothing, and share the entry's zxid (as the operations of a ZooKeeper multi do).
//!
//! The leader stamps its wall-clock time in the entry: every replica applies the same time,
//! so ctime/mtime, TTL expiry and session expiry are decided identically everywhere.

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::acl::{Acl, Caller};
use super::node::{CreateMode, Stat};
use crate::error::GroveError;

/// Most operations in one entry. Session ids are `zxid << 10 | position`, so it must not
/// exceed 1024.
pub const MAX_BATCH: usize = 1024;

/// Identifies one client write across retries: the first 8 bytes are the issuer's clock
/// (ms since the epoch, big-endian), the rest random, so the table of recent requests is
/// ordered by age. 0: no id.
pub type RequestId = u128;

/// How long the result of an identified request is remembered, answering its retries.
pub const REQUEST_RETENTION_MS: i64 = 10 * 60 * 1000;

/// A new request id stamped with `now_ms`.
pub fn new_request_id(now_ms: i64, random: u64) -> RequestId {
    ((now_ms.max(0) as u128) << 64) | random.max(1) as u128
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Command {
    /// Milliseconds since the Unix epoch on the proposing leader.
    pub time_ms: i64,
    pub ops: Vec<Op>,
    /// One per operation (or none at all): a retried request is applied once, and its
    /// retries get the first result.
    pub request_ids: Vec<RequestId>,
}

impl Command {
    pub fn single(time_ms: i64, op: Op) -> Command {
        Command { time_ms, ops: vec![op], request_ids: Vec::new() }
    }
}

/// The session id opened by the operation at `position` of the entry at `zxid`: unique,
/// increasing, and the same on every replica.
pub fn session_id(zxid: u64, position: usize) -> u64 {
    (zxid << 10) | position as u64
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Op {
    Create(CreateOp),
    Delete(DeleteOp),
    Set(SetOp),
    Multi(Vec<MultiOp>),
    /// The new session's id is `session_id(zxid, position)`.
    OpenSession {
        timeout_ms: i64,
        secret: [u8; 16],
    },
    CloseSession {
        session_id: u64,
    },
    /// Proposed by the leader for sessions it has not heard from within their timeout.
    ExpireSessions {
        session_ids: Vec<u64>,
    },
    /// Proposed by the leader: delete these container/TTL nodes if, at apply time, they
    /// still qualify.
    Reap {
        paths: Vec<String>,
    },
    /// Changes nothing; used to learn the commit point.
    Noop,
    /// Queue for a lock (or several: a multi-lock); granted now or when it comes first.
    Lock(LockOp),
    /// Release one hold of a lock node, or withdraw it if it waits.
    Unlock {
        node: String,
        session_id: u64,
    },
    /// Set the data of a lock node the session holds (an election's leader value).
    Proclaim {
        node: String,
        data: Bytes,
        session_id: u64,
    },
    /// Replace a node's ACL (needs ADMIN); `version` is compared with its aversion.
    SetAcl {
        path: String,
        acl: Acl,
        version: Option<i32>,
    },
    /// Set (or change) the quota on a subtree; needs ADMIN on the root node.
    SetQuota {
        path: String,
        change: super::quota::LimitsChange,
    },
    /// Remove the quota on a subtree; needs ADMIN on the root node.
    DeleteQuota {
        path: String,
    },
    /// A client's operation with the identities its ACL checks use. Client writes are
    /// always wrapped; an unwrapped one is checked as an anonymous caller, so a forgotten
    /// wrap refuses rather than grants.
    As {
        caller: Caller,
        op: Box<Op>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockOp {
    pub paths: Vec<String>,
    pub kind: super::locks::LockKind,
    pub owner: String,
    pub reentrant: bool,
    pub permits: u32,
    pub max_leases: u32,
    pub data: Bytes,
    pub session_id: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreateOp {
    pub path: String,
    pub data: Bytes,
    pub mode: CreateMode,
    pub ttl_ms: i64,
    pub create_parents: bool,
    /// The session the request acted for; 0 for none. Ephemeral nodes need one.
    pub session_id: u64,
    /// The new node's ACL as the client gave it (resolved and checked when applied).
    pub acl: Acl,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeleteOp {
    pub path: String,
    pub version: Option<i32>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SetOp {
    pub path: String,
    pub data: Bytes,
    pub version: Option<i32>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum MultiOp {
    Create(CreateOp),
    Delete(DeleteOp),
    Set(SetOp),
    Check {
        path: String,
        version: Option<i32>,
    },
    /// Passes only if `token` is a current grant of the lock at `path`.
    CheckFence {
        path: String,
        token: u64,
    },
}

/// The successful outcome of one command.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Outcome {
    Created {
        path: String,
        stat: Stat,
    },
    Deleted,
    Set {
        stat: Stat,
    },
    /// One entry per operation: the created path and stat, the new stat, or nothing.
    Multi(Vec<MultiOutcome>),
    SessionOpened {
        session_id: u64,
        timeout_ms: i64,
        secret: [u8; 16],
    },
    SessionClosed,
    /// A lock request queued: its nodes, and the token if it was granted at once.
    Locked {
        nodes: Vec<String>,
        granted: bool,
        token: u64,
    },
    /// False if the node was already gone.
    Unlocked {
        released: bool,
    },
    /// A quota as a quota command left it (`None`: removed).
    Quota {
        record: Option<super::quota::QuotaRecord>,
    },
    /// Housekeeping commands (expiry, reaping, noop).
    Done,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum MultiOutcome {
    Created { path: String, stat: Stat },
    Deleted,
    Set { stat: Stat },
    Checked,
    Fenced,
}

pub type CommandResult = Result<Outcome, GroveError>;

/// A change a watch can observe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum EventKind {
    Created,
    Deleted,
    DataChanged,
    ChildrenChanged,
}

/// One change to the tree, as produced by applying a command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub kind: EventKind,
    pub path: String,
    /// After the change; for `Deleted` the node's last stat; for `ChildrenChanged` the
    /// parent's new stat.
    pub stat: Stat,
    /// The node's data for `Created` and `DataChanged`; empty otherwise.
    pub data: Bytes,
    /// The ACL of the node the event is about (empty: open): a watcher is told only of
    /// nodes it may read.
    pub acl: Acl,
}

/// Sessions that began or ended in an entry, for the leader's session tracker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionChange {
    Opened { id: u64, timeout_ms: i64, secret: [u8; 16] },
    Ended { id: u64 },
}

/// Everything applying one entry produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    pub zxid: u64,
    /// One result per operation of the entry.
    pub results: Vec<CommandResult>,
    /// The events of every operation, in order.
    pub events: Vec<Event>,
    pub sessions: Vec<SessionChange>,
    /// Lock nodes granted by this entry, with their tokens.
    pub grants: Vec<(String, u64)>,
}

impl Applied {
    /// An entry that changed nothing (blank or membership entries).
    pub fn empty(zxid: u64) -> Applied {
        Applied { zxid, results: Vec::new(), events: Vec::new(), sessions: Vec::new(), grants: Vec::new() }
    }
}
