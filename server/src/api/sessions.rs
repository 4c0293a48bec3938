//! `grove.v1.Sessions`: open, resume, keep alive, close.

use std::pin::Pin;
use std::sync::Arc;

use futures::Stream;
use grove_proto::v1 as pb;
use grove_proto::v1::sessions_server::Sessions;
use rand::RngCore;
use tokio_stream::StreamExt;
use tonic::{Request, Response, Status, Streaming};

use super::{convert, errors, metered};
use crate::error::{GroveError, Limit};
use crate::fsm::acl::Caller;
use crate::fsm::command::{Op, Outcome, Write};
use crate::node::Node;

pub struct SessionsService {
    pub node: Arc<Node>,
}

#[tonic::async_trait]
impl Sessions for SessionsService {
    async fn open(&self, req: Request<pb::OpenSessionRequest>) -> Result<Response<pb::OpenSessionResponse>, Status> {
        metered("OpenSession", async {
            let id = super::request_id(req.metadata())?;
            let r = req.into_inner();
            if r.session_id != 0 {
                // Resume: the session must be live, the secret its own, and the renewal
                // vouched for by the leader, like a keepalive.
                let timeout = self.node.vouch(r.session_id, &r.secret).await?;
                super::record_session(r.session_id);
                return Ok(pb::OpenSessionResponse {
                    header: convert::header(self.node.header(self.node.applied_zxid())),
                    session_id: r.session_id,
                    secret: r.secret,
                    timeout_ms: timeout.as_millis() as i64,
                    resumed: true,
                });
            }
            if r.timeout_ms < 0 {
                return Err(GroveError::bad_args("", format!("session timeout {} ms is negative", r.timeout_ms)));
            }
            let max = self.node.config.max_sessions;
            let live = self.node.sessions.count();
            if max != 0 && live >= max {
                return Err(GroveError::too_many(
                    Limit::Sessions,
                    format!("{live} sessions are open, the ensemble's limit (--max-sessions); close unused ones"),
                    1_000,
                ));
            }
            let timeout = self.node.config.negotiate_session_timeout(r.timeout_ms);
            let mut secret = [0u8; 16];
            rand::rng().fill_bytes(&mut secret);
            let (zxid, outcome) = self
                .node
                .propose(Write::new(
                    Caller::default(),
                    id,
                    Op::OpenSession { timeout_ms: timeout.as_millis() as i64, secret },
                ))
                .await?;
            // A retried open is answered with the first attempt's session and secret.
            let Outcome::SessionOpened { session_id, timeout_ms, secret } = outcome else {
                return Err(GroveError::internal(format!("unexpected outcome {outcome:?}")));
            };
            super::record_session(session_id);
            tracing::debug!(timeout_ms, "session opened");
            Ok(pb::OpenSessionResponse {
                header: convert::header(self.node.header(zxid)),
                session_id,
                secret: secret.to_vec().into(),
                timeout_ms,
                resumed: false,
            })
        })
        .await
    }

    type KeepAliveStream = Pin<Box<dyn Stream<Item = Result<pb::KeepAliveResponse, Status>> + Send>>;

    async fn keep_alive(
        &self,
        req: Request<Streaming<pb::KeepAliveRequest>>,
    ) -> Result<Response<Self::KeepAliveStream>, Status> {
        let node = self.node.clone();
        let inbound = req.into_inner();
        // Each request renews the session and is answered once the renewal holds (see
        // `Node::vouch`), in order. An unknown or expired session, or a server that cannot
        // vouch for it (UNAVAILABLE), ends the stream with its error: the client learns at
        // once, and goes to another server.
        let out = inbound.then(move |msg| {
            let node = node.clone();
            async move {
                let msg = msg?;
                match node.vouch(msg.session_id, &msg.secret).await {
                    Ok(timeout) => Ok(pb::KeepAliveResponse {
                        header: convert::header(node.header(node.applied_zxid())),
                        session_id: msg.session_id,
                        timeout_ms: timeout.as_millis() as i64,
                    }),
                    Err(e) => Err(errors::to_status(&e)),
                }
            }
        });
        // Stop after the first error rather than keep answering a dead session.
        let mut failed = false;
        let out = out.take_while(move |r| {
            let keep = !failed;
            failed = r.is_err();
            keep
        });
        Ok(Response::new(Box::pin(out)))
    }

    async fn close(&self, req: Request<pb::CloseSessionRequest>) -> Result<Response<pb::CloseSessionResponse>, Status> {
        metered("CloseSession", async {
            let r = req.into_inner();
            self.node.authenticate(r.session_id, &r.secret)?;
            super::record_session(r.session_id);
            let caller = Caller { session: r.session_id, ..Caller::default() };
            let (zxid, _) = self.node.propose(Write::new(caller, 0, Op::CloseSession)).await?;
            Ok(pb::CloseSessionResponse { header: convert::header(self.node.header(zxid)) })
        })
        .await
    }

    async fn who_am_i(&self, req: Request<pb::WhoAmIRequest>) -> Result<Response<pb::WhoAmIResponse>, Status> {
        metered("WhoAmI", async {
            let caller = super::auth::identities(&req, &self.node.config)?;
            Ok(pb::WhoAmIResponse {
                identities: caller
                    .ids
                    .into_iter()
                    .map(|(scheme, id)| pb::Identity {
                        // The digest id is user:hash; the user is who they are.
                        id: if scheme == "digest" {
                            id.split_once(':').map(|(u, _)| u.to_string()).unwrap_or(id)
                        } else {
                            id
                        },
                        scheme,
                    })
                    .collect(),
                superuser: caller.superuser,
            })
        })
        .await
    }
}
