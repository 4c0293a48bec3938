//! `removewatches`: the shell's watches on a path: children (`-c`), data (`-d`) or any
//! (`-a`, the default). `-l` (zkCli's "local") is accepted: Grove's watches are all local
//! to the shell's stream.

use clap::Parser;
use grove_client::Error;
use serde_json::json;

use super::args::CommandArgs;
use crate::context::{Context, Output};

#[derive(Debug, PartialEq, Parser)]
#[command(name = "removewatches", no_binary_name = true, override_usage = "removewatches path [-c|-d|-a]")]
pub struct RemoveWatches {
    pub path: String,
    /// Children watches.
    #[arg(short = 'c')]
    pub children: bool,
    /// Data watches.
    #[arg(short = 'd')]
    pub data: bool,
    /// Any watch (the default).
    #[arg(short = 'a')]
    pub any: bool,
    #[arg(short = 'l', hide = true)]
    pub local: bool,
}

impl CommandArgs for RemoveWatches {}

impl RemoveWatches {
    /// `c`, `d` or `a`, as `Watches::remove` takes it; `-c` wins over `-d` over `-a`.
    pub fn which(&self) -> char {
        if self.children {
            'c'
        } else if self.data {
            'd'
        } else {
            'a'
        }
    }

    pub async fn run(self, ctx: &mut Context) -> Result<Output, Error> {
        let Some(w) = &ctx.watches else { return Ok(Output::silent(json!({"removed": 0}))) };
        let n = w.remove(&self.path, self.which()).await?;
        if n == 0 {
            return Err(Error::Client(format!("No watcher found for path: {}", self.path)));
        }
        Ok(Output::silent(json!({"path": self.path, "removed": n})))
    }
}
