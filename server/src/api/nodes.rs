//! `grove.v1.Nodes`: the tree operations.

use std::sync::Arc;

use grove_proto::v1 as pb;
use grove_proto::v1::nodes_server::Nodes;
use tonic::{Request, Response, Status};

use super::auth::who;
use super::{caller_session, convert, metered, request_id};
use crate::config::Config;
use crate::error::GroveError;
use crate::fsm::acl::{ADMIN, READ};
use crate::fsm::command::{CreateOp, DeleteOp, MultiOp, MultiOutcome, Op, Outcome, SetOp, Write};
use crate::fsm::path;
use crate::node::{Consistency, Node};
use crate::storage::access::StateTables;

pub struct NodesService {
    pub node: Arc<Node>,
}

fn unexpected(o: Outcome) -> GroveError {
    GroveError::internal(format!("unexpected outcome {o:?}"))
}

fn check_data(cfg: &Config, path: &str, len: usize) -> Result<(), GroveError> {
    if len > cfg.max_data_bytes {
        return Err(GroveError::TooLarge {
            what: format!("data of {path}"),
            path: path.to_string(),
            size: len,
            limit: cfg.max_data_bytes,
        });
    }
    Ok(())
}

// Requests are converted, not judged: paths, modes, TTLs and sessions are the state
// machine's rules, checked once when the write is applied (`fsm::apply`). Only what
// depends on this server's configuration (sizes) is checked here.

fn create_op(cfg: &Config, r: pb::CreateRequest) -> Result<CreateOp, GroveError> {
    let mode = convert::create_mode(r.mode, &r.path)?;
    check_data(cfg, &r.path, r.data.len())?;
    Ok(CreateOp {
        acl: convert::acl_in(r.acl),
        path: r.path,
        data: r.data,
        mode,
        ttl_ms: r.ttl_ms,
        create_parents: r.create_parents,
    })
}

fn delete_op(r: pb::DeleteRequest) -> Result<DeleteOp, GroveError> {
    let version = convert::version(&r.path, r.version)?;
    Ok(DeleteOp { path: r.path, version })
}

fn set_op(cfg: &Config, r: pb::SetRequest) -> Result<SetOp, GroveError> {
    check_data(cfg, &r.path, r.data.len())?;
    let version = convert::version(&r.path, r.version)?;
    Ok(SetOp { path: r.path, data: r.data, version })
}

/// The operations of a Multi; one refused here fails the whole Multi with its index, as
/// one refused at apply time does.
fn multi_ops(cfg: &Config, ops: Vec<pb::Op>) -> Result<Vec<MultiOp>, GroveError> {
    if ops.len() > cfg.max_multi_ops {
        return Err(GroveError::bad_args(
            "",
            format!("a multi holds at most {} operations, not {}", cfg.max_multi_ops, ops.len()),
        ));
    }
    ops.into_iter()
        .enumerate()
        .map(|(index, op)| {
            let op = match op.op {
                Some(pb::op::Op::Create(c)) => create_op(cfg, c).map(MultiOp::Create),
                Some(pb::op::Op::Delete(d)) => delete_op(d).map(MultiOp::Delete),
                Some(pb::op::Op::Set(s)) => set_op(cfg, s).map(MultiOp::Set),
                Some(pb::op::Op::Check(c)) => {
                    convert::version(&c.path, c.version).map(|version| MultiOp::Check { path: c.path, version })
                }
                Some(pb::op::Op::CheckFence(c)) => Ok(MultiOp::CheckFence { path: c.path, token: c.token }),
                None => Err(GroveError::bad_args("", format!("operation {index} of the multi is empty"))),
            };
            op.map_err(|error| GroveError::MultiFailed { index, error: Box::new(error) })
        })
        .collect()
}

impl NodesService {
    async fn read_view(&self, consistency: i32, min_zxid: u64) -> Result<crate::node::ReadView, GroveError> {
        let c = convert::consistency(consistency)?;
        self.node.read(c, min_zxid).await
    }
}

#[tonic::async_trait]
impl Nodes for NodesService {
    async fn create(&self, req: Request<pb::CreateRequest>) -> Result<Response<pb::CreateResponse>, Status> {
        metered("Create", async {
            let caller = who(&req, &self.node)?;
            let id = request_id(req.metadata())?;
            let op = create_op(&self.node.config, req.into_inner())?;
            let (zxid, outcome) = self.node.propose(Write::new(caller, id, Op::Create(op))).await?;
            let Outcome::Created { path, stat } = outcome else { return Err(unexpected(outcome)) };
            Ok(pb::CreateResponse {
                header: convert::header(self.node.header(zxid)),
                path,
                stat: Some(convert::stat(&stat)),
            })
        })
        .await
    }

    async fn delete(&self, req: Request<pb::DeleteRequest>) -> Result<Response<pb::DeleteResponse>, Status> {
        metered("Delete", async {
            let caller = who(&req, &self.node)?;
            let id = request_id(req.metadata())?;
            let op = delete_op(req.into_inner())?;
            let (zxid, _) = self.node.propose(Write::new(caller, id, Op::Delete(op))).await?;
            Ok(pb::DeleteResponse { header: convert::header(self.node.header(zxid)) })
        })
        .await
    }

    async fn get(&self, req: Request<pb::GetRequest>) -> Result<Response<pb::GetResponse>, Status> {
        metered("Get", async {
            let caller = who(&req, &self.node)?;
            let r = req.into_inner();
            path::validate(&r.path)?;
            let view = self.read_view(r.consistency, r.min_zxid).await?;
            let rec = view.tables.node(&r.path)?.ok_or_else(|| GroveError::no_node(&r.path))?;
            caller.check(&rec.acl, READ, &r.path)?;
            Ok(pb::GetResponse {
                header: convert::header(self.node.header(view.zxid)),
                data: rec.data,
                stat: Some(convert::stat(&rec.stat)),
            })
        })
        .await
    }

    async fn exists(&self, req: Request<pb::ExistsRequest>) -> Result<Response<pb::ExistsResponse>, Status> {
        metered("Exists", async {
            let caller = who(&req, &self.node)?;
            let r = req.into_inner();
            path::validate(&r.path)?;
            let view = self.read_view(r.consistency, r.min_zxid).await?;
            // Since ZooKeeper 3.9.2 exists needs READ on a node that exists: its stat is
            // information too.
            let found = view.tables.stat_acl(&r.path)?;
            if let Some((_, acl)) = &found {
                caller.check(acl, READ, &r.path)?;
            }
            let stat = found.map(|(s, _)| s);
            Ok(pb::ExistsResponse {
                header: convert::header(self.node.header(view.zxid)),
                exists: stat.is_some(),
                stat: stat.as_ref().map(convert::stat),
            })
        })
        .await
    }

    async fn set(&self, req: Request<pb::SetRequest>) -> Result<Response<pb::SetResponse>, Status> {
        metered("Set", async {
            let caller = who(&req, &self.node)?;
            let id = request_id(req.metadata())?;
            let op = set_op(&self.node.config, req.into_inner())?;
            let (zxid, outcome) = self.node.propose(Write::new(caller, id, Op::Set(op))).await?;
            let Outcome::Set { stat } = outcome else { return Err(unexpected(outcome)) };
            Ok(pb::SetResponse { header: convert::header(self.node.header(zxid)), stat: Some(convert::stat(&stat)) })
        })
        .await
    }

    async fn get_children(
        &self,
        req: Request<pb::GetChildrenRequest>,
    ) -> Result<Response<pb::GetChildrenResponse>, Status> {
        metered("GetChildren", async {
            let caller = who(&req, &self.node)?;
            let r = req.into_inner();
            path::validate(&r.path)?;
            let max = self.node.config.max_page_size;
            let limit = if r.limit == 0 { max } else { (r.limit as usize).min(max) };
            let view = self.read_view(r.consistency, r.min_zxid).await?;
            let (parent, acl) = view.tables.stat_acl(&r.path)?.ok_or_else(|| GroveError::no_node(&r.path))?;
            caller.check(&acl, READ, &r.path)?;
            let page = view.tables.children(&r.path, &r.page_token, limit, r.include_stats.then_some(&caller))?;
            Ok(pb::GetChildrenResponse {
                header: convert::header(self.node.header(view.zxid)),
                names: page.names,
                stats: page.stats.iter().map(convert::stat).collect(),
                stat: Some(convert::stat(&parent)),
                next_page_token: page.next.unwrap_or_default(),
            })
        })
        .await
    }

    async fn multi(&self, req: Request<pb::MultiRequest>) -> Result<Response<pb::MultiResponse>, Status> {
        metered("Multi", async {
            let caller = who(&req, &self.node)?;
            let id = request_id(req.metadata())?;
            let ops = multi_ops(&self.node.config, req.into_inner().ops)?;
            let n = ops.len();
            if n == 0 {
                return Ok(pb::MultiResponse {
                    header: convert::header(self.node.header(self.node.applied_zxid())),
                    succeeded: true,
                    results: vec![],
                });
            }
            match self.node.propose(Write::new(caller, id, Op::Multi(ops))).await {
                Ok((zxid, Outcome::Multi(outcomes))) => Ok(pb::MultiResponse {
                    header: convert::header(self.node.header(zxid)),
                    succeeded: true,
                    results: outcomes
                        .into_iter()
                        .map(|o| {
                            let (path, stat) = match o {
                                MultiOutcome::Created { path, stat } => (path, Some(convert::stat(&stat))),
                                MultiOutcome::Set { stat } => (String::new(), Some(convert::stat(&stat))),
                                MultiOutcome::Deleted | MultiOutcome::Checked | MultiOutcome::Fenced => {
                                    (String::new(), None)
                                }
                            };
                            pb::OpResult { code: pb::ErrorCode::Ok as i32, message: String::new(), path, stat }
                        })
                        .collect(),
                }),
                Ok((_, o)) => Err(unexpected(o)),
                Err(GroveError::MultiFailed { index, error }) => {
                    let failed = super::errors::codes(&error).1;
                    Ok(pb::MultiResponse {
                        header: convert::header(self.node.header(self.node.applied_zxid())),
                        succeeded: false,
                        results: (0..n)
                            .map(|i| {
                                let (code, message) = match i.cmp(&index) {
                                    std::cmp::Ordering::Less => (pb::ErrorCode::Ok, String::new()),
                                    std::cmp::Ordering::Equal => (failed, error.to_string()),
                                    std::cmp::Ordering::Greater => (
                                        pb::ErrorCode::RuntimeInconsistency,
                                        "not applied: an earlier operation failed".to_string(),
                                    ),
                                };
                                pb::OpResult { code: code as i32, message, path: String::new(), stat: None }
                            })
                            .collect(),
                    })
                }
                Err(e) => Err(e),
            }
        })
        .await
    }

    async fn sync(&self, req: Request<pb::SyncRequest>) -> Result<Response<pb::SyncResponse>, Status> {
        metered("Sync", async {
            let r = req.into_inner();
            if !r.path.is_empty() {
                path::validate(&r.path)?;
            }
            let view = self.node.read(Consistency::Linearizable, 0).await?;
            Ok(pb::SyncResponse { header: convert::header(self.node.header(view.zxid)) })
        })
        .await
    }

    async fn get_ephemerals(
        &self,
        req: Request<pb::GetEphemeralsRequest>,
    ) -> Result<Response<pb::GetEphemeralsResponse>, Status> {
        metered("GetEphemerals", async {
            let session = caller_session(req.metadata(), &self.node)?;
            if session == 0 {
                return Err(GroveError::bad_args(
                    "",
                    format!(
                        "GetEphemerals lists the calling session's ephemerals: pass {}",
                        grove_proto::metadata::SESSION_ID
                    ),
                ));
            }
            let r = req.into_inner();
            if !r.prefix.is_empty() && !r.prefix.starts_with('/') {
                return Err(GroveError::bad_args(&r.prefix, "the prefix must start with '/'"));
            }
            let view = self.read_view(r.consistency, r.min_zxid).await?;
            let prefix = if r.prefix == "/" { "" } else { r.prefix.as_str() };
            Ok(pb::GetEphemeralsResponse {
                header: convert::header(self.node.header(view.zxid)),
                paths: view.tables.ephemerals(session, prefix)?,
            })
        })
        .await
    }

    async fn count_descendants(
        &self,
        req: Request<pb::CountDescendantsRequest>,
    ) -> Result<Response<pb::CountDescendantsResponse>, Status> {
        metered("CountDescendants", async {
            let caller = who(&req, &self.node)?;
            let r = req.into_inner();
            path::validate(&r.path)?;
            let view = self.read_view(r.consistency, r.min_zxid).await?;
            let (_, acl) = view.tables.stat_acl(&r.path)?.ok_or_else(|| GroveError::no_node(&r.path))?;
            caller.check(&acl, READ, &r.path)?;
            Ok(pb::CountDescendantsResponse {
                header: convert::header(self.node.header(view.zxid)),
                count: view.tables.count_descendants(&r.path)?,
            })
        })
        .await
    }

    async fn get_acl(&self, req: Request<pb::GetAclRequest>) -> Result<Response<pb::GetAclResponse>, Status> {
        metered("GetAcl", async {
            let caller = who(&req, &self.node)?;
            let r = req.into_inner();
            path::validate(&r.path)?;
            let view = self.read_view(r.consistency, r.min_zxid).await?;
            let (stat, acl) = view.tables.stat_acl(&r.path)?.ok_or_else(|| GroveError::no_node(&r.path))?;
            if !caller.may(&acl, READ) {
                caller.check(&acl, ADMIN, &r.path)?;
            }
            Ok(pb::GetAclResponse {
                header: convert::header(self.node.header(view.zxid)),
                acl: convert::acl_out(&crate::fsm::acl::shown(&acl, &caller)),
                stat: Some(convert::stat(&stat)),
            })
        })
        .await
    }

    async fn set_acl(&self, req: Request<pb::SetAclRequest>) -> Result<Response<pb::SetAclResponse>, Status> {
        metered("SetAcl", async {
            let caller = who(&req, &self.node)?;
            let id = request_id(req.metadata())?;
            let r = req.into_inner();
            let version = convert::version(&r.path, r.version)?;
            let op = Op::SetAcl { path: r.path, acl: convert::acl_in(r.acl), version };
            let (zxid, outcome) = self.node.propose(Write::new(caller, id, op)).await?;
            let Outcome::Set { stat } = outcome else { return Err(unexpected(outcome)) };
            Ok(pb::SetAclResponse { header: convert::header(self.node.header(zxid)), stat: Some(convert::stat(&stat)) })
        })
        .await
    }
}
