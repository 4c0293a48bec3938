//! `members`: the ensemble's members, one line each.

use clap::Parser;
use grove_client::Error;

use super::args::CommandArgs;
use crate::context::{Context, Output};
use crate::format;

#[derive(Debug, PartialEq, Parser)]
#[command(name = "members", no_binary_name = true, override_usage = "members")]
pub struct Members {}

impl CommandArgs for Members {}

impl Members {
    pub async fn run(self, ctx: &mut Context) -> Result<Output, Error> {
        Ok(format::members(&ctx.client()?.members().await?))
    }
}
