//! `getAllChildrenNumber`: how many nodes are below a path.

use clap::Parser;
use grove_client::Error;
use serde_json::json;

use super::args::CommandArgs;
use crate::context::{Context, Output};

#[derive(Debug, PartialEq, Parser)]
#[command(name = "getAllChildrenNumber", no_binary_name = true, override_usage = "getAllChildrenNumber path")]
pub struct GetAllChildrenNumber {
    pub path: String,
}

impl CommandArgs for GetAllChildrenNumber {}

impl GetAllChildrenNumber {
    pub async fn run(self, ctx: &mut Context) -> Result<Output, Error> {
        let n = ctx.client()?.count_descendants(&self.path).await?;
        Ok(Output::text(n.to_string(), json!({"path": self.path, "count": n})))
    }
}
