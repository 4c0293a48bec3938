//! Per-subtree quotas: `grove.v1.Quotas` (zkCli's setquota, listquota, delquota).

use grove_proto::v1 as pb;
use grove_proto::v1::quotas_client::QuotasClient;

use crate::client::{Client, Consistency};
use crate::connection::new_request_id;
use crate::error::Result;

/// "No limit".
pub const NONE: i64 = -1;

/// A quota: its limits (`NONE` where unset) and the subtree's usage now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quota {
    pub count_soft: i64,
    pub bytes_soft: i64,
    pub count_hard: i64,
    pub bytes_hard: i64,
    /// Nodes in the subtree, its root included.
    pub count: i64,
    /// Bytes of data in the subtree.
    pub bytes: i64,
}

/// Limits to set: `Some(n)` sets one, `Some(NONE)` removes it, `None` keeps it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QuotaChange {
    pub count_soft: Option<i64>,
    pub bytes_soft: Option<i64>,
    pub count_hard: Option<i64>,
    pub bytes_hard: Option<i64>,
}

impl Client {
    fn quota_of(&self, q: pb::Quota) -> (String, Quota) {
        let l = q.limits.unwrap_or_default();
        let quota = Quota {
            count_soft: l.count_soft,
            bytes_soft: l.bytes_soft,
            count_hard: l.count_hard,
            bytes_hard: l.bytes_hard,
            count: q.count,
            bytes: q.bytes,
        };
        (self.client_path(&q.path), quota)
    }

    /// Sets limits on the subtree at `path` (needs ADMIN on the root node). Returns the
    /// quota, or `None` if the change removed its last limit.
    pub async fn set_quota(&self, path: &str, change: QuotaChange) -> Result<Option<Quota>> {
        let msg = pb::SetQuotaRequest {
            path: self.full_path(path),
            count_soft: change.count_soft,
            bytes_soft: change.bytes_soft,
            count_hard: change.count_hard,
            bytes_hard: change.bytes_hard,
        };
        let id = new_request_id();
        let resp = self
            .call_retrying(|ch| async { QuotasClient::new(ch).set_quota(self.write_request(msg.clone(), id)).await })
            .await?;
        self.saw(&resp.header);
        Ok(resp.quota.map(|q| self.quota_of(q).1))
    }

    /// Removes the quota on `path`.
    pub async fn delete_quota(&self, path: &str) -> Result<()> {
        let msg = pb::DeleteQuotaRequest { path: self.full_path(path) };
        let id = new_request_id();
        let resp = self
            .call_retrying(|ch| async { QuotasClient::new(ch).delete_quota(self.write_request(msg.clone(), id)).await })
            .await?;
        self.saw(&resp.header);
        Ok(())
    }

    /// The quota governing `path` (on it or an ancestor) with the path it is set on.
    pub async fn get_quota(&self, path: &str) -> Result<Option<(String, Quota)>> {
        let (consistency, min_zxid) = self.read_options(Consistency::Linearizable);
        let msg = pb::GetQuotaRequest { path: self.full_path(path), consistency, min_zxid };
        let resp =
            self.call_retrying(|ch| async { QuotasClient::new(ch).get_quota(self.request(msg.clone())).await }).await?;
        self.saw(&resp.header);
        Ok(resp.quota.map(|q| self.quota_of(q)))
    }

    /// Every quota the caller may read.
    pub async fn list_quotas(&self) -> Result<Vec<(String, Quota)>> {
        let (consistency, _) = self.read_options(Consistency::Linearizable);
        let msg = pb::ListQuotasRequest { consistency };
        let resp =
            self.call_retrying(|ch| async { QuotasClient::new(ch).list_quotas(self.request(msg)).await }).await?;
        self.saw(&resp.header);
        Ok(resp.quotas.into_iter().map(|q| self.quota_of(q)).collect())
    }
}
