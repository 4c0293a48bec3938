//! `delete`: one node without children, optionally only at a given version.

use clap::Parser;
use grove_client::Error;
use serde_json::json;

use super::args::{CommandArgs, number};
use crate::context::{Context, Output};

#[derive(Debug, PartialEq, Parser)]
#[command(
    name = "delete",
    no_binary_name = true,
    override_usage = "delete [-v version] path",
    allow_negative_numbers = true
)]
pub struct Delete {
    /// Only if the node's data version is this one.
    #[arg(short = 'v', value_name = "version", value_parser = number::<i32>)]
    pub version: Option<i32>,
    pub path: String,
}

impl CommandArgs for Delete {}

impl Delete {
    pub async fn run(self, ctx: &mut Context) -> Result<Output, Error> {
        ctx.client()?.delete(&self.path, self.version).await?;
        Ok(Output::silent(json!({"path": self.path, "deleted": true})))
    }
}
