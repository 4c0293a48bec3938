//! Who a request comes from: its session and the identities ACLs are checked against.
//!
//! Identities come from three places, none of them stored: the connection's address
//! (`ip`), the verified TLS client certificate (`x509`), and `grove-auth: digest
//! user:password` metadata on the request itself (`digest`). Per request rather than per
//! session (ZooKeeper's `addauth` is per connection): any server can check any request with
//! nothing replicated, and a client that reconnects elsewhere keeps its rights.

use grove_proto::metadata;
use tonic::Request;

use super::caller_session;
use crate::config::Config;
use crate::error::GroveError;
use crate::fsm::acl::{Caller, digest_id};
use crate::node::Node;
use crate::storage::access::StateTables;
use crate::transport::conn_info::ConnInfo;
use crate::transport::tls::subject_of;

/// Most `grove-auth` values one request may carry.
const MAX_CREDENTIALS: usize = 8;

/// Authenticates the session (if any) and gathers the caller's identities.
pub(crate) fn who<T>(req: &Request<T>, node: &Node) -> Result<Caller, GroveError> {
    let session = caller_session(req.metadata(), node)?;
    let mut caller = identities(req, &node.config)?;
    caller.session = session;
    // For logs: who, by name, never a digest's hash. The address is the connection's and
    // every request has one: only credentials are worth the formatting.
    if caller.ids.iter().any(|(s, _)| s != "ip") {
        let shown: Vec<String> = caller
            .ids
            .iter()
            .filter(|(s, _)| s != "ip")
            .map(|(s, id)| match s.as_str() {
                "digest" => format!("digest:{}", id.split_once(':').map(|(u, _)| u).unwrap_or_default()),
                _ => format!("{s}:{id}"),
            })
            .collect();
        tracing::Span::current().record("caller", tracing::field::display(shown.join(" ")));
    }
    Ok(caller)
}

/// Like `who`, for what a session must own (lock nodes, election candidacies).
pub(crate) fn who_with_session<T>(req: &Request<T>, node: &Node, what: &str) -> Result<Caller, GroveError> {
    let caller = who(req, node)?;
    if caller.session == 0 {
        return Err(GroveError::bad_args(
            "",
            format!(
                "{what} needs a session, which owns the lock node: open one with Sessions.Open and pass {}",
                metadata::SESSION_ID
            ),
        ));
    }
    Ok(caller)
}

/// Fails with NO_AUTH unless `caller` has `perm` on the node at `path` in this server's
/// applied state (a missing node passes). For what is checked once, at the start of
/// something long-lived (a watch, an observer stream) or outside the log (membership
/// changes): a read of local state, no quorum round, as ZooKeeper checks a watch.
pub(crate) async fn check_here(
    node: &std::sync::Arc<Node>,
    caller: &Caller,
    path: &str,
    perm: u32,
) -> Result<(), GroveError> {
    node.read(crate::node::Consistency::Sequential, 0).await?.tables.check(caller, path, perm)
}

/// The identities a request carries.
pub(crate) fn identities<T>(req: &Request<T>, config: &Config) -> Result<Caller, GroveError> {
    let mut ids: Vec<(String, String)> = Vec::new();
    if let Some(info) = req.extensions().get::<ConnInfo>() {
        if let Some(addr) = info.remote {
            ids.push(("ip".into(), addr.ip().to_canonical().to_string()));
        }
        if let Some(subject) = info.certs.as_ref().and_then(|c| c.first()).and_then(subject_of) {
            ids.push(("x509".into(), subject));
        }
    }
    let failed = |message: String| GroveError::AuthFailed { message };
    let creds: Vec<_> = req.metadata().get_all(metadata::AUTH).iter().collect();
    if creds.len() > MAX_CREDENTIALS {
        return Err(failed(format!("{} {} values; at most {MAX_CREDENTIALS}", creds.len(), metadata::AUTH)));
    }
    for value in creds {
        let text = value.to_str().map_err(|_| failed(format!("{} is not text", metadata::AUTH)))?;
        let (scheme, credential) = text.trim().split_once(' ').unwrap_or((text.trim(), ""));
        match scheme {
            "digest" => {
                let Some((user, password)) = credential.split_once(':').filter(|(u, _)| !u.is_empty()) else {
                    return Err(failed(format!("{}: digest needs user:password", metadata::AUTH)));
                };
                ids.push(("digest".into(), digest_id(user, password)));
            }
            other => {
                return Err(failed(format!(
                    "{}: unknown scheme {other:?} (digest user:password; x509 comes from the TLS client certificate)",
                    metadata::AUTH
                )));
            }
        }
    }
    ids.dedup();
    let superuser =
        config.super_digest.as_ref().is_some_and(|s| ids.iter().any(|(scheme, id)| scheme == "digest" && id == s));
    Ok(Caller { session: 0, ids, superuser })
}
