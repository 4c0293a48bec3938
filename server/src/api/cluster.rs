//! `grove.v1.Cluster`: status, membership, leadership.

use std::sync::Arc;

use grove_proto::v1 as pb;
use grove_proto::v1::cluster_server::Cluster;
use tokio_stream::StreamExt;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};

use super::{convert, metered};
use crate::error::GroveError;
use crate::node::{Consistency, Node, NodeStatus};
use crate::raft::{NotHere, PeerNode, Role};
use crate::storage::access::StateTables;
use crate::transport::limits::ConnLimits;

pub struct ClusterService {
    pub node: Arc<Node>,
    /// One backup stream at a time per server: each holds a read transaction (redb cannot
    /// reuse the pages it sees while writes go on) and a blocking thread.
    pub backups: Arc<tokio::sync::Semaphore>,
    /// The client port's connections.
    pub connections: Arc<ConnLimits>,
}

impl ClusterService {
    pub fn new(node: Arc<Node>, connections: Arc<ConnLimits>) -> ClusterService {
        ClusterService { node, backups: Arc::new(tokio::sync::Semaphore::new(1)), connections }
    }
}

/// The mode `grove status` prints.
pub fn mode(node: &Node, st: &NodeStatus) -> pb::ServerMode {
    let member = st.raft.members.iter().find(|m| m.id == node.id);
    match (member, st.raft.role) {
        (None, _) => pb::ServerMode::NotAMember,
        (Some(m), _) if !m.voter => pb::ServerMode::Observer,
        (_, Role::Leader) if st.standalone => pb::ServerMode::Standalone,
        (_, Role::Leader) => pb::ServerMode::Leader,
        (_, Role::Follower) if st.raft.leader.is_some() => pb::ServerMode::Follower,
        (_, Role::Shutdown) => pb::ServerMode::Unspecified,
        _ => pb::ServerMode::Candidate,
    }
}

pub fn members(node: &Node, st: &NodeStatus) -> Vec<pb::Member> {
    st.raft
        .members
        .iter()
        .map(|m| pb::Member {
            id: m.id,
            role: if m.voter { pb::MemberRole::Voter } else { pb::MemberRole::ObserverRole } as i32,
            peer_address: m.node.peer_addr.clone(),
            client_address: node.client_address_of(m.id, &m.node),
            is_leader: st.raft.leader == Some(m.id),
            matched_index: m.matched.unwrap_or(0),
            lag: m.matched.map(|i| st.raft.last_log_index.saturating_sub(i)).unwrap_or(0),
        })
        .collect()
}

pub fn status_response(node: &Node) -> pb::StatusResponse {
    let st = node.status();
    pb::StatusResponse {
        header: convert::header(node.header(st.zxid)),
        mode: mode(node, &st) as i32,
        server_id: node.id,
        leader_id: st.raft.leader.unwrap_or(0),
        leader_address: st.leader_client_address.clone(),
        term: st.raft.term,
        zxid: st.zxid,
        commit_index: st.raft.committed_index,
        applied_index: st.zxid,
        last_log_index: st.raft.last_log_index,
        snapshot_index: st.raft.snapshot_index,
        members: members(node, &st),
        ready: st.ready,
        version: env!("CARGO_PKG_VERSION").to_string(),
        node_count: st.node_count,
        session_count: st.session_count as u64,
        watch_count: st.watch_count as u64,
        quorum: st.quorum,
        failure: st.raft.failure.clone().unwrap_or_default(),
        cluster_id: st.cluster_id,
    }
}

async fn not_here(node: &Node, e: NotHere) -> GroveError {
    match e {
        NotHere::Failed(e) => e,
        NotHere::NotLeader(_) => GroveError::not_leader(node.leader_hint_resolved().await),
    }
}

impl ClusterService {
    /// Changing the ensemble is the operators' business, like quotas: it needs ADMIN on the
    /// root node (open until the root's ACL is locked down) or the super user.
    async fn operator<T>(&self, req: &Request<T>) -> Result<(), GroveError> {
        let caller = super::auth::who(req, &self.node)?;
        super::auth::check_here(&self.node, &caller, "/", crate::fsm::acl::ADMIN).await
    }
}

fn kind_name(kind: crate::node::watches::WatchKind) -> &'static str {
    use crate::node::watches::WatchKind;
    match kind {
        WatchKind::Node => "node",
        WatchKind::Children => "children",
        WatchKind::NodeAndChildren => "node_and_children",
        WatchKind::Subtree => "subtree",
    }
}

type SnapshotStream = std::pin::Pin<Box<dyn tokio_stream::Stream<Item = Result<pb::SnapshotChunk, Status>> + Send>>;

#[tonic::async_trait]
impl Cluster for ClusterService {
    type SaveSnapshotStream = SnapshotStream;

    async fn sessions(&self, req: Request<pb::SessionsRequest>) -> Result<Response<pb::SessionsResponse>, Status> {
        metered("Sessions", async {
            self.operator(&req).await?;
            // A scan of the session and ephemeral tables: off the async workers.
            let node = self.node.clone();
            let (zxid, sessions) = tokio::task::spawn_blocking(move || -> Result<_, GroveError> {
                let view = node.view()?;
                let mut sessions = Vec::new();
                for (id, rec) in view.tables.sessions()? {
                    let ephemerals = view.tables.session_ephemerals(id)?.len() as u32;
                    sessions.push(pb::SessionInfo { id, timeout_ms: rec.timeout_ms, ephemerals });
                }
                Ok((view.zxid, sessions))
            })
            .await
            .map_err(GroveError::internal)??;
            Ok(pb::SessionsResponse { header: convert::header(self.node.header(zxid)), sessions })
        })
        .await
    }

    async fn watches(&self, req: Request<pb::WatchesRequest>) -> Result<Response<pb::WatchesResponse>, Status> {
        metered("Watches", async {
            self.operator(&req).await?;
            let watches = self
                .node
                .hub
                .list()
                .into_iter()
                .map(|(stream, spec)| pb::WatchInfo {
                    stream,
                    watch_id: spec.watch_id,
                    path: spec.path,
                    kind: format!("{}{}", kind_name(spec.kind), if spec.one_shot { " (one-shot)" } else { "" }),
                })
                .collect();
            Ok(pb::WatchesResponse {
                header: convert::header(self.node.header(self.node.applied_zxid())),
                watches,
                streams: self.node.hub.stream_count() as u32,
            })
        })
        .await
    }

    async fn connections(
        &self,
        req: Request<pb::ConnectionsRequest>,
    ) -> Result<Response<pb::ConnectionsResponse>, Status> {
        metered("Connections", async {
            self.operator(&req).await?;
            let connections = self
                .connections
                .open()
                .into_iter()
                .map(|(remote, open)| pb::ConnectionInfo {
                    remote: remote.to_string(),
                    connected_ms: open.as_millis() as i64,
                })
                .collect();
            Ok(pb::ConnectionsResponse {
                header: convert::header(self.node.header(self.node.applied_zxid())),
                connections,
            })
        })
        .await
    }

    async fn config(&self, req: Request<pb::ConfigRequest>) -> Result<Response<pb::ConfigResponse>, Status> {
        metered("Config", async {
            self.operator(&req).await?;
            let mut settings =
                vec![pb::Setting { name: "id".into(), value: self.node.id.to_string(), source: "resolved".into() }];
            settings.extend(self.node.config.effective.iter().map(|e| pb::Setting {
                name: e.name.clone(),
                value: e.value.clone(),
                source: e.source.clone(),
            }));
            Ok(pb::ConfigResponse { header: convert::header(self.node.header(self.node.applied_zxid())), settings })
        })
        .await
    }

    async fn save_snapshot(&self, req: Request<pb::SaveSnapshotRequest>) -> Result<Response<SnapshotStream>, Status> {
        metered("SaveSnapshot", async {
            self.operator(&req).await?;
            let Ok(permit) = self.backups.clone().try_acquire_owned() else {
                return Err(GroveError::too_many(
                    crate::error::Limit::Requests,
                    "a backup is already streaming from this server; try again when it is done, or ask another member",
                    1_000,
                ));
            };
            let consistency =
                if req.get_ref().linearizable { Consistency::Linearizable } else { Consistency::Sequential };
            let view = self.node.read(consistency, 0).await?;
            let origin = crate::raft::backup::Origin { server_id: self.node.id, now_ms: crate::node::now_ms() };
            // A few chunks ahead of a slow reader, no more: the copy streams, it is never
            // held in memory whole.
            let (tx, rx) = tokio::sync::mpsc::channel(4);
            let runtime = tokio::runtime::Handle::current();
            let copying = tokio::task::spawn_blocking(move || {
                let _permit = permit;
                crate::raft::backup::save(view.tables, origin, tx, runtime)
            });
            // A failure part-way ends the stream with an error, never with a short copy
            // that looks whole (the client also checks the trailer).
            let outcome = futures::stream::once(copying).filter_map(|done| match done {
                Ok(Ok(())) => None,
                Ok(Err(e)) => Some(Err(e.into())),
                Err(e) => Some(Err(GroveError::internal(e).into())),
            });
            let stream: SnapshotStream = Box::pin(ReceiverStream::new(rx).map(Ok).chain(outcome));
            Ok(stream)
        })
        .await
    }

    async fn status(&self, _req: Request<pb::StatusRequest>) -> Result<Response<pb::StatusResponse>, Status> {
        metered("Status", async { Ok(status_response(&self.node)) }).await
    }

    async fn members(&self, _req: Request<pb::MembersRequest>) -> Result<Response<pb::MembersResponse>, Status> {
        metered("Members", async {
            let st = self.node.status();
            Ok(pb::MembersResponse {
                header: convert::header(self.node.header(st.zxid)),
                members: members(&self.node, &st),
            })
        })
        .await
    }

    async fn add_member(&self, req: Request<pb::AddMemberRequest>) -> Result<Response<pb::AddMemberResponse>, Status> {
        metered("AddMember", async {
            self.operator(&req).await?;
            let r = req.into_inner();
            if r.id == 0 {
                return Err(GroveError::bad_args("", "member ids start at 1"));
            }
            if !r.peer_address.contains(':') {
                return Err(GroveError::bad_args("", format!("peer address {:?} needs a port", r.peer_address)));
            }
            let voter = match pb::MemberRole::try_from(r.role) {
                Ok(pb::MemberRole::Voter) | Ok(pb::MemberRole::Unspecified) => true,
                Ok(pb::MemberRole::ObserverRole) => false,
                Err(_) => return Err(GroveError::bad_args("", format!("unknown member role {}", r.role))),
            };
            let peer = PeerNode { peer_addr: r.peer_address, client_addr: r.client_address };
            if let Err(e) = self.node.consensus.add_member(r.id, peer, voter).await {
                return Err(not_here(&self.node, e).await);
            }
            let st = self.node.status();
            Ok(pb::AddMemberResponse {
                header: convert::header(self.node.header(st.zxid)),
                members: members(&self.node, &st),
            })
        })
        .await
    }

    async fn remove_member(
        &self,
        req: Request<pb::RemoveMemberRequest>,
    ) -> Result<Response<pb::RemoveMemberResponse>, Status> {
        metered("RemoveMember", async {
            self.operator(&req).await?;
            let r = req.into_inner();
            if let Err(e) = self.node.remove_member(r.id).await {
                return Err(not_here(&self.node, e).await);
            }
            let st = self.node.status();
            Ok(pb::RemoveMemberResponse {
                header: convert::header(self.node.header(st.zxid)),
                members: members(&self.node, &st),
            })
        })
        .await
    }

    async fn transfer_leader(
        &self,
        req: Request<pb::TransferLeaderRequest>,
    ) -> Result<Response<pb::TransferLeaderResponse>, Status> {
        metered("TransferLeader", async {
            self.operator(&req).await?;
            let to = req.into_inner().to;
            let leader = self.node.transfer_leadership(to).await?;
            Ok(pb::TransferLeaderResponse {
                header: convert::header(self.node.header(self.node.applied_zxid())),
                leader_id: leader,
            })
        })
        .await
    }
}
