//! `grove.v1.Locks` and `grove.v1.Election`: locks, semaphores and leader election decided
//! by the state machine (see `fsm::locks`); calls wait for their grant in `node::locks`.

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use futures::{Stream, StreamExt};
use grove_proto::v1 as pb;
use grove_proto::v1::election_server::Election;
use grove_proto::v1::locks_server::Locks;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};

use super::auth::{who, who_with_session};
use super::{convert, metered, request_id};
use crate::error::GroveError;
use crate::fsm::acl::READ;
use crate::fsm::command::{LockOp, Op, Outcome, Write};
use crate::fsm::locks::LockKind;
use crate::fsm::path;
use crate::node::Node;
use crate::node::locks::Leadership;
use crate::storage::access::StateTables;

/// Where elections named without a leading '/' live.
pub const ELECTIONS_ROOT: &str = "/elections";

pub struct LocksService {
    pub node: Arc<Node>,
}

pub struct ElectionService {
    pub node: Arc<Node>,
}

fn wait(path: &str, timeout_ms: i64) -> Result<Option<Duration>, GroveError> {
    match timeout_ms {
        t if t < 0 => Err(GroveError::bad_args(path, format!("timeout_ms must not be negative, not {t}"))),
        0 => Ok(None),
        t => Ok(Some(Duration::from_millis(t as u64))),
    }
}

fn kind(v: i32, path: &str) -> Result<LockKind, GroveError> {
    match pb::LockKind::try_from(v) {
        Ok(pb::LockKind::Mutex) | Ok(pb::LockKind::Unspecified) => Ok(LockKind::Mutex),
        Ok(pb::LockKind::Read) => Ok(LockKind::Read),
        Ok(pb::LockKind::Write) => Ok(LockKind::Write),
        Ok(pb::LockKind::Semaphore) => Ok(LockKind::Semaphore),
        Err(_) => Err(GroveError::bad_args(path, format!("unknown lock kind {v}"))),
    }
}

fn kind_to_pb(k: LockKind) -> pb::LockKind {
    match k {
        LockKind::Mutex => pb::LockKind::Mutex,
        LockKind::Read => pb::LockKind::Read,
        LockKind::Write => pb::LockKind::Write,
        LockKind::Semaphore => pb::LockKind::Semaphore,
    }
}

fn check_value(node: &Node, path: &str, len: usize) -> Result<(), GroveError> {
    let limit = node.config.max_data_bytes;
    if len > limit {
        return Err(GroveError::TooLarge {
            what: format!("data of a lock node under {path}"),
            path: path.to_string(),
            size: len,
            limit,
        });
    }
    Ok(())
}

/// An election's queue path.
pub fn election_path(name: &str) -> Result<String, GroveError> {
    if name.is_empty() {
        return Err(GroveError::bad_args("", "an election needs a name"));
    }
    let p = if name.starts_with('/') { name.to_string() } else { path::join(ELECTIONS_ROOT, name) };
    path::validate(&p)?;
    if p == "/" {
        return Err(GroveError::bad_args(&p, "the root cannot be an election"));
    }
    Ok(p)
}

/// A node named by the caller must be one of the election's.
fn election_node(dir: &str, node: &str) -> Result<(), GroveError> {
    if node.is_empty() {
        return Err(GroveError::bad_args(dir, "name the node Campaign returned"));
    }
    path::validate(node)?;
    if node == "/" || path::parent(node) != dir {
        return Err(GroveError::bad_args(node, format!("{node} is not a node of the election {dir}")));
    }
    Ok(())
}

fn leader_response(node: &Node, zxid: u64, l: Option<Leadership>) -> pb::LeaderResponse {
    let header = convert::header(node.header(zxid));
    match l {
        Some(l) => pb::LeaderResponse {
            header,
            present: true,
            node: l.node,
            value: l.value,
            token: l.token,
            session_id: l.session_id,
        },
        None => pb::LeaderResponse { header, ..Default::default() },
    }
}

#[tonic::async_trait]
impl Locks for LocksService {
    async fn acquire(&self, req: Request<pb::AcquireRequest>) -> Result<Response<pb::AcquireResponse>, Status> {
        metered("Acquire", async {
            let caller = who_with_session(&req, &self.node, "Acquire")?;
            let id = request_id(req.metadata())?;
            let r = req.into_inner();
            let first = r.paths.first().cloned().unwrap_or_default();
            let kind = kind(r.kind, &first)?;
            let wait = wait(&first, r.timeout_ms)?;
            check_value(&self.node, &first, r.data.len())?;
            let op = LockOp {
                paths: r.paths,
                kind,
                owner: r.owner,
                reentrant: r.reentrant,
                permits: r.permits,
                max_leases: r.max_leases,
                data: r.data,
            };
            let (token, nodes) = self.node.acquire(op, caller, id, wait).await?;
            Ok(pb::AcquireResponse {
                header: convert::header(self.node.header(self.node.applied_zxid())),
                token,
                nodes,
            })
        })
        .await
    }

    async fn release(&self, req: Request<pb::ReleaseRequest>) -> Result<Response<pb::ReleaseResponse>, Status> {
        metered("Release", async {
            let caller = who_with_session(&req, &self.node, "Release")?;
            let id = request_id(req.metadata())?;
            let r = req.into_inner();
            let (zxid, outcome) = self.node.propose(Write::new(caller, id, Op::Unlock { node: r.node })).await?;
            let Outcome::Unlocked { released } = outcome else {
                return Err(GroveError::internal(format!("unexpected outcome {outcome:?}")));
            };
            Ok(pb::ReleaseResponse { header: convert::header(self.node.header(zxid)), released })
        })
        .await
    }

    async fn describe(
        &self,
        req: Request<pb::DescribeLockRequest>,
    ) -> Result<Response<pb::DescribeLockResponse>, Status> {
        metered("DescribeLock", async {
            let caller = who(&req, &self.node)?;
            let r = req.into_inner();
            path::validate(&r.path)?;
            let view = self.node.read(convert::consistency(r.consistency)?, 0).await?;
            view.tables.check(&caller, &r.path, READ)?;
            let mut entries = Vec::new();
            for dir in [LockKind::Mutex.queue_dir(&r.path), LockKind::Semaphore.queue_dir(&r.path)] {
                for (node, rec) in view.tables.lock_queue(&dir)? {
                    let data = view.tables.data(&node)?.unwrap_or_default();
                    entries.push(pb::LockEntry {
                        node,
                        kind: kind_to_pb(rec.kind) as i32,
                        granted: rec.granted,
                        token: rec.token,
                        session_id: rec.session,
                        owner: rec.owner,
                        holds: rec.holds,
                        data,
                    });
                }
            }
            Ok(pb::DescribeLockResponse { header: convert::header(self.node.header(view.zxid)), entries })
        })
        .await
    }
}

type LeaderStream = Pin<Box<dyn Stream<Item = Result<pb::LeaderResponse, Status>> + Send>>;

#[tonic::async_trait]
impl Election for ElectionService {
    async fn campaign(&self, req: Request<pb::CampaignRequest>) -> Result<Response<pb::CampaignResponse>, Status> {
        metered("Campaign", async {
            let caller = who_with_session(&req, &self.node, "Campaign")?;
            let id = request_id(req.metadata())?;
            let r = req.into_inner();
            let dir = election_path(&r.name)?;
            let wait = wait(&dir, r.timeout_ms)?;
            check_value(&self.node, &dir, r.value.len())?;
            let op = LockOp {
                paths: vec![dir],
                kind: LockKind::Mutex,
                owner: String::new(),
                reentrant: false,
                permits: 1,
                max_leases: 0,
                data: r.value,
            };
            let (token, mut nodes) = self.node.acquire(op, caller, id, wait).await?;
            Ok(pb::CampaignResponse {
                header: convert::header(self.node.header(self.node.applied_zxid())),
                token,
                node: nodes.pop().unwrap_or_default(),
            })
        })
        .await
    }

    async fn proclaim(&self, req: Request<pb::ProclaimRequest>) -> Result<Response<pb::ProclaimResponse>, Status> {
        metered("Proclaim", async {
            let caller = who_with_session(&req, &self.node, "Proclaim")?;
            let id = request_id(req.metadata())?;
            let r = req.into_inner();
            let dir = election_path(&r.name)?;
            election_node(&dir, &r.node)?;
            check_value(&self.node, &dir, r.value.len())?;
            let op = Op::Proclaim { node: r.node, data: r.value };
            let (zxid, _) = self.node.propose(Write::new(caller, id, op)).await?;
            Ok(pb::ProclaimResponse { header: convert::header(self.node.header(zxid)) })
        })
        .await
    }

    async fn leader(&self, req: Request<pb::LeaderRequest>) -> Result<Response<pb::LeaderResponse>, Status> {
        metered("Leader", async {
            let caller = who(&req, &self.node)?;
            let r = req.into_inner();
            let dir = election_path(&r.name)?;
            let view = self.node.read(convert::consistency(r.consistency)?, 0).await?;
            view.tables.check(&caller, &dir, READ)?;
            let leader = Node::leader_in(&view, &dir)?;
            Ok(leader_response(&self.node, view.zxid, leader))
        })
        .await
    }

    type ObserveStream = LeaderStream;

    async fn observe(&self, req: Request<pb::LeaderRequest>) -> Result<Response<LeaderStream>, Status> {
        metered("Observe", async {
            let caller = who(&req, &self.node)?;
            let r = req.into_inner();
            let dir = election_path(&r.name)?;
            super::auth::check_here(&self.node, &caller, &dir, READ).await?;
            let rx = self.node.observe_leader(dir, convert::consistency(r.consistency)?).await?;
            let node = self.node.clone();
            let stream = ReceiverStream::new(rx).map(move |(zxid, l)| Ok(leader_response(&node, zxid, l)));
            Ok(Box::pin(stream) as LeaderStream)
        })
        .await
    }

    async fn resign(&self, req: Request<pb::ResignRequest>) -> Result<Response<pb::ResignResponse>, Status> {
        metered("Resign", async {
            let caller = who_with_session(&req, &self.node, "Resign")?;
            let id = request_id(req.metadata())?;
            let r = req.into_inner();
            let dir = election_path(&r.name)?;
            election_node(&dir, &r.node)?;
            let (zxid, _) = self.node.propose(Write::new(caller, id, Op::Unlock { node: r.node })).await?;
            Ok(pb::ResignResponse { header: convert::header(self.node.header(zxid)) })
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn election_names_are_paths_or_live_under_elections() {
        assert_eq!(election_path("db").unwrap(), "/elections/db");
        assert_eq!(election_path("/svc/leader").unwrap(), "/svc/leader");
        assert!(election_path("").is_err());
        assert!(election_path("/").is_err());
        assert!(election_path("/a//b").is_err());
        assert!(election_node("/e/x", "/e/x/lock-0000000001").is_ok());
        assert!(election_node("/e/x", "/e/y/lock-0000000001").is_err());
        assert!(election_node("/e/x", "").is_err());
        assert!(election_node("/e/x", "/").is_err());
        assert!(election_node("/e/x", "nope").is_err());
    }
}
