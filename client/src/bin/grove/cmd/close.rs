//! `close`: ends the session (its ephemerals go); the shell stays, unconnected.

use clap::Parser;
use grove_client::Error;
use serde_json::json;

use super::args::CommandArgs;
use crate::context::{Context, Output};

#[derive(Debug, PartialEq, Parser)]
#[command(name = "close", no_binary_name = true, override_usage = "close")]
pub struct Close {}

impl CommandArgs for Close {}

impl Close {
    pub async fn run(self, ctx: &mut Context) -> Result<Output, Error> {
        if let Some(c) = ctx.client.take() {
            c.close_session().await?;
        }
        Ok(Output::silent(json!({"closed": true})))
    }
}
