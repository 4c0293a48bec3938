//! The HTTP caller as a gRPC caller. The admin port's JSON views and the web console call the
//! same service implementations a gRPC client reaches, so every answer is checked against
//! ACLs exactly as `grove` and generated clients are: `Authorization: Basic user:password`
//! becomes the digest identity `user:password` (ZooKeeper's `addauth digest`), and the
//! connection's address the `ip:` identity.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::HeaderMap;
use axum::http::request::Parts;

use crate::transport::conn_info::ConnInfo;

#[derive(Debug, Clone, Default)]
pub struct HttpCaller {
    /// `user:password` from Basic credentials.
    digest: Option<String>,
    remote: Option<SocketAddr>,
}

impl HttpCaller {
    pub fn new(headers: &HeaderMap, remote: Option<SocketAddr>) -> HttpCaller {
        use base64::Engine;
        let digest = headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Basic "))
            .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b.trim()).ok())
            .and_then(|raw| String::from_utf8(raw).ok());
        HttpCaller { digest, remote }
    }

    /// Whether credentials were given: a refusal then means "not enough" (403) rather than
    /// "log in" (401).
    pub fn has_credentials(&self) -> bool {
        self.digest.is_some()
    }

    /// A gRPC request carrying this caller's identities.
    pub fn request<T>(&self, msg: T) -> tonic::Request<T> {
        let mut req = tonic::Request::new(msg);
        if let Some(user_pw) = &self.digest
            && let Ok(v) = format!("digest {user_pw}").parse()
        {
            req.metadata_mut().insert(grove_proto::metadata::AUTH, v);
        }
        req.extensions_mut().insert(ConnInfo { remote: self.remote, ..Default::default() });
        req
    }
}

impl<S: Send + Sync> FromRequestParts<S> for HttpCaller {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let remote = parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0);
        Ok(HttpCaller::new(&parts.headers, remote))
    }
}
