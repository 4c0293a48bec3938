//! `sync`: waits until the server connected to has applied everything committed so far.

use clap::Parser;
use grove_client::Error;
use serde_json::json;

use super::args::CommandArgs;
use crate::context::{Context, Output};

#[derive(Debug, PartialEq, Parser)]
#[command(name = "sync", no_binary_name = true, override_usage = "sync path")]
pub struct Sync {
    pub path: String,
}

impl CommandArgs for Sync {}

impl Sync {
    pub async fn run(self, ctx: &mut Context) -> Result<Output, Error> {
        let zxid = ctx.client()?.sync(&self.path).await?;
        Ok(Output::text("Sync is OK", json!({"path": self.path, "zxid": zxid})))
    }
}
