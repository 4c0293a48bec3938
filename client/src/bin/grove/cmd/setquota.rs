//! `setquota`: sets some of a subtree's limits, keeping the others: soft limits (`-n`
//! nodes, `-b` bytes) are logged and counted, hard ones (`-N`, `-B`) refuse writes; -1 is
//! no limit.

use clap::{ArgGroup, Parser};
use grove_client::{Error, QuotaChange};
use serde_json::json;

use super::args::{CommandArgs, number};
use crate::context::{Context, Output};
use crate::format;

#[derive(Debug, PartialEq, Parser)]
#[command(
    name = "setquota",
    no_binary_name = true,
    override_usage = "setquota -n|-b|-N|-B val path",
    about = "n/b: soft node count/bytes, N/B: hard (-1: none)",
    allow_negative_numbers = true,
    group(ArgGroup::new("limit").required(true).multiple(true).args(["count_soft", "bytes_soft", "count_hard", "bytes_hard"]))
)]
pub struct SetQuota {
    /// Soft limit on the number of nodes.
    #[arg(short = 'n', value_name = "val", value_parser = number::<i64>)]
    pub count_soft: Option<i64>,
    /// Soft limit on the bytes of data.
    #[arg(short = 'b', value_name = "val", value_parser = number::<i64>)]
    pub bytes_soft: Option<i64>,
    /// Hard limit on the number of nodes.
    #[arg(short = 'N', value_name = "val", value_parser = number::<i64>)]
    pub count_hard: Option<i64>,
    /// Hard limit on the bytes of data.
    #[arg(short = 'B', value_name = "val", value_parser = number::<i64>)]
    pub bytes_hard: Option<i64>,
    pub path: String,
}

impl CommandArgs for SetQuota {}

impl SetQuota {
    pub fn change(&self) -> QuotaChange {
        QuotaChange {
            count_soft: self.count_soft,
            bytes_soft: self.bytes_soft,
            count_hard: self.count_hard,
            bytes_hard: self.bytes_hard,
        }
    }

    pub async fn run(self, ctx: &mut Context) -> Result<Output, Error> {
        let q = ctx.client()?.set_quota(&self.path, self.change()).await?;
        Ok(Output::silent(json!({"path": self.path, "quota": q.map(|q| format::quota_json(&q))})))
    }
}
