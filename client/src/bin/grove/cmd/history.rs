//! `history`: the shell's last 11 command lines with their numbers, as zkCli shows them
//! (`redo` takes any number ever shown).

use clap::Parser;
use grove_client::Error;
use serde_json::json;

use super::args::CommandArgs;
use crate::context::{Context, Output};

/// How many lines `history` lists, as zkCli.
pub const SHOWN: usize = 11;

#[derive(Debug, PartialEq, Parser)]
#[command(name = "history", no_binary_name = true, override_usage = "history")]
pub struct History {}

impl CommandArgs for History {}

impl History {
    pub async fn run(self, ctx: &mut Context) -> Result<Output, Error> {
        let shown: Vec<(usize, &str)> = ctx.history.last(SHOWN).collect();
        let j = json!({"history": shown.iter().map(|(n, l)| json!({"n": n, "command": l})).collect::<Vec<_>>()});
        if shown.is_empty() {
            return Ok(Output::silent(j));
        }
        let text = shown.iter().map(|(n, l)| format!("{n} - {l}")).collect::<Vec<_>>().join("\n");
        Ok(Output::text(text, j))
    }
}
