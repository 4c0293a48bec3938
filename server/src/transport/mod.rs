//! Accepting connections on every port: the accept loop, TLS, connection limits, and what a
//! request can learn of its connection.

pub mod accept;
pub mod conn_info;
pub mod limits;
pub mod tls;
