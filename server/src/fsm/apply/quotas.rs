//! Quotas: per-subtree limits on nodes and bytes, charged by every write in the same
//! transaction, so usage always equals the subtree.

use super::staged::Staged;
use crate::error::GroveError;
use crate::fsm::acl;
use crate::fsm::path;
use crate::fsm::quota::{LimitsChange, QuotaRecord};
use crate::storage::access::StateTables;
use crate::storage::write::WriteTables;

impl Staged {
    pub(super) fn any_quota(&self, t: &WriteTables<'_>) -> Result<bool, GroveError> {
        Ok(!self.quotas.is_empty() || t.has_quotas()?)
    }

    /// Charges a change of nodes and bytes at `path` to the quota governing it, if any.
    pub(super) fn charge(&mut self, t: &WriteTables<'_>, path: &str, count: i64, bytes: i64) -> Result<(), GroveError> {
        if (count == 0 && bytes == 0) || !self.any_quota(t)? {
            return Ok(());
        }
        for root in path::ancestors(path).chain(std::iter::once(path)) {
            if let Some(mut q) = self.get_quota(t, root)? {
                if let Some(warning) = q.charge(root, path, count, bytes)? {
                    self.quota_warnings.push(warning);
                }
                self.quotas.insert(root.to_string(), Some(q));
                // Quotas do not nest: this is the only one.
                return Ok(());
            }
        }
        Ok(())
    }

    /// Quotas are the operators' tool: changing one needs ADMIN on the root node.
    pub(super) fn check_quota_admin(&self, t: &WriteTables<'_>) -> Result<(), GroveError> {
        let root = self.get(t, "/")?.map(|r| r.acl).unwrap_or_default();
        self.caller.check(&root, acl::ADMIN, "/")
    }

    pub(super) fn set_quota(
        &mut self,
        t: &WriteTables<'_>,
        p: &str,
        change: &LimitsChange,
    ) -> Result<Option<QuotaRecord>, GroveError> {
        path::validate(p)?;
        if p == "/" {
            return Err(GroveError::bad_args(p, "the root cannot have a quota: set it on a subtree"));
        }
        self.check_quota_admin(t)?;
        self.get(t, p)?.ok_or_else(|| GroveError::no_node(p))?;
        let existing = self.get_quota(t, p)?;
        if existing.is_none() {
            for above in path::ancestors(p) {
                if t.quota(above)?.is_some() {
                    return Err(GroveError::bad_args(p, format!("{above} already has a quota; quotas do not nest")));
                }
            }
            if let Some(below) = t.quotas_below(p)?.first() {
                return Err(GroveError::bad_args(p, format!("{below} already has a quota; quotas do not nest")));
            }
        }
        let (count, bytes) = match existing {
            Some(q) => (q.count, q.bytes),
            None => t.subtree_usage(p)?,
        };
        let limits = change.apply(existing.map(|q| q.limits).unwrap_or_default(), p)?;
        let record = (!limits.is_empty()).then_some(QuotaRecord { limits, count, bytes });
        self.quotas.insert(p.to_string(), record);
        Ok(record)
    }

    pub(super) fn delete_quota(&mut self, t: &WriteTables<'_>, p: &str) -> Result<(), GroveError> {
        path::validate(p)?;
        self.check_quota_admin(t)?;
        if self.get_quota(t, p)?.is_none() {
            return Err(GroveError::bad_args(p, format!("there is no quota on {p}")));
        }
        self.quotas.insert(p.to_string(), None);
        Ok(())
    }
}
