//! `listquota`: the quota governing a path with its usage, or every quota.

use clap::Parser;
use grove_client::Error;
use serde_json::{Value, json};

use super::args::CommandArgs;
use crate::context::{Context, Output};
use crate::format;

#[derive(Debug, PartialEq, Parser)]
#[command(name = "listquota", no_binary_name = true, override_usage = "listquota [path]")]
pub struct ListQuota {
    pub path: Option<String>,
}

impl CommandArgs for ListQuota {}

impl ListQuota {
    pub async fn run(self, ctx: &mut Context) -> Result<Output, Error> {
        let c = ctx.client()?;
        let found = match &self.path {
            Some(p) => c.get_quota(p).await?.into_iter().collect(),
            None => c.list_quotas().await?,
        };
        if found.is_empty() {
            let what = self.path.as_deref().map(|p| format!("quota for {p} does not exist.")).unwrap_or_default();
            return Ok(Output::text(what, json!({"quotas": []})));
        }
        // zkCli's two lines per quota: the limits, then the usage.
        let text = found
            .iter()
            .map(|(p, q)| {
                format!(
                    "Output quota for {p} count={},bytes={},countHardLimit={},byteHardLimit={}\nOutput stat for {p} count={},bytes={}",
                    q.count_soft, q.bytes_soft, q.count_hard, q.bytes_hard, q.count, q.bytes
                )
            })
            .collect::<Vec<_>>()
            .join("\n");
        let j: Vec<Value> = found.iter().map(|(p, q)| json!({"path": p, "quota": format::quota_json(q)})).collect();
        Ok(Output::text(text, json!({"quotas": j})))
    }
}
