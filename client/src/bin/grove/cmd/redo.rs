//! `redo`: runs line `cmdno` of the shell's history again. The shell resolves it before
//! running (it replaces the line); run on its own, as a one-shot command, it does nothing.

use clap::Parser;
use grove_client::Error;
use serde_json::json;

use super::args::{CommandArgs, number};
use crate::context::{Context, Output};

#[derive(Debug, PartialEq, Parser)]
#[command(name = "redo", no_binary_name = true, override_usage = "redo cmdno")]
pub struct Redo {
    #[arg(value_name = "cmdno", value_parser = number::<usize>)]
    pub n: usize,
}

impl CommandArgs for Redo {}

impl Redo {
    pub async fn run(self, _ctx: &mut Context) -> Result<Output, Error> {
        Ok(Output::silent(json!({})))
    }
}
