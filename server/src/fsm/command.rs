//! What the log carries and what applying it returns.
//!
//! A log entry carries a batch of writes: the leader gathers the client requests that
//! arrive while earlier entries are being written, so one fsync and one apply transaction
//! serve many of them. The writes of an entry are applied in order, each on its own and
//! all-or-nothing, and share the entry's zxid (as the operations of a ZooKeeper multi do).
//!
//! Each write travels in one envelope, `Write`: who asked (identities and session), the id
//! that makes a retry recognisable, and the operation. Nothing about a write lives outside
//! it, so a batch is a list of envelopes and an envelope can be shared, not copied, between
//! the proposer and a forward to another leader.
//!
//! The leader stamps its wall-clock time in the entry: every replica applies the same time,
//! so ctime/mtime, TTL expiry and session expiry are decided identically everywhere.

use std::sync::Arc;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::acl::{Acl, Caller};
use super::znode::{CreateMode, Stat};
use crate::error::GroveError;

/// The log format this build writes and reads. Entries of another format are refused with
/// a message that says so, rather than decoded into something else: there is no migration
/// between formats (no release has shipped another one).
pub const LOG_FORMAT: u8 = 2;

/// Most writes in one entry. Session ids are `zxid << 10 | position`, so it must not
/// exceed 1024.
pub const MAX_BATCH: usize = 1024;

/// Identifies one client write across retries: the first 8 bytes are the issuer's clock
/// (ms since the epoch, big-endian), the rest random, so the table of recent requests is
/// ordered by age. 0: no id.
pub type RequestId = u128;

/// How long the result of an identified request is remembered, answering its retries: far
/// longer than any client's retries of one request (its request timeout, some seconds).
pub const REQUEST_RETENTION_MS: i64 = 2 * 60 * 1000;

/// A new request id stamped with `now_ms`.
pub fn new_request_id(now_ms: i64, random: u64) -> RequestId {
    ((now_ms.max(0) as u128) << 64) | random.max(1) as u128
}

/// One write as the log carries it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Write {
    /// Who asked: the identities ACL checks use and the session the write acts for.
    pub caller: Caller,
    /// Names the write across retries (0: not identified): applied once, and its retries
    /// answered with the first result.
    pub request_id: RequestId,
    pub op: Op,
}

impl Write {
    pub fn new(caller: Caller, request_id: RequestId, op: Op) -> Write {
        Write { caller, request_id, op }
    }

    /// A write the server decides on its own (expiry, reaping): not subject to ACLs.
    pub fn by_server(op: Op) -> Write {
        Write { caller: Caller::server(), request_id: 0, op }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Command {
    /// `LOG_FORMAT` of the server that proposed it.
    pub format: u8,
    /// Milliseconds since the Unix epoch on the proposing leader.
    pub time_ms: i64,
    pub writes: Vec<Arc<Write>>,
}

impl Command {
    pub fn new(time_ms: i64, writes: Vec<Arc<Write>>) -> Command {
        Command { format: LOG_FORMAT, time_ms, writes }
    }

    pub fn single(time_ms: i64, write: Write) -> Command {
        Command::new(time_ms, vec![Arc::new(write)])
    }

    /// Refuses an entry written in another log format, naming both.
    pub fn check_format(&self) -> Result<(), GroveError> {
        if self.format == LOG_FORMAT {
            return Ok(());
        }
        Err(GroveError::internal(format!(
            "a log entry is in format {}, this server reads only format {LOG_FORMAT}: the data directory was \
             written by another Grove version, and there is no migration between them",
            self.format
        )))
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
    /// Closes the caller's session.
    CloseSession,
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
    /// Release one hold of a lock node of the caller's session, or withdraw it if it waits.
    Unlock {
        node: String,
    },
    /// Set the data of a lock node the caller's session holds (an election's leader value).
    Proclaim {
        node: String,
        data: Bytes,
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
    /// A member records which data directory runs as it (proposed by the member itself,
    /// through the peer port). The first registration of a cluster fixes its id.
    RegisterMember {
        id: u64,
        incarnation: u64,
        boot: u64,
        cluster_id: u64,
    },
}

impl Op {
    /// Operations only servers propose (expiry, reaping, registration): never accepted from
    /// a client, nor forwarded on a client's behalf.
    pub fn is_servers_own(&self) -> bool {
        matches!(self, Op::ExpireSessions { .. } | Op::Reap { .. } | Op::RegisterMember { .. })
    }
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
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreateOp {
    pub path: String,
    pub data: Bytes,
    pub mode: CreateMode,
    pub ttl_ms: i64,
    pub create_parents: bool,
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
    /// The entry's time as applied (ms since the epoch; 0: an entry without one).
    pub time: i64,
    /// One result per write of the entry.
    pub results: Vec<CommandResult>,
    /// The events of every write, in order.
    pub events: Vec<Event>,
    pub sessions: Vec<SessionChange>,
    /// Lock nodes granted by this entry, with their tokens.
    pub grants: Vec<(String, u64)>,
}

impl Applied {
    /// An entry that changed nothing (blank or membership entries).
    pub fn empty(zxid: u64) -> Applied {
        Applied { zxid, time: 0, results: Vec::new(), events: Vec::new(), sessions: Vec::new(), grants: Vec::new() }
    }
}
