//! Client errors, mirroring Grove's error codes (ZooKeeper's where they exist).

use grove_proto::v1::{ErrorCode, ErrorDetail};
use grove_proto::{ERROR_DETAIL_TYPE_URL, rpc};
use prost::Message;
use tonic::Code;

/// Where the server said the leader is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Leader {
    pub id: u64,
    pub address: String,
}

#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    #[error("Node does not exist: {path}")]
    NoNode { path: String },
    #[error("Node already exists: {path}")]
    NodeExists { path: String },
    #[error("version No is not valid : {path} (node has version {actual})")]
    BadVersion { path: String, actual: i32 },
    #[error("Node not empty: {path}")]
    NotEmpty { path: String },
    #[error("Ephemerals cannot have children: {path}")]
    NoChildrenForEphemerals { path: String },
    #[error("{message}")]
    BadArguments { message: String },
    #[error("session expired: {message}")]
    SessionExpired { message: String },
    #[error("unknown session: {message}")]
    UnknownSession { message: String },
    #[error("authentication failed: {message}")]
    AuthFailed { message: String },
    #[error("not authorized: {message}")]
    NoAuth { message: String },
    /// A hard quota refused the write.
    #[error("quota exceeded: {message}")]
    QuotaExceeded { message: String },
    #[error("no quorum: {message}")]
    NoQuorum { message: String, leader: Option<Leader> },
    #[error("server not ready: {message}")]
    NotReady { message: String, leader: Option<Leader> },
    #[error("compacted: {message} (oldest available zxid {oldest})")]
    Compacted { message: String, oldest: u64 },
    #[error("{message}")]
    TooLarge { message: String },
    /// A lock (or election, or semaphore lease) was not granted within the wait asked for.
    #[error("lock timeout: {message}")]
    LockTimeout { message: String },
    /// A fencing check failed: the token is not (or no longer) a current grant.
    #[error("fenced: {message}")]
    Fenced { message: String },
    #[error("{message}")]
    TooMany { message: String, retry_after_ms: i64 },
    /// The connection failed while a request was in flight: it may or may not have been
    /// applied (ZooKeeper's ConnectionLoss).
    #[error("connection lost, outcome unknown: {message}")]
    ConnectionLoss { message: String },
    /// No server could be reached; nothing was sent.
    #[error("no server reachable: {message}")]
    Unreachable { message: String },
    /// Any other failure the server reported, with its Grove code.
    #[error("{code:?}: {message}")]
    Server { code: ErrorCode, message: String },
    #[error("{0}")]
    Client(String),
}

impl Error {
    /// The Grove error code (`Ok` for client-side failures).
    pub fn code(&self) -> ErrorCode {
        match self {
            Error::NoNode { .. } => ErrorCode::NoNode,
            Error::NodeExists { .. } => ErrorCode::NodeExists,
            Error::BadVersion { .. } => ErrorCode::BadVersion,
            Error::NotEmpty { .. } => ErrorCode::NotEmpty,
            Error::NoChildrenForEphemerals { .. } => ErrorCode::NoChildrenForEphemerals,
            Error::BadArguments { .. } => ErrorCode::BadArguments,
            Error::SessionExpired { .. } => ErrorCode::SessionExpired,
            Error::UnknownSession { .. } => ErrorCode::UnknownSession,
            Error::AuthFailed { .. } => ErrorCode::AuthFailed,
            Error::NoAuth { .. } => ErrorCode::NoAuth,
            Error::QuotaExceeded { .. } => ErrorCode::QuotaExceeded,
            Error::NoQuorum { .. } => ErrorCode::NoQuorum,
            Error::NotReady { .. } => ErrorCode::NotReady,
            Error::Compacted { .. } => ErrorCode::Compacted,
            Error::TooLarge { .. } => ErrorCode::TooLarge,
            Error::LockTimeout { .. } => ErrorCode::LockTimeout,
            Error::Fenced { .. } => ErrorCode::Fenced,
            Error::TooMany { .. } => ErrorCode::TooManyRequests,
            Error::Server { code, .. } => *code,
            Error::ConnectionLoss { .. } | Error::Unreachable { .. } | Error::Client(_) => ErrorCode::Ok,
        }
    }

    /// True if retrying the same request elsewhere cannot do harm: nothing was applied.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Error::Unreachable { .. } | Error::NotReady { .. })
    }

    /// True for failures of the connection or the ensemble rather than of the request:
    /// what a retry policy retries (a write only when it carries a request id).
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            Error::ConnectionLoss { .. } | Error::Unreachable { .. } | Error::NotReady { .. } | Error::NoQuorum { .. }
        )
    }

    /// Builds the error a failed call carries.
    pub fn from_status(status: &tonic::Status) -> Error {
        let detail = decode_detail(status);
        let message = status.message().to_string();
        let Some(d) = detail else {
            return transport_error(status);
        };
        let leader = (!d.leader_address.is_empty() || d.leader_id != 0)
            .then(|| Leader { id: d.leader_id, address: d.leader_address.clone() });
        let path = d.path.clone();
        match d.code() {
            ErrorCode::NoNode => Error::NoNode { path },
            ErrorCode::NodeExists => Error::NodeExists { path },
            ErrorCode::BadVersion => Error::BadVersion { path, actual: d.actual_version },
            ErrorCode::NotEmpty => Error::NotEmpty { path },
            ErrorCode::NoChildrenForEphemerals => Error::NoChildrenForEphemerals { path },
            ErrorCode::BadArguments => Error::BadArguments { message },
            ErrorCode::SessionExpired => Error::SessionExpired { message },
            ErrorCode::UnknownSession => Error::UnknownSession { message },
            ErrorCode::AuthFailed => Error::AuthFailed { message },
            ErrorCode::NoAuth => Error::NoAuth { message },
            ErrorCode::QuotaExceeded => Error::QuotaExceeded { message },
            ErrorCode::NoQuorum => Error::NoQuorum { message, leader },
            ErrorCode::NotReady => Error::NotReady { message, leader },
            ErrorCode::Compacted => Error::Compacted { message, oldest: d.oldest_zxid },
            ErrorCode::TooLarge => Error::TooLarge { message },
            ErrorCode::LockTimeout => Error::LockTimeout { message },
            ErrorCode::Fenced => Error::Fenced { message },
            ErrorCode::TooManyRequests | ErrorCode::TooManyWatches => {
                Error::TooMany { message, retry_after_ms: d.retry_after_ms }
            }
            code => Error::Server { code, message },
        }
    }
}

/// The `grove.v1.ErrorDetail` inside a status, if the server attached one.
pub fn decode_detail(status: &tonic::Status) -> Option<ErrorDetail> {
    if status.details().is_empty() {
        return None;
    }
    let outer = rpc::Status::decode(status.details()).ok()?;
    let any = outer.details.iter().find(|a| a.type_url == ERROR_DETAIL_TYPE_URL)?;
    ErrorDetail::decode(&any.value[..]).ok()
}

/// A status without Grove details comes from the transport or the gRPC layer.
fn transport_error(status: &tonic::Status) -> Error {
    let message = format!("{}: {}", status.code(), status.message());
    if let Some(tls) = grove_proto::transport::tls_failure(status) {
        return Error::AuthFailed { message: format!("TLS handshake failed: {tls}") };
    }
    match status.code() {
        _ if grove_proto::transport::never_sent(status) => Error::Unreachable { message },
        Code::Unavailable | Code::Cancelled | Code::DeadlineExceeded | Code::Unknown | Code::Aborted => {
            Error::ConnectionLoss { message }
        }
        Code::InvalidArgument | Code::OutOfRange => Error::BadArguments { message },
        Code::ResourceExhausted => Error::TooMany { message, retry_after_ms: 0 },
        Code::Unimplemented => Error::Server { code: ErrorCode::UnimplementedFeature, message },
        _ => Error::Server { code: ErrorCode::Internal, message },
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
