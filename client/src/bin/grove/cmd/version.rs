//! `version`: the CLI's version.

use clap::Parser;
use grove_client::Error;
use serde_json::json;

use super::args::CommandArgs;
use crate::context::{Context, Output};

#[derive(Debug, PartialEq, Parser)]
#[command(name = "version", no_binary_name = true, override_usage = "version")]
pub struct Version {}

impl CommandArgs for Version {}

impl Version {
    pub async fn run(self, _ctx: &mut Context) -> Result<Output, Error> {
        let v = env!("CARGO_PKG_VERSION");
        Ok(Output::text(format!("Grove CLI version: {v}"), json!({"version": v})))
    }
}
