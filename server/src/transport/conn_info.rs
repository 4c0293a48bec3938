//! What a handler can learn about the connection a request came on, from the request's
//! extensions: the peer's address and verified certificate chain (the `ip:` and `x509:`
//! identities), and whether the connection is refused by a limit.

use std::net::SocketAddr;
use std::sync::Arc;

use rustls_pki_types::CertificateDer;

/// What a handler can learn about the connection a request came on.
#[derive(Debug, Clone, Default)]
pub struct ConnInfo {
    pub remote: Option<SocketAddr>,
    /// The verified client certificate chain (leaf first), when one was presented.
    pub certs: Option<Arc<Vec<CertificateDer<'static>>>>,
    /// Set on a connection over a limit: its requests are answered with this reason.
    pub refused: Option<Arc<str>>,
}
