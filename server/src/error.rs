//! Grove's domain errors.
//!
//! One enum for every layer below the gRPC handlers: the state machine returns these as
//! committed results (a failed compare-and-set is a committed no-op, not a Raft error), the
//! node adds availability errors, and `api::status` maps them to `tonic::Status` in one place.
//! They are serializable because results travel through the log's responder and across the
//! peer port when a follower forwards a write.

use serde::{Deserialize, Serialize};

/// Where clients should go when this server cannot serve them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaderHint {
    pub id: u64,
    /// The leader's client address, when this server knows it.
    pub address: String,
}

/// Which limit a request ran into.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Limit {
    Watches,
    Requests,
    Sessions,
    Connections,
    LockWaiters,
}

impl Limit {
    pub fn name(self) -> &'static str {
        match self {
            Limit::Watches => "watches",
            Limit::Requests => "requests",
            Limit::Sessions => "sessions",
            Limit::Connections => "connections",
            Limit::LockWaiters => "lock_waiters",
        }
    }

    /// Counts one refusal in `grove_limit_refusals_total{limit}`.
    pub fn count_refusal(self) {
        metrics::counter!("grove_limit_refusals_total", "limit" => self.name()).increment(1);
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
pub enum GroveError {
    #[error("node does not exist: {path}")]
    NoNode { path: String },

    #[error("node already exists: {path}")]
    NodeExists { path: String },

    #[error("version mismatch on {path}: expected version {expected}, node has version {actual}")]
    BadVersion { path: String, expected: i32, actual: i32 },

    #[error("node not empty: {path}")]
    NotEmpty { path: String },

    #[error("ephemeral nodes cannot have children: {path}")]
    NoChildrenForEphemerals { path: String },

    #[error("{message}")]
    BadArguments { path: String, message: String },

    #[error("the sequence counter of {path} is exhausted")]
    SequenceOverflow { path: String },

    #[error("session 0x{id:x} has expired")]
    SessionExpired { id: u64 },

    #[error("unknown session 0x{id:x}")]
    UnknownSession { id: u64 },

    #[error("authentication failed: {message}")]
    AuthFailed { message: String },

    /// The node's ACL does not grant the caller this permission.
    #[error("not authorized: {perm} on {path} is not granted to the caller")]
    NoAuth { path: String, perm: String },

    /// A hard quota refused the write.
    #[error("quota exceeded at {path}: {message}")]
    QuotaExceeded { path: String, message: String },

    #[error("invalid ACL for {path}: {message}")]
    InvalidAcl { path: String, message: String },

    /// A Multi failed at `index`; nothing was applied.
    #[error("operation {index} of the multi failed: {error}")]
    MultiFailed { index: usize, error: Box<GroveError> },

    #[error("no quorum: {message}")]
    NoQuorum { message: String, leader: Option<LeaderHint> },

    #[error("server not ready: {message}")]
    NotReady { message: String, leader: Option<LeaderHint> },

    #[error("fencing token {token} is not a current grant of the lock {path}")]
    Fenced { path: String, token: u64 },

    #[error("the lock wait on {path} timed out")]
    LockTimeout { path: String },

    #[error("watch history compacted: the oldest zxid available is {oldest}")]
    Compacted { oldest: u64 },

    #[error("{what} too large: {size} bytes, the limit is {limit}")]
    TooLarge { what: String, path: String, size: usize, limit: usize },

    #[error("{message}")]
    TooMany { limit: Limit, message: String, retry_after_ms: u64 },

    #[error("not implemented: {0}")]
    Unimplemented(String),

    #[error("internal error: {0}")]
    Internal(String),
}

impl GroveError {
    /// A limit refused a request: counted in `grove_limit_refusals_total{limit}`.
    pub fn too_many(limit: Limit, message: impl Into<String>, retry_after_ms: u64) -> Self {
        limit.count_refusal();
        GroveError::TooMany { limit, message: message.into(), retry_after_ms }
    }

    pub fn bad_args(path: impl Into<String>, message: impl Into<String>) -> Self {
        GroveError::BadArguments { path: path.into(), message: message.into() }
    }

    pub fn no_node(path: impl Into<String>) -> Self {
        GroveError::NoNode { path: path.into() }
    }

    pub fn internal(e: impl std::fmt::Display) -> Self {
        GroveError::Internal(e.to_string())
    }

    /// This server cannot do what only the leader does (it is not the leader, or no longer):
    /// UNAVAILABLE with the leader's address when known, so the client goes there.
    pub fn not_leader(leader: Option<LeaderHint>) -> Self {
        let message = match &leader {
            Some(l) if !l.address.is_empty() => {
                format!("this server is not the leader; server {} at {} is", l.id, l.address)
            }
            Some(l) => format!("this server is not the leader; server {} is", l.id),
            None => "this server is not the leader, and no leader is known yet".to_string(),
        };
        GroveError::NotReady { message, leader }
    }

    /// The storage engine failed (an I/O error, a corrupt page): never a committed result.
    pub fn storage(e: impl std::fmt::Display) -> Self {
        metrics::counter!("grove_storage_errors_total", "store" => "state").increment(1);
        GroveError::Internal(format!("storage: {e}"))
    }

    /// The path the error is about, if any.
    pub fn path(&self) -> Option<&str> {
        match self {
            GroveError::NoNode { path }
            | GroveError::NodeExists { path }
            | GroveError::BadVersion { path, .. }
            | GroveError::NotEmpty { path }
            | GroveError::NoChildrenForEphemerals { path }
            | GroveError::SequenceOverflow { path }
            | GroveError::Fenced { path, .. }
            | GroveError::LockTimeout { path }
            | GroveError::NoAuth { path, .. }
            | GroveError::InvalidAcl { path, .. }
            | GroveError::QuotaExceeded { path, .. } => Some(path),
            GroveError::TooLarge { path, .. } if !path.is_empty() => Some(path),
            GroveError::BadArguments { path, .. } if !path.is_empty() => Some(path),
            GroveError::MultiFailed { error, .. } => error.path(),
            _ => None,
        }
    }
}

pub type Result<T, E = GroveError> = std::result::Result<T, E>;
