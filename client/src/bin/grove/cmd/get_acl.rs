//! `getAcl`: a node's ACL in zkCli's layout, optionally with its stat.

use clap::Parser;
use grove_client::{Acl, Error, acl};
use serde_json::{Value, json};

use super::args::CommandArgs;
use crate::context::{Context, Output};
use crate::format;

#[derive(Debug, PartialEq, Parser)]
#[command(name = "getAcl", no_binary_name = true, override_usage = "getAcl [-s] path")]
pub struct GetAcl {
    /// Print the node's stat after the ACL.
    #[arg(short = 's')]
    pub stat: bool,
    pub path: String,
}

impl CommandArgs for GetAcl {}

impl GetAcl {
    pub async fn run(self, ctx: &mut Context) -> Result<Output, Error> {
        let (acl, st) = ctx.client()?.get_acl(&self.path).await?;
        let mut text = acl::format(&acl);
        if self.stat {
            text = format!("{text}\n{}", format::stat(&st));
        }
        Ok(Output::text(text, json!({"path": self.path, "acl": acl_json(&acl), "stat": format::stat_json(&st)})))
    }
}

fn acl_json(acl: &[Acl]) -> Value {
    acl.iter().map(|a| json!({"scheme": a.scheme, "id": a.id, "perms": acl::perms_text(a.perms)})).collect()
}
