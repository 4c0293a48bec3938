//! The one mapping from Grove's errors to gRPC statuses.
//!
//! Every failed call carries, besides the gRPC code and a message naming the problem:
//! - `grpc-status-details-bin`: a `google.rpc.Status` whose details hold a
//!   `grove.v1.ErrorDetail` with the stable `ErrorCode` (what generated clients switch on);
//! - the `grove-error-code` trailer with the code's name (what grpcurl users see);
//! - `grove-leader` with the leader's client address when the server knows it.

use grove_proto::v1::{ErrorCode, ErrorDetail};
use grove_proto::{ERROR_DETAIL_TYPE_URL, metadata, rpc};
use prost::Message;
use tonic::{Code, Status};

use crate::error::{GroveError, LeaderHint, Limit};

/// The gRPC code and Grove code of an error.
pub fn codes(e: &GroveError) -> (Code, ErrorCode) {
    use GroveError::*;
    match e {
        NoNode { .. } => (Code::NotFound, ErrorCode::NoNode),
        NodeExists { .. } => (Code::AlreadyExists, ErrorCode::NodeExists),
        BadVersion { .. } => (Code::FailedPrecondition, ErrorCode::BadVersion),
        NotEmpty { .. } => (Code::FailedPrecondition, ErrorCode::NotEmpty),
        NoChildrenForEphemerals { .. } => (Code::FailedPrecondition, ErrorCode::NoChildrenForEphemerals),
        BadArguments { .. } => (Code::InvalidArgument, ErrorCode::BadArguments),
        SequenceOverflow { .. } => (Code::FailedPrecondition, ErrorCode::SequenceOverflow),
        SessionExpired { .. } => (Code::FailedPrecondition, ErrorCode::SessionExpired),
        UnknownSession { .. } => (Code::FailedPrecondition, ErrorCode::UnknownSession),
        AuthFailed { .. } => (Code::Unauthenticated, ErrorCode::AuthFailed),
        NoAuth { .. } => (Code::PermissionDenied, ErrorCode::NoAuth),
        InvalidAcl { .. } => (Code::InvalidArgument, ErrorCode::InvalidAcl),
        QuotaExceeded { .. } => (Code::ResourceExhausted, ErrorCode::QuotaExceeded),
        MultiFailed { error, .. } => codes(error),
        NoQuorum { .. } => (Code::Unavailable, ErrorCode::NoQuorum),
        NotReady { .. } => (Code::Unavailable, ErrorCode::NotReady),
        Compacted { .. } => (Code::OutOfRange, ErrorCode::Compacted),
        Fenced { .. } => (Code::FailedPrecondition, ErrorCode::Fenced),
        LockTimeout { .. } => (Code::DeadlineExceeded, ErrorCode::LockTimeout),
        TooLarge { .. } => (Code::InvalidArgument, ErrorCode::TooLarge),
        TooMany { limit, .. } => (
            Code::ResourceExhausted,
            match limit {
                Limit::Watches => ErrorCode::TooManyWatches,
                Limit::Requests | Limit::Sessions | Limit::Connections | Limit::LockWaiters => {
                    ErrorCode::TooManyRequests
                }
            },
        ),
        Unimplemented(_) => (Code::Unimplemented, ErrorCode::UnimplementedFeature),
        Internal(_) => (Code::Internal, ErrorCode::Internal),
    }
}

/// The `ErrorDetail` of an error.
pub fn detail(e: &GroveError) -> ErrorDetail {
    let (_, code) = codes(e);
    let mut d = ErrorDetail { code: code as i32, path: e.path().unwrap_or_default().to_string(), ..Default::default() };
    let leader = |d: &mut ErrorDetail, l: &Option<LeaderHint>| {
        if let Some(l) = l {
            d.leader_id = l.id;
            d.leader_address = l.address.clone();
        }
    };
    match e {
        GroveError::BadVersion { actual, .. } => d.actual_version = *actual,
        GroveError::NoQuorum { leader: l, .. } | GroveError::NotReady { leader: l, .. } => leader(&mut d, l),
        GroveError::Compacted { oldest } => d.oldest_zxid = *oldest,
        GroveError::MultiFailed { index, error } => {
            let inner = detail(error);
            d.actual_version = inner.actual_version;
            d.op_index = *index as i32;
        }
        GroveError::TooMany { retry_after_ms, .. } => d.retry_after_ms = *retry_after_ms as i64,
        _ => {}
    }
    d
}

pub fn to_status(e: &GroveError) -> Status {
    let (code, ecode) = codes(e);
    let d = detail(e);
    let message = e.to_string();
    let details = rpc::Status {
        code: code as i32,
        message: message.clone(),
        details: vec![prost_types::Any { type_url: ERROR_DETAIL_TYPE_URL.to_string(), value: d.encode_to_vec() }],
    };
    let mut md = tonic::metadata::MetadataMap::new();
    md.insert(metadata::ERROR_CODE, ecode.as_str_name().parse().expect("ascii"));
    if !d.leader_address.is_empty()
        && let Ok(v) = d.leader_address.parse()
    {
        md.insert(metadata::LEADER, v);
    }
    Status::with_details_and_metadata(code, message, details.encode_to_vec().into(), md)
}

impl From<GroveError> for Status {
    fn from(e: GroveError) -> Status {
        to_status(&e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn details_round_trip_with_the_grove_code() {
        let st = to_status(&GroveError::BadVersion { path: "/a".into(), expected: 1, actual: 3 });
        assert_eq!(st.code(), Code::FailedPrecondition);
        assert_eq!(st.metadata().get(metadata::ERROR_CODE).unwrap(), "BAD_VERSION");
        let outer = rpc::Status::decode(st.details()).unwrap();
        assert_eq!(outer.details[0].type_url, ERROR_DETAIL_TYPE_URL);
        let d = ErrorDetail::decode(&outer.details[0].value[..]).unwrap();
        assert_eq!(d.code(), ErrorCode::BadVersion);
        assert_eq!(d.path, "/a");
        assert_eq!(d.actual_version, 3);
    }

    #[test]
    fn design_table_codes() {
        let cases: Vec<(GroveError, Code)> = vec![
            (GroveError::no_node("/x"), Code::NotFound),
            (GroveError::NodeExists { path: "/x".into() }, Code::AlreadyExists),
            (GroveError::NotEmpty { path: "/x".into() }, Code::FailedPrecondition),
            (GroveError::bad_args("/x", "bad"), Code::InvalidArgument),
            (GroveError::SessionExpired { id: 1 }, Code::FailedPrecondition),
            (GroveError::UnknownSession { id: 1 }, Code::FailedPrecondition),
            (GroveError::Compacted { oldest: 9 }, Code::OutOfRange),
            (GroveError::NoQuorum { message: "x".into(), leader: None }, Code::Unavailable),
            (GroveError::NoAuth { path: "/x".into(), perm: "READ".into() }, Code::PermissionDenied),
            (GroveError::AuthFailed { message: "x".into() }, Code::Unauthenticated),
            (GroveError::InvalidAcl { path: "/x".into(), message: "x".into() }, Code::InvalidArgument),
            (GroveError::QuotaExceeded { path: "/x".into(), message: "x".into() }, Code::ResourceExhausted),
        ];
        for (e, code) in cases {
            assert_eq!(to_status(&e).code(), code, "{e}");
        }
    }
}
