//! `quit` (or `exit`): leaves the shell, closing its session. The shell acts on it; run
//! as a one-shot command it does nothing.

use clap::Parser;
use grove_client::Error;
use serde_json::json;

use super::args::CommandArgs;
use crate::context::{Context, Output};

#[derive(Debug, PartialEq, Parser)]
#[command(name = "quit", alias = "exit", no_binary_name = true, override_usage = "quit")]
pub struct Quit {}

impl CommandArgs for Quit {}

impl Quit {
    pub async fn run(self, _ctx: &mut Context) -> Result<Output, Error> {
        Ok(Output::silent(json!({})))
    }
}
