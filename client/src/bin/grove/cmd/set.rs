//! `set`: replaces a node's data, optionally only at a given version.

use clap::Parser;
use grove_client::Error;
use serde_json::json;

use super::args::{CommandArgs, number};
use crate::context::{Context, Output};
use crate::format;

#[derive(Debug, PartialEq, Parser)]
#[command(
    name = "set",
    no_binary_name = true,
    override_usage = "set [-s] [-v version] path data",
    allow_negative_numbers = true
)]
pub struct Set {
    /// Print the new stat.
    #[arg(short = 's')]
    pub stat: bool,
    /// Only if the node's data version is this one.
    #[arg(short = 'v', value_name = "version", value_parser = number::<i32>)]
    pub version: Option<i32>,
    pub path: String,
    pub data: String,
}

impl CommandArgs for Set {}

impl Set {
    pub async fn run(self, ctx: &mut Context) -> Result<Output, Error> {
        let st = ctx.client()?.set(&self.path, self.data.into_bytes(), self.version).await?;
        let j = json!({"path": self.path, "stat": format::stat_json(&st)});
        Ok(if self.stat { Output::text(format::stat(&st), j) } else { Output::silent(j) })
    }
}
