//! `getEphemerals`: the session's ephemeral nodes under a path (all of them by default).

use clap::Parser;
use grove_client::Error;
use serde_json::json;

use super::args::CommandArgs;
use crate::context::{Context, Output};
use crate::format;

#[derive(Debug, PartialEq, Parser)]
#[command(name = "getEphemerals", no_binary_name = true, override_usage = "getEphemerals path")]
pub struct GetEphemerals {
    #[arg(default_value = "/")]
    pub path: String,
}

impl CommandArgs for GetEphemerals {}

impl GetEphemerals {
    pub async fn run(self, ctx: &mut Context) -> Result<Output, Error> {
        let paths = ctx.session_client().await?.ephemerals(&self.path).await?;
        Ok(Output::text(format::list(&paths), json!({"paths": paths})))
    }
}
