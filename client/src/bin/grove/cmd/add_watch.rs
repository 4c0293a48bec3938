//! `addWatch`: a persistent watch on a node and its children, or on its whole subtree;
//! the shell prints its events until `removewatches`.

use clap::Parser;
use grove_client::{Error, WatchKind, WatchSpec};
use serde_json::json;

use super::args::CommandArgs;
use crate::context::{Context, Output};

#[derive(Debug, PartialEq, Parser)]
#[command(
    name = "addWatch",
    no_binary_name = true,
    override_usage = "addWatch [-m mode] path",
    about = "optional mode is one of [PERSISTENT, PERSISTENT_RECURSIVE] - default is PERSISTENT_RECURSIVE"
)]
pub struct AddWatch {
    /// PERSISTENT (the node and its children) or PERSISTENT_RECURSIVE (the subtree).
    #[arg(short = 'm', value_name = "mode", value_parser = mode, default_value = "PERSISTENT_RECURSIVE")]
    pub kind: WatchKind,
    pub path: String,
}

fn mode(text: &str) -> Result<WatchKind, String> {
    match text {
        "PERSISTENT_RECURSIVE" => Ok(WatchKind::Subtree),
        "PERSISTENT" => Ok(WatchKind::NodeAndChildren),
        m => Err(format!("mode {m:?} is not one of [PERSISTENT, PERSISTENT_RECURSIVE]")),
    }
}

impl CommandArgs for AddWatch {}

impl AddWatch {
    pub async fn run(self, ctx: &mut Context) -> Result<Output, Error> {
        let c = ctx.client()?;
        let Some(w) = &ctx.watches else {
            return Err(Error::Client("watches need the interactive shell".into()));
        };
        let zxid = c.sync(&self.path).await?;
        w.add(WatchSpec::new(&self.path, self.kind).from_zxid(zxid + 1)).await?;
        Ok(Output::silent(json!({"path": self.path, "watching": true})))
    }
}
