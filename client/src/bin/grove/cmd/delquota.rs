//! `delquota`: lifts one of a subtree's limits, or (no flag) removes its quota.

use clap::{ArgGroup, Parser};
use grove_client::{Error, QuotaChange};
use serde_json::json;

use super::args::CommandArgs;
use crate::context::{Context, Output};
use crate::format;

#[derive(Debug, PartialEq, Parser)]
#[command(
    name = "delquota",
    no_binary_name = true,
    override_usage = "delquota [-n|-b|-N|-B] path",
    group(ArgGroup::new("limit").multiple(false).args(["count_soft", "bytes_soft", "count_hard", "bytes_hard"]))
)]
pub struct DelQuota {
    /// The soft node count.
    #[arg(short = 'n')]
    pub count_soft: bool,
    /// The soft byte count.
    #[arg(short = 'b')]
    pub bytes_soft: bool,
    /// The hard node count.
    #[arg(short = 'N')]
    pub count_hard: bool,
    /// The hard byte count.
    #[arg(short = 'B')]
    pub bytes_hard: bool,
    pub path: String,
}

impl CommandArgs for DelQuota {}

impl DelQuota {
    /// The limit to lift, `None` for the whole quota.
    pub fn change(&self) -> Option<QuotaChange> {
        let none = Some(grove_client::quotas::NONE);
        let d = QuotaChange::default();
        match (self.count_soft, self.bytes_soft, self.count_hard, self.bytes_hard) {
            (true, ..) => Some(QuotaChange { count_soft: none, ..d }),
            (_, true, ..) => Some(QuotaChange { bytes_soft: none, ..d }),
            (_, _, true, _) => Some(QuotaChange { count_hard: none, ..d }),
            (.., true) => Some(QuotaChange { bytes_hard: none, ..d }),
            _ => None,
        }
    }

    pub async fn run(self, ctx: &mut Context) -> Result<Output, Error> {
        let c = ctx.client()?;
        let Some(change) = self.change() else {
            c.delete_quota(&self.path).await?;
            return Ok(Output::silent(json!({"path": self.path, "quota": null})));
        };
        let q = c.set_quota(&self.path, change).await?;
        Ok(Output::silent(json!({"path": self.path, "quota": q.map(|q| format::quota_json(&q))})))
    }
}
