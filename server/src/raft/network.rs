//! The Raft network over gRPC: openraft's RPCs sent to peers' `grove.peer.v1.Peer` service.
//!
//! Channels are created lazily (`connect_lazy`) and shared per address: openraft asks for a
//! client per replication stream and must never wait on a dial there. Each call is bounded
//! by openraft's TTL for it; a refused or broken connection is `Unreachable`, which makes
//! openraft back off from that peer.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use grove_proto::peer::RaftMessage;
use grove_proto::peer::peer_client::PeerClient as GrpcPeerClient;
use openraft::error::{
    InstallSnapshotError, NetworkError, PayloadTooLarge, RPCError, RaftError, RemoteError, Timeout, Unreachable,
};
use openraft::network::{Backoff, RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse, VoteRequest,
    VoteResponse,
};
use openraft::{AnyError, RPCTypes};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Channel, ClientTlsConfig, Endpoint};

use crate::transport::tls::ServerTls;

use super::types::{NodeId, PeerNode, TypeConfig};

/// Largest peer message, both ways. AppendEntries batches are cut to fit (see
/// `PayloadTooLarge`), and snapshot chunks are far smaller.
pub const MAX_PEER_MESSAGE: usize = 64 << 20;

/// Shared lazy channels to peers, by address. With peer TLS, channels present this server's
/// peer certificate and verify the other side against the peer CA; when the certificate files
/// are reloaded, the channels are rebuilt so new connections use the new identity.
#[derive(Clone, Default)]
pub struct PeerChannels {
    inner: Arc<Mutex<Channels>>,
    tls: Option<Arc<ServerTls>>,
    secret: PeerSecret,
}

/// A client of a peer's `Peer` service, presenting the peer secret.
pub type PeerClient = GrpcPeerClient<InterceptedService<Channel, PeerSecret>>;

/// Puts the ensemble's peer secret (when one is configured) and this server's cluster id
/// (once it has one) on every peer request.
#[derive(Clone, Default)]
pub struct PeerSecret {
    secret: Option<MetadataValue<Ascii>>,
    cluster: Arc<AtomicU64>,
}

impl PeerSecret {
    pub fn new(secret: Option<&str>) -> PeerSecret {
        PeerSecret { secret: secret.and_then(|s| s.parse().ok()), cluster: Arc::default() }
    }
}

impl Interceptor for PeerSecret {
    fn call(&mut self, mut req: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(v) = &self.secret {
            req.metadata_mut().insert(grove_proto::metadata::PEER_SECRET, v.clone());
        }
        let cluster = self.cluster.load(Ordering::Relaxed);
        if cluster != 0
            && let Ok(v) = format!("{cluster:016x}").parse()
        {
            req.metadata_mut().insert(grove_proto::metadata::CLUSTER_ID, v);
        }
        Ok(req)
    }
}

/// The peer port's check of the peer secret: a request without the ensemble's secret is
/// refused before it reaches Raft or the node (no vote, no append, no forwarded write).
#[derive(Clone)]
pub struct RequirePeerSecret(Option<Arc<[u8]>>);

impl RequirePeerSecret {
    pub fn new(secret: Option<&str>) -> RequirePeerSecret {
        RequirePeerSecret(secret.map(|s| Arc::from(s.as_bytes())))
    }
}

impl Interceptor for RequirePeerSecret {
    fn call(&mut self, req: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        let Some(expected) = &self.0 else { return Ok(req) };
        let given = req.metadata().get(grove_proto::metadata::PEER_SECRET).map(|v| v.as_bytes()).unwrap_or_default();
        // Constant time: the comparison says nothing of how much of a guess was right.
        let same =
            given.len() == expected.len() && given.iter().zip(expected.iter()).fold(0u8, |a, (x, y)| a | (x ^ y)) == 0;
        if same {
            Ok(req)
        } else {
            metrics::counter!("grove_peer_secret_refusals_total").increment(1);
            Err(tonic::Status::unauthenticated("peer requests need the ensemble's peer secret (--peer-secret-file)"))
        }
    }
}

#[derive(Default)]
struct Channels {
    by_addr: HashMap<String, Channel>,
    /// The TLS files' generation the channels were built with, and its client configuration.
    tls: Option<(u64, ClientTlsConfig)>,
}

impl PeerChannels {
    pub fn new(tls: Option<Arc<ServerTls>>, secret: Option<&str>) -> PeerChannels {
        PeerChannels { inner: Arc::default(), tls, secret: PeerSecret::new(secret) }
    }

    /// This server's cluster id (0 until it has one), sent on every peer request and
    /// checked on those received (`PeerService`).
    pub fn cluster_id(&self) -> u64 {
        self.secret.cluster.load(Ordering::Relaxed)
    }

    pub fn set_cluster_id(&self, id: u64) {
        self.secret.cluster.store(id, Ordering::Relaxed);
    }

    pub fn get(&self, addr: &str) -> Result<Channel, tonic::transport::Error> {
        let mut inner = self.inner.lock().unwrap();
        let tls = self.tls.as_ref().map(|tls| {
            let generation = tls.generation();
            if inner.tls.as_ref().is_none_or(|(g, _)| *g != generation) {
                let f = tls.files();
                match crate::transport::tls::client_tls_config(f.ca.as_deref(), Some((&f.cert, &f.key)), None) {
                    Ok(config) => {
                        inner.by_addr.clear();
                        inner.tls = Some((generation, config));
                    }
                    // The files changed again since they were loaded; keep what works.
                    Err(e) => tracing::warn!("peer TLS files unreadable, keeping the previous ones: {e}"),
                }
            }
            inner.tls.as_ref().map(|(_, c)| c.clone())
        });
        if let Some(c) = inner.by_addr.get(addr) {
            return Ok(c.clone());
        }
        let scheme = if tls.is_some() { "https" } else { "http" };
        let uri = if addr.contains("://") { addr.to_string() } else { format!("{scheme}://{addr}") };
        let mut endpoint = Endpoint::from_shared(uri)?;
        if let Some(Some(config)) = tls {
            endpoint = endpoint.tls_config(config)?;
        }
        let channel = endpoint
            .connect_timeout(Duration::from_millis(500))
            .tcp_nodelay(true)
            .http2_keep_alive_interval(Duration::from_secs(5))
            .keep_alive_timeout(Duration::from_secs(5))
            .connect_lazy();
        inner.by_addr.insert(addr.to_string(), channel.clone());
        Ok(channel)
    }

    pub fn client(&self, addr: &str) -> Result<PeerClient, tonic::transport::Error> {
        Ok(GrpcPeerClient::with_interceptor(self.get(addr)?, self.secret.clone())
            .max_decoding_message_size(MAX_PEER_MESSAGE)
            .max_encoding_message_size(MAX_PEER_MESSAGE))
    }
}

/// Creates peer clients for openraft.
#[derive(Clone)]
pub struct PeerNetwork {
    pub id: NodeId,
    pub channels: PeerChannels,
    /// Peer addresses from this server's own configuration (`--peers`, `--observers`). They
    /// win over the addresses recorded in the membership, which are what the server that
    /// formed the ensemble saw: each server reaches its peers the way it is told to, as in
    /// ZooKeeper where every server lists the ensemble in its own config.
    pub overrides: Arc<HashMap<NodeId, String>>,
}

impl RaftNetworkFactory<TypeConfig> for PeerNetwork {
    type Network = PeerConnection;

    async fn new_client(&mut self, target: NodeId, node: &PeerNode) -> Self::Network {
        let addr = self.overrides.get(&target).cloned().unwrap_or_else(|| node.peer_addr.clone());
        PeerConnection { id: self.id, target, addr, channels: self.channels.clone() }
    }
}

pub struct PeerConnection {
    id: NodeId,
    target: NodeId,
    addr: String,
    channels: PeerChannels,
}

type RpcResult<T, E> = Result<T, RPCError<NodeId, PeerNode, E>>;

impl PeerConnection {
    async fn call<Req, Resp, E>(
        &self,
        action: RPCTypes,
        req: &Req,
        ttl: Duration,
        entries: Option<u64>,
    ) -> RpcResult<Resp, E>
    where
        Req: Serialize,
        Resp: DeserializeOwned,
        E: std::error::Error + DeserializeOwned,
    {
        let payload = postcard::to_allocvec(req).map_err(|e| RPCError::Network(NetworkError::new(&e)))?;
        if payload.len() > MAX_PEER_MESSAGE - 1024 {
            // openraft retries with fewer entries.
            let hint = entries.map(|n| (n / 2).max(1)).unwrap_or(1);
            return Err(RPCError::PayloadTooLarge(PayloadTooLarge::new_entries_hint(hint)));
        }
        let mut client = self.channels.client(&self.addr).map_err(|e| RPCError::Unreachable(Unreachable::new(&e)))?;
        let msg = RaftMessage { payload: payload.into(), error: Default::default() };
        let fut = async {
            match action {
                RPCTypes::Vote => client.vote(msg).await,
                RPCTypes::AppendEntries => client.append_entries(msg).await,
                RPCTypes::InstallSnapshot => client.install_snapshot(msg).await,
            }
        };
        let resp = match tokio::time::timeout(ttl, fut).await {
            Err(_) => {
                return Err(RPCError::Timeout(Timeout { action, id: self.id, target: self.target, timeout: ttl }));
            }
            Ok(Err(status)) => {
                return Err(match status.code() {
                    tonic::Code::Unavailable | tonic::Code::Unknown | tonic::Code::Cancelled => {
                        RPCError::Unreachable(Unreachable::from(AnyError::error(status.message())))
                    }
                    _ => RPCError::Network(NetworkError::from(AnyError::error(format!(
                        "{}: {}",
                        status.code(),
                        status.message()
                    )))),
                });
            }
            Ok(Ok(r)) => r.into_inner(),
        };
        if !resp.error.is_empty() {
            let err: E = postcard::from_bytes(&resp.error).map_err(|e| RPCError::Network(NetworkError::new(&e)))?;
            return Err(RPCError::RemoteError(RemoteError::new(self.target, err)));
        }
        postcard::from_bytes(&resp.payload).map_err(|e| RPCError::Network(NetworkError::new(&e)))
    }
}

impl RaftNetwork<TypeConfig> for PeerConnection {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> RpcResult<AppendEntriesResponse<NodeId>, RaftError<NodeId>> {
        let n = rpc.entries.len() as u64;
        let started = std::time::Instant::now();
        let r = self.call(RPCTypes::AppendEntries, &rpc, option.hard_ttl(), Some(n)).await;
        if n > 0 {
            // To the follower and back: transport, its append and fsync, its answer.
            metrics::histogram!("grove_write_stage_seconds", "stage" => "replicate")
                .record(started.elapsed().as_secs_f64());
        }
        r
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> RpcResult<InstallSnapshotResponse<NodeId>, RaftError<NodeId, InstallSnapshotError>> {
        self.call(RPCTypes::InstallSnapshot, &rpc, option.hard_ttl(), None).await
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        option: RPCOption,
    ) -> RpcResult<VoteResponse<NodeId>, RaftError<NodeId>> {
        self.call(RPCTypes::Vote, &rpc, option.hard_ttl(), None).await
    }

    fn backoff(&self) -> Backoff {
        // A restarted peer must hear from the leader well within its first election timeout:
        // otherwise it campaigns, is refused (leader lease), raises its term, and that higher
        // term later deposes the leader. So retry a missing peer every 200 ms at most.
        Backoff::new((0..).map(|i: u32| Duration::from_millis((50u64 << i.min(2)).min(200))))
    }
}
