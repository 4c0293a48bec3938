//! The server side of `grove.peer.v1.Peer`: decode, hand to openraft or the node, encode.

use std::future::Future;
use std::sync::Arc;

use grove_proto::peer::peer_server::Peer;
use grove_proto::peer::{
    ElectionRequest, ElectionResponse, ForwardRequest, ForwardResponse, InfoRequest, InfoResponse, JoinRequest,
    JoinResponse, RaftMessage, ReadIndexRequest, ReadIndexResponse, TouchSessionsRequest, TouchSessionsResponse,
};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tonic::{Request, Response, Status};

use super::types::{PeerNode, Raft};
use crate::error::GroveError;
use crate::fsm::command::{CommandResult, Write};

/// What the node provides to peers beyond Raft itself.
/// The leader's answer to relayed renewals.
#[derive(Debug)]
pub struct RenewalReport {
    /// Sessions it does not know (ended, or never opened).
    pub unknown: Vec<u64>,
    /// Of `unknown`, those it remembers as ended.
    pub ended: Vec<u64>,
    /// Sessions it is expiring: not renewed.
    pub expiring: Vec<u64>,
    /// With `confirm`: Ok once a quorum confirmed its leadership after the renewals.
    pub verdict: Result<(), GroveError>,
}

pub trait PeerHandler: Send + Sync + 'static {
    /// Propose a write forwarded by a follower; returns its entry's zxid and result.
    fn forward(&self, write: Write) -> impl Future<Output = Result<(u64, CommandResult), GroveError>> + Send;
    /// A read index confirmed by a quorum (this node must be the leader).
    fn read_index(&self) -> impl Future<Output = Result<u64, GroveError>> + Send;
    /// Sessions kept alive through a follower: what became of them, and with `confirm`
    /// whether this server's leadership was confirmed after renewing them.
    fn touch_sessions(&self, ids: &[u64], confirm: bool) -> impl Future<Output = RenewalReport> + Send;
    /// Who this server is, and what it knows of server `about`.
    fn info(&self, about: u64) -> InfoResponse;
    /// Leadership hand-over: suspend the election timer, and/or campaign now.
    fn election(&self, suspend: std::time::Duration, campaign: bool);
    /// This server's cluster id (0 until it has one).
    fn cluster_id(&self) -> u64;
    /// Adds the asking server as a voter (see `Join` in peer.proto).
    fn join(&self, id: u64, incarnation: u64, peer: PeerNode) -> impl Future<Output = Result<(), GroveError>> + Send;
}

pub struct PeerService<H> {
    raft: Raft,
    handler: Arc<H>,
}

impl<H> PeerService<H> {
    pub fn new(raft: Raft, handler: Arc<H>) -> Self {
        PeerService { raft, handler }
    }
}

impl<H: PeerHandler> PeerService<H> {
    /// Refuses what a member of another cluster sends: two ensembles whose members share
    /// addresses and ids (a majority's data directories emptied and bootstrapped anew,
    /// --peers pointing at the wrong servers) must not mix their logs, which Raft cannot
    /// tell apart by term and index alone. Only ids both known count: a cluster's members
    /// learn its id at different moments of its first second (the first registration), and a
    /// new or joining server has none yet.
    fn same_cluster<T>(&self, req: &Request<T>) -> Result<(), Status> {
        let mine = self.handler.cluster_id();
        let theirs = req
            .metadata()
            .get(grove_proto::metadata::CLUSTER_ID)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| u64::from_str_radix(v, 16).ok())
            .unwrap_or(0);
        if mine == 0 || theirs == 0 || theirs == mine {
            return Ok(());
        }
        metrics::counter!("grove_peer_cluster_refusals_total").increment(1);
        // Refused senders retry at heartbeat rate: say it once in a while, count every one.
        static LAST_WARNED: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
        if LAST_WARNED.load(std::sync::atomic::Ordering::Relaxed) + 10 <= now {
            LAST_WARNED.store(now, std::sync::atomic::Ordering::Relaxed);
            tracing::warn!(
                "refused a peer request from cluster {theirs:016x}: this server belongs to cluster {mine:016x}"
            );
        }
        Err(Status::failed_precondition(format!(
            "this server belongs to cluster {mine:016x} and the sender to cluster {theirs:016x}: two ensembles share \
             member addresses (check --peers, and whether data directories were emptied)"
        )))
    }
}

fn decode<T: DeserializeOwned>(raw: &[u8]) -> Result<T, Status> {
    postcard::from_bytes(raw).map_err(|e| Status::invalid_argument(format!("undecodable peer message: {e}")))
}

fn encode<T: Serialize, E: Serialize>(r: Result<T, E>) -> Result<Response<RaftMessage>, Status> {
    let internal = |e: postcard::Error| Status::internal(format!("encoding peer reply: {e}"));
    let msg = match r {
        Ok(v) => {
            RaftMessage { payload: postcard::to_allocvec(&v).map_err(internal)?.into(), error: Default::default() }
        }
        Err(e) => {
            RaftMessage { payload: Default::default(), error: postcard::to_allocvec(&e).map_err(internal)?.into() }
        }
    };
    Ok(Response::new(msg))
}

#[tonic::async_trait]
impl<H: PeerHandler> Peer for PeerService<H> {
    async fn vote(&self, req: Request<RaftMessage>) -> Result<Response<RaftMessage>, Status> {
        self.same_cluster(&req)?;
        let rpc = decode(&req.into_inner().payload)?;
        encode(self.raft.vote(rpc).await)
    }

    async fn append_entries(&self, req: Request<RaftMessage>) -> Result<Response<RaftMessage>, Status> {
        self.same_cluster(&req)?;
        let rpc: openraft::raft::AppendEntriesRequest<super::types::TypeConfig> = decode(&req.into_inner().payload)?;
        let entries = rpc.entries.len();
        let started = std::time::Instant::now();
        let r = self.raft.append_entries(rpc).await;
        if entries > 0 {
            // The follower's part: append, fsync, answer.
            metrics::histogram!("grove_write_stage_seconds", "stage" => "follower_append")
                .record(started.elapsed().as_secs_f64());
        }
        encode(r)
    }

    async fn install_snapshot(&self, req: Request<RaftMessage>) -> Result<Response<RaftMessage>, Status> {
        self.same_cluster(&req)?;
        let rpc = decode(&req.into_inner().payload)?;
        encode(self.raft.install_snapshot(rpc).await)
    }

    async fn forward(&self, req: Request<ForwardRequest>) -> Result<Response<ForwardResponse>, Status> {
        self.same_cluster(&req)?;
        let write: Write = decode(&req.into_inner().command)?;
        let reply = match self.handler.forward(write).await {
            Ok((zxid, result)) => ForwardResponse {
                result: postcard::to_allocvec(&result).map_err(|e| Status::internal(e.to_string()))?.into(),
                zxid,
                error: Default::default(),
            },
            Err(e) => ForwardResponse {
                result: Default::default(),
                zxid: 0,
                error: postcard::to_allocvec(&e).map_err(|e| Status::internal(e.to_string()))?.into(),
            },
        };
        Ok(Response::new(reply))
    }

    async fn read_index(&self, req: Request<ReadIndexRequest>) -> Result<Response<ReadIndexResponse>, Status> {
        self.same_cluster(&req)?;
        let reply = match self.handler.read_index().await {
            Ok(index) => ReadIndexResponse { index, error: Default::default() },
            Err(e) => ReadIndexResponse {
                index: 0,
                error: postcard::to_allocvec(&e).map_err(|e| Status::internal(e.to_string()))?.into(),
            },
        };
        Ok(Response::new(reply))
    }

    async fn touch_sessions(
        &self,
        req: Request<TouchSessionsRequest>,
    ) -> Result<Response<TouchSessionsResponse>, Status> {
        self.same_cluster(&req)?;
        let r = req.into_inner();
        let RenewalReport { unknown, ended, expiring, verdict } =
            self.handler.touch_sessions(&r.session_ids, r.confirm).await;
        let (confirmed, error) = match verdict {
            Ok(()) => (r.confirm, Default::default()),
            Err(e) => (false, postcard::to_allocvec(&e).map_err(|e| Status::internal(e.to_string()))?.into()),
        };
        Ok(Response::new(TouchSessionsResponse { confirmed, unknown, ended, error, expiring }))
    }

    async fn election(&self, req: Request<ElectionRequest>) -> Result<Response<ElectionResponse>, Status> {
        self.same_cluster(&req)?;
        let r = req.into_inner();
        self.handler.election(std::time::Duration::from_millis(r.suspend_ms), r.campaign);
        Ok(Response::new(ElectionResponse {}))
    }

    async fn info(&self, req: Request<InfoRequest>) -> Result<Response<InfoResponse>, Status> {
        Ok(Response::new(self.handler.info(req.into_inner().about)))
    }

    async fn join(&self, req: Request<JoinRequest>) -> Result<Response<JoinResponse>, Status> {
        self.same_cluster(&req)?;
        let r = req.into_inner();
        let peer = PeerNode { peer_addr: r.peer_address, client_addr: r.client_address };
        let error = match self.handler.join(r.id, r.incarnation, peer).await {
            Ok(()) => Default::default(),
            Err(e) => postcard::to_allocvec(&e).map_err(|e| Status::internal(e.to_string()))?.into(),
        };
        Ok(Response::new(JoinResponse { error }))
    }
}

/// The peer port while a server starts, before Raft runs: it answers `Info` (what this
/// server knows from its state, so starting peers can check one another) and nothing else.
pub struct BootingPeer<F> {
    info: F,
}

impl<F: Fn(u64) -> InfoResponse + Send + Sync + 'static> BootingPeer<F> {
    pub fn new(info: F) -> Self {
        BootingPeer { info }
    }
}

fn starting() -> Status {
    Status::unavailable("this server is starting")
}

#[tonic::async_trait]
impl<F: Fn(u64) -> InfoResponse + Send + Sync + 'static> Peer for BootingPeer<F> {
    async fn vote(&self, _: Request<RaftMessage>) -> Result<Response<RaftMessage>, Status> {
        Err(starting())
    }

    async fn append_entries(&self, _: Request<RaftMessage>) -> Result<Response<RaftMessage>, Status> {
        Err(starting())
    }

    async fn install_snapshot(&self, _: Request<RaftMessage>) -> Result<Response<RaftMessage>, Status> {
        Err(starting())
    }

    async fn forward(&self, _: Request<ForwardRequest>) -> Result<Response<ForwardResponse>, Status> {
        Err(starting())
    }

    async fn read_index(&self, _: Request<ReadIndexRequest>) -> Result<Response<ReadIndexResponse>, Status> {
        Err(starting())
    }

    async fn touch_sessions(
        &self,
        _: Request<TouchSessionsRequest>,
    ) -> Result<Response<TouchSessionsResponse>, Status> {
        Err(starting())
    }

    async fn election(&self, _: Request<ElectionRequest>) -> Result<Response<ElectionResponse>, Status> {
        Err(starting())
    }

    async fn info(&self, req: Request<InfoRequest>) -> Result<Response<InfoResponse>, Status> {
        Ok(Response::new((self.info)(req.into_inner().about)))
    }

    async fn join(&self, _: Request<JoinRequest>) -> Result<Response<JoinResponse>, Status> {
        Err(starting())
    }
}

/// Decodes a forwarded reply into the node's terms.
pub fn decode_forward_reply(reply: ForwardResponse) -> Result<(u64, CommandResult), GroveError> {
    if !reply.error.is_empty() {
        return Err(postcard::from_bytes(&reply.error).map_err(GroveError::internal)?);
    }
    let result: CommandResult = postcard::from_bytes(&reply.result).map_err(GroveError::internal)?;
    Ok((reply.zxid, result))
}
