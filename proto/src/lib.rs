//! Grove's wire types: the public API `grove.v1`, the server-to-server API `grove.peer.v1`,
//! and the encoded descriptor set for gRPC reflection.

/// The public API.
pub mod v1 {
    tonic::include_proto!("grove.v1");
}

/// Server-to-server RPCs (election, replication, forwarding). Not for clients.
pub mod peer {
    tonic::include_proto!("grove.peer.v1");
}

/// `google.rpc.Status`, the envelope of rich error details.
pub mod rpc {
    tonic::include_proto!("google.rpc");
}

pub mod backup;

/// Every Grove file descriptor, for `tonic-reflection`.
pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("grove_descriptor");

/// Metadata keys shared by servers and clients.
pub mod metadata {
    /// Decimal session id a request acts for.
    pub const SESSION_ID: &str = "grove-session-id";
    /// Hex session secret, proving the caller owns the session.
    pub const SESSION_SECRET: &str = "grove-session-secret";
    /// Trailer with the `ErrorCode` name of a failed call, for tools that cannot read
    /// `grpc-status-details-bin` (grpcurl shows trailers).
    pub const ERROR_CODE: &str = "grove-error-code";
    /// Trailer with the leader's client address when a call failed for want of a leader.
    pub const LEADER: &str = "grove-leader";
    /// Hex id (32 digits) naming a write across retries: the servers apply it once and
    /// answer its retries with the first result (remembered for 2 minutes).
    pub const REQUEST_ID: &str = "grove-request-id";
    /// Credentials for ACLs, repeatable: `digest user:password`. Send them over TLS.
    pub const AUTH: &str = "grove-auth";
    /// The ensemble's shared peer secret, on every peer RPC (`--peer-secret-file`).
    pub const PEER_SECRET: &str = "grove-peer-secret";
    /// The sending server's cluster id (16 hex digits), on every peer RPC once it has one:
    /// a member of another cluster refuses its Raft messages.
    pub const CLUSTER_ID: &str = "grove-cluster-id";
}

/// The type URL of `grove.v1.ErrorDetail` inside `google.protobuf.Any`.
pub const ERROR_DETAIL_TYPE_URL: &str = "type.googleapis.com/grove.v1.ErrorDetail";

/// Facts about failed calls that servers and clients both need.
pub mod transport {
    /// The TLS failure under a failed call, if the connection failed in its handshake (an
    /// untrusted or missing certificate, a refused client certificate). Retrying cannot help:
    /// the settings must change. Decided from the local error chain.
    pub fn tls_failure(status: &tonic::Status) -> Option<String> {
        let mut source: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(status);
        while let Some(e) = source {
            let text = e.to_string();
            const SIGNS: [&str; 5] = [
                "invalid peer certificate",
                "received fatal alert",
                "peer sent no certificates",
                "peer is incompatible",
                "InvalidContentType",
            ];
            if SIGNS.iter().any(|s| text.contains(s)) {
                return Some(text);
            }
            source = e.source();
        }
        None
    }

    /// True if a failed call never left this process: the connection could not be made,
    /// so nothing was sent and retrying elsewhere cannot apply a request twice. Decided
    /// from the local error chain, never from a message a remote server sent.
    pub fn never_sent(status: &tonic::Status) -> bool {
        let mut source: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(status);
        while let Some(e) = source {
            if let Some(io) = e.downcast_ref::<std::io::Error>()
                && matches!(
                    io.kind(),
                    std::io::ErrorKind::ConnectionRefused
                        | std::io::ErrorKind::AddrNotAvailable
                        | std::io::ErrorKind::HostUnreachable
                        | std::io::ErrorKind::NetworkUnreachable
                )
            {
                return true;
            }
            // hyper-util's connector reports every dial failure as "tcp connect error".
            let text = e.to_string();
            if text.starts_with("tcp connect error") || text == "client error (Connect)" {
                return true;
            }
            source = e.source();
        }
        false
    }
}
