//! Sending work to the leader, and serving what peers send to this server.
//!
//! A follower or observer forwards a client's write to the leader over the peer port, then
//! answers only once it has applied the write itself, so the client's next read on this
//! server sees it. Forwarded writes carry a request id: when a forward fails in a way that
//! leaves its fate unknown (a connection broken mid-call), it is sent again, to whichever
//! server leads by then, and the state machine applies it at most once.

use std::sync::Arc;
use std::time::{Duration, Instant};

use grove_proto::peer::{ForwardRequest, InfoResponse, ReadIndexRequest, TouchSessionsRequest};

use super::Node;
use super::proposer::Refused;
use crate::error::GroveError;
use crate::fsm::command::{CommandResult, Write};
use crate::raft::peer_service::RenewalReport;
use crate::raft::{NotHere, PeerHandler, PeerNode, decode_forward_reply};
use crate::storage::access::StateTables;
use crate::storage::state::StateDb;

fn transport_error(node: &Node, status: tonic::Status, what: &str) -> GroveError {
    if grove_proto::transport::never_sent(&status) {
        // Never reached the leader: safe to retry once a leader is known again.
        GroveError::NotReady {
            message: format!("the leader is unreachable: {}", status.message()),
            leader: node.leader_hint(),
        }
    } else {
        GroveError::NoQuorum {
            message: format!("{what} to the leader failed ({}); its outcome is unknown", status.message()),
            leader: node.leader_hint(),
        }
    }
}

impl Node {
    pub(crate) async fn forward_write(
        &self,
        leader_id: u64,
        leader: &PeerNode,
        write: &Write,
    ) -> Result<(u64, CommandResult), GroveError> {
        let mut client =
            self.channels.client(&self.peer_address_of(leader_id, leader)).map_err(GroveError::internal)?;
        let command = postcard::to_allocvec(write).map_err(GroveError::internal)?;
        let reply = client
            .forward(ForwardRequest { command: command.into() })
            .await
            .map_err(|s| transport_error(self, s, "forwarding the write"))?;
        let (zxid, result) = decode_forward_reply(reply.into_inner())?;
        // Answer once this server has applied the write too, so the client's next read here
        // sees it. If that takes too long the write still succeeded: the client carries the
        // zxid and passes it as min_zxid.
        let _ = self.wait_applied(zxid, Instant::now() + self.config.request_timeout).await;
        Ok((zxid, result))
    }

    pub(crate) async fn forward_read_index(&self, leader_id: u64, leader: &PeerNode) -> Result<u64, GroveError> {
        let mut client =
            self.channels.client(&self.peer_address_of(leader_id, leader)).map_err(GroveError::internal)?;
        let reply = client
            .read_index(ReadIndexRequest {})
            .await
            .map_err(|s| transport_error(self, s, "asking for a read index"))?
            .into_inner();
        if !reply.error.is_empty() {
            return Err(postcard::from_bytes(&reply.error).map_err(GroveError::internal)?);
        }
        Ok(reply.index)
    }

    /// Tells the leader of the sessions that made requests here (signs of life besides
    /// keepalives, which are relayed as they come). A failed relay is retried with the next.
    pub(crate) async fn relay_touches(&self, leader_id: u64, leader: &PeerNode, ids: Vec<u64>) {
        let Ok(mut client) = self.channels.client(&self.peer_address_of(leader_id, leader)) else {
            self.sessions.retouch(ids);
            return;
        };
        let call = client.touch_sessions(TouchSessionsRequest { session_ids: ids.clone(), confirm: false });
        match tokio::time::timeout(self.config.request_timeout, call).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => {
                tracing::debug!("relaying session touches to the leader: {}", e.message());
                self.sessions.retouch(ids);
            }
            Err(_) => self.sessions.retouch(ids),
        }
    }
}

/// Entries a joining server may lag the leader's log by when it is promoted to voter.
const JOIN_LAG: u64 = 64;

fn not_here(node: &Node, e: NotHere) -> GroveError {
    match e {
        NotHere::NotLeader(_) => GroveError::not_leader(node.leader_hint()),
        NotHere::Failed(e) => e,
    }
}

/// Whether a `host:port` names no host (0.0.0.0, ::): it reaches whoever dials it locally.
pub(super) fn unspecified(addr: &str) -> bool {
    let host = addr.rsplit_once(':').map(|(h, _)| h).unwrap_or(addr).trim_start_matches('[').trim_end_matches(']');
    host.is_empty() || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_unspecified())
}

/// What this server's state says of server `about`: the cluster id and its registration.
pub(crate) fn info_from(state: &StateDb, about: u64) -> InfoResponse {
    let mut info = InfoResponse::default();
    if let Ok(tables) = state.read() {
        info.cluster_id = tables.cluster_id().unwrap_or(0);
        info.restored_from = tables.restored_from().ok().flatten().unwrap_or_default();
        if let Ok(Some(rec)) = tables.member(about) {
            info.registered = true;
            info.incarnation = rec.incarnation;
            info.boot = rec.boot;
        }
        if let Ok(Some(members)) = tables.membership() {
            info.membership_known = true;
            info.in_membership = members.contains(&about);
        }
    }
    info
}

/// Serves peers' requests with this node.
pub struct PeerGateway {
    pub node: Arc<Node>,
}

impl PeerHandler for PeerGateway {
    async fn forward(&self, mut write: Write) -> Result<(u64, CommandResult), GroveError> {
        // Expiry and reaping are this leader's own decisions, never a peer's.
        if matches!(write.op, crate::fsm::command::Op::ExpireSessions { .. } | crate::fsm::command::Op::Reap { .. }) {
            return Err(GroveError::bad_args("", "expiry and reaping are the leader's own decisions"));
        }
        // Superuser is this server's judgement of the caller's credentials, never the
        // forwarding peer's.
        let super_digest = self.node.config.super_digest.as_deref();
        write.caller.superuser =
            super_digest.is_some_and(|s| write.caller.ids.iter().any(|(scheme, id)| scheme == "digest" && id == s));
        // Into the leader's own batches; the leader stamps the time.
        match self.node.proposer.submit(Arc::new(write)).await {
            Ok(r) => Ok(r),
            // Never forward twice: the sender retries with the leader it learns about.
            Err(Refused::NotLeader(_)) => Err(GroveError::not_leader(self.node.leader_hint())),
            // NO_QUORUM: the sender sends it again (it carries a request id).
            Err(Refused::Unknown(e) | Refused::Failed(e)) => Err(e),
        }
    }

    async fn read_index(&self) -> Result<u64, GroveError> {
        match self.node.consensus.read_index().await {
            Ok(i) => Ok(i),
            Err(NotHere::NotLeader(_)) => Err(GroveError::not_leader(self.node.leader_hint())),
            Err(NotHere::Failed(e)) => Err(e),
        }
    }

    async fn touch_sessions(&self, ids: &[u64], confirm: bool) -> RenewalReport {
        self.node.renew_relayed(ids, confirm).await
    }

    fn info(&self, about: u64) -> InfoResponse {
        let mut info = info_from(&self.node.state, about);
        info.id = self.node.id;
        info.peer_address = self.node.peer_addr.clone();
        info.client_address = self.node.client_addr.clone();
        let st = self.node.consensus.status();
        if st.role == crate::raft::Role::Leader {
            info.matched = st.members.iter().find(|m| m.id == about).and_then(|m| m.matched).unwrap_or(0);
        }
        info
    }

    fn cluster_id(&self) -> u64 {
        self.node.channels.cluster_id()
    }

    async fn join(&self, id: u64, incarnation: u64, peer: PeerNode) -> Result<(), GroveError> {
        let node = &self.node;
        let st = node.consensus.status();
        if st.role != crate::raft::Role::Leader {
            return Err(GroveError::not_leader(node.leader_hint()));
        }
        let refuse = |why: String| Err(GroveError::bad_args("", format!("server {id} cannot join: {why}")));
        // Removed on purpose (the chart's shrink Job): a server still running from the same
        // data directory must not come back on its own; a replacement, empty, may.
        if node.was_removed(id, incarnation) {
            return refuse(
                "it was removed from the ensemble; a replacement starts with an empty data directory".into(),
            );
        }
        if node.config.observers.iter().any(|(o, _)| *o == id) {
            return refuse("it is an observer here".into());
        }
        // An address that reaches this server, or another member, would make the ensemble
        // replicate to itself (openraft does not survive it) or to the wrong server.
        if unspecified(&peer.peer_addr) {
            return refuse(format!("its peer address {} names no host (set --advertise-peer)", peer.peer_addr));
        }
        if let Some(other) = st.members.iter().find(|m| m.id != id && m.node.peer_addr == peer.peer_addr) {
            return refuse(format!("{} is server {}'s peer address", peer.peer_addr, other.id));
        }
        match st.members.iter().find(|m| m.id == id) {
            Some(m) if m.voter => Ok(()),
            Some(m) if m.node.peer_addr != peer.peer_addr => refuse(format!(
                "it is a non-voting member at {}, not {}; remove it first (grove member remove {id})",
                m.node.peer_addr, peer.peer_addr
            )),
            // A learner is promoted only once it holds the log (openraft's own check lets a
            // learner that stores nothing pass while the log is short): a voter that cannot
            // be reached would cost the ensemble its quorum.
            Some(m) => {
                let matched = m.matched.unwrap_or(0);
                if m.matched.is_none() || st.last_log_index.saturating_sub(matched) > JOIN_LAG {
                    return Err(GroveError::NotReady {
                        message: format!("server {id} is catching up ({matched} of {} entries)", st.last_log_index),
                        leader: node.leader_hint(),
                    });
                }
                tracing::info!(id, "promoting the caught-up server that asked to join (--auto-join)");
                node.consensus.add_member(id, peer, true).await.map_err(|e| not_here(node, e))
            }
            None => {
                tracing::info!(id, peer = %peer.peer_addr, "adding the server that asked to join as a learner (--auto-join)");
                node.consensus.add_member(id, peer, false).await.map_err(|e| not_here(node, e))?;
                Err(GroveError::NotReady {
                    message: format!("server {id} added as a learner; catching up"),
                    leader: None,
                })
            }
        }
    }

    fn election(&self, suspend: Duration, campaign: bool) {
        if !suspend.is_zero() {
            self.node.suspend_elections(suspend);
        }
        if campaign {
            let node = self.node.clone();
            tokio::spawn(async move {
                if let Err(e) = node.consensus.campaign().await {
                    tracing::warn!("campaigning for leadership: {e}");
                }
            });
        }
    }
}
