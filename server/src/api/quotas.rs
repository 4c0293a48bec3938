//! `grove.v1.Quotas`: per-subtree limits on nodes and bytes.

use std::sync::Arc;

use grove_proto::v1 as pb;
use grove_proto::v1::quotas_server::Quotas;
use tonic::{Request, Response, Status};

use super::auth::who;
use super::{convert, metered, request_id};
use crate::error::GroveError;
use crate::fsm::acl::READ;
use crate::fsm::command::{Op, Outcome, Write};
use crate::fsm::path;
use crate::fsm::quota::{LimitsChange, QuotaRecord};
use crate::node::Node;
use crate::storage::access::StateTables;

pub struct QuotasService {
    pub node: Arc<Node>,
}

fn quota(path: String, q: &QuotaRecord) -> pb::Quota {
    pb::Quota {
        path,
        limits: Some(pb::QuotaLimits {
            count_soft: q.limits.count_soft,
            bytes_soft: q.limits.bytes_soft,
            count_hard: q.limits.count_hard,
            bytes_hard: q.limits.bytes_hard,
        }),
        count: q.count,
        bytes: q.bytes,
    }
}

#[tonic::async_trait]
impl Quotas for QuotasService {
    async fn set_quota(&self, req: Request<pb::SetQuotaRequest>) -> Result<Response<pb::SetQuotaResponse>, Status> {
        metered("SetQuota", async {
            let caller = who(&req, &self.node)?;
            let id = request_id(req.metadata())?;
            let r = req.into_inner();
            path::validate(&r.path)?;
            let change = LimitsChange {
                count_soft: r.count_soft,
                bytes_soft: r.bytes_soft,
                count_hard: r.count_hard,
                bytes_hard: r.bytes_hard,
            };
            if change == LimitsChange::default() {
                return Err(GroveError::bad_args(&r.path, "name at least one limit to set"));
            }
            let op = Op::SetQuota { path: r.path.clone(), change };
            let (zxid, outcome) = self.node.propose(Write::new(caller, id, op)).await?;
            let Outcome::Quota { record } = outcome else {
                return Err(GroveError::internal(format!("unexpected outcome {outcome:?}")));
            };
            Ok(pb::SetQuotaResponse {
                header: convert::header(self.node.header(zxid)),
                quota: record.map(|q| quota(r.path, &q)),
            })
        })
        .await
    }

    async fn delete_quota(
        &self,
        req: Request<pb::DeleteQuotaRequest>,
    ) -> Result<Response<pb::DeleteQuotaResponse>, Status> {
        metered("DeleteQuota", async {
            let caller = who(&req, &self.node)?;
            let id = request_id(req.metadata())?;
            let r = req.into_inner();
            path::validate(&r.path)?;
            let (zxid, _) = self.node.propose(Write::new(caller, id, Op::DeleteQuota { path: r.path })).await?;
            Ok(pb::DeleteQuotaResponse { header: convert::header(self.node.header(zxid)) })
        })
        .await
    }

    async fn get_quota(&self, req: Request<pb::GetQuotaRequest>) -> Result<Response<pb::GetQuotaResponse>, Status> {
        metered("GetQuota", async {
            let caller = who(&req, &self.node)?;
            let r = req.into_inner();
            path::validate(&r.path)?;
            let view = self.node.read(convert::consistency(r.consistency)?, r.min_zxid).await?;
            view.tables.check(&caller, &r.path, READ)?;
            let found = view.tables.quota_over(&r.path)?;
            if let Some((root, _)) = &found {
                // The quota's limits and usage describe its root's subtree: READ there too.
                view.tables.check(&caller, root, READ)?;
            }
            Ok(pb::GetQuotaResponse {
                header: convert::header(self.node.header(view.zxid)),
                quota: found.map(|(p, q)| quota(p, &q)),
            })
        })
        .await
    }

    async fn list_quotas(
        &self,
        req: Request<pb::ListQuotasRequest>,
    ) -> Result<Response<pb::ListQuotasResponse>, Status> {
        metered("ListQuotas", async {
            let caller = who(&req, &self.node)?;
            let r = req.into_inner();
            let view = self.node.read(convert::consistency(r.consistency)?, 0).await?;
            let mut quotas = Vec::new();
            for (p, q) in view.tables.quotas(usize::MAX)? {
                // Only the quotas on paths the caller may read.
                if view.tables.check(&caller, &p, READ).is_ok() {
                    quotas.push(quota(p, &q));
                }
                if quotas.len() == self.node.config.max_page_size {
                    break;
                }
            }
            Ok(pb::ListQuotasResponse { header: convert::header(self.node.header(view.zxid)), quotas })
        })
        .await
    }
}
