//! Per-subtree quotas (ZooKeeper's `setquota`): limits on the number of nodes and the bytes
//! of data under a path, the path itself included.
//!
//! A quota keeps its subtree's usage beside its limits, updated by every create, delete and
//! set inside the subtree in the same transaction, so checking a write costs one lookup per
//! ancestor, and nothing at all while no quota exists. Soft limits are reported (a warning
//! and a metric) and let the write through; hard limits refuse it with QUOTA_EXCEEDED.
//! As in ZooKeeper, quotas do not nest: at most one applies to any node.

use serde::{Deserialize, Serialize};

use crate::error::GroveError;

/// A limit's value meaning "none".
pub const NONE: i64 = -1;

/// The four limits; `NONE` (-1) where unset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limits {
    pub count_soft: i64,
    pub bytes_soft: i64,
    pub count_hard: i64,
    pub bytes_hard: i64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { count_soft: NONE, bytes_soft: NONE, count_hard: NONE, bytes_hard: NONE }
    }
}

impl Limits {
    pub fn is_empty(&self) -> bool {
        *self == Limits::default()
    }
}

/// A change to a quota's limits: `Some(n)` sets a limit (`NONE` removes it), `None` keeps it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LimitsChange {
    pub count_soft: Option<i64>,
    pub bytes_soft: Option<i64>,
    pub count_hard: Option<i64>,
    pub bytes_hard: Option<i64>,
}

impl LimitsChange {
    pub fn apply(&self, to: Limits, path: &str) -> Result<Limits, GroveError> {
        let pick = |new: Option<i64>, old: i64, name: &str| match new {
            Some(v) if v < NONE => Err(GroveError::bad_args(path, format!("quota {name} {v}: use -1 for none"))),
            Some(v) => Ok(v),
            None => Ok(old),
        };
        Ok(Limits {
            count_soft: pick(self.count_soft, to.count_soft, "count")?,
            bytes_soft: pick(self.bytes_soft, to.bytes_soft, "bytes")?,
            count_hard: pick(self.count_hard, to.count_hard, "hard count")?,
            bytes_hard: pick(self.bytes_hard, to.bytes_hard, "hard bytes")?,
        })
    }
}

/// A quota as stored: its limits and the subtree's usage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuotaRecord {
    pub limits: Limits,
    /// Nodes in the subtree, its root included.
    pub count: i64,
    /// Bytes of data in the subtree.
    pub bytes: i64,
}

impl QuotaRecord {
    pub fn encode(&self) -> Vec<u8> {
        postcard::to_allocvec(self).expect("quota records encode")
    }

    pub fn decode(raw: &[u8]) -> Result<QuotaRecord, GroveError> {
        postcard::from_bytes(raw).map_err(|e| GroveError::internal(format!("corrupt quota record: {e}")))
    }

    /// Charges a change of usage to the quota rooted at `root`, for a write to `path`.
    /// Growth past a hard limit is refused; growth past a soft limit is allowed and
    /// returned as a warning. Shrinking is always allowed, even over a limit set later.
    pub fn charge(&mut self, root: &str, path: &str, count: i64, bytes: i64) -> Result<Option<String>, GroveError> {
        let (new_count, new_bytes) = (self.count + count, self.bytes + bytes);
        let over = |limit: i64, value: i64, grew: bool| grew && limit != NONE && value > limit;
        let l = self.limits;
        if over(l.count_hard, new_count, count > 0) {
            return Err(GroveError::QuotaExceeded {
                path: path.to_string(),
                message: format!("the quota on {root} allows {} nodes (hard limit)", l.count_hard),
            });
        }
        if over(l.bytes_hard, new_bytes, bytes > 0) {
            return Err(GroveError::QuotaExceeded {
                path: path.to_string(),
                message: format!("the quota on {root} allows {} bytes (hard limit)", l.bytes_hard),
            });
        }
        let warning = if over(l.count_soft, new_count, count > 0) {
            Some(format!("quota on {root} exceeded: {new_count} nodes, soft limit {}", l.count_soft))
        } else if over(l.bytes_soft, new_bytes, bytes > 0) {
            Some(format!("quota on {root} exceeded: {new_bytes} bytes, soft limit {}", l.bytes_soft))
        } else {
            None
        };
        self.count = new_count;
        self.bytes = new_bytes;
        Ok(warning)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quota(count_soft: i64, count_hard: i64, bytes_soft: i64, bytes_hard: i64) -> QuotaRecord {
        QuotaRecord { limits: Limits { count_soft, bytes_soft, count_hard, bytes_hard }, count: 1, bytes: 0 }
    }

    #[test]
    fn hard_limits_refuse_growth_and_soft_limits_warn() {
        let mut q = quota(2, 3, NONE, 10);
        assert_eq!(q.charge("/q", "/q/a", 1, 4).unwrap(), None);
        assert!(q.charge("/q", "/q/b", 1, 0).unwrap().unwrap().contains("soft limit 2"));
        assert_eq!((q.count, q.bytes), (3, 4));
        let e = q.charge("/q", "/q/c", 1, 0).unwrap_err();
        assert!(matches!(e, GroveError::QuotaExceeded { .. }), "{e}");
        assert_eq!((q.count, q.bytes), (3, 4), "a refused charge changes nothing");
        assert!(q.charge("/q", "/q/a", 0, 7).is_err(), "bytes past the hard limit");
        assert_eq!(q.charge("/q", "/q/a", 0, 6).unwrap(), None, "exactly at the limit");
        // Deleting and shrinking always pass, even when over a lowered limit.
        q.limits.count_hard = 1;
        assert_eq!(q.charge("/q", "/q/b", -1, 0).unwrap(), None);
        assert_eq!(q.charge("/q", "/q/a", 0, -5).unwrap(), None);
        assert_eq!((q.count, q.bytes), (2, 5));
    }

    #[test]
    fn changes_keep_what_they_do_not_name() {
        let base = Limits { count_soft: 5, ..Default::default() };
        let c = LimitsChange { bytes_hard: Some(100), ..Default::default() };
        assert_eq!(c.apply(base, "/q").unwrap(), Limits { count_soft: 5, bytes_hard: 100, ..Default::default() });
        let clear = LimitsChange { count_soft: Some(NONE), ..Default::default() };
        assert!(clear.apply(base, "/q").unwrap().is_empty());
        assert!(LimitsChange { count_hard: Some(-5), ..Default::default() }.apply(base, "/q").is_err());
        let rec = QuotaRecord { limits: base, count: 3, bytes: 9 };
        assert_eq!(QuotaRecord::decode(&rec.encode()).unwrap(), rec);
        assert!(QuotaRecord::decode(&[0xff; 3]).is_err());
    }
}
