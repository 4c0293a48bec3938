//! `get`: a node's data, optionally with its stat and a one-shot data watch.

use clap::Parser;
use grove_client::{Consistency, Error, WatchKind, WatchSpec};
use serde_json::json;

use super::args::CommandArgs;
use crate::context::{Context, Output};
use crate::format;

#[derive(Debug, PartialEq, Parser)]
#[command(name = "get", no_binary_name = true, override_usage = "get [-s] [-w] path")]
pub struct Get {
    /// Print the node's stat after its data.
    #[arg(short = 's')]
    pub stat: bool,
    /// Watch the node (one-shot; the shell prints the event).
    #[arg(short = 'w')]
    pub watch: bool,
    pub path: String,
}

impl CommandArgs for Get {}

impl Get {
    pub async fn run(self, ctx: &mut Context) -> Result<Output, Error> {
        let c = ctx.client()?;
        let path = self.path;
        let (data, st, zxid) = c.get_at(&path, Consistency::Linearizable).await?;
        if self.watch
            && let Some(w) = &ctx.watches
        {
            w.add(WatchSpec::new(&path, WatchKind::Node).one_shot().from_zxid(zxid + 1)).await?;
        }
        let mut text = String::from_utf8_lossy(&data).into_owned();
        let (key, value) = format::data_json(&data);
        let mut j = json!({"path": path});
        j[key] = value;
        if self.stat {
            text = format!("{text}\n{}", format::stat(&st));
        }
        j["stat"] = format::stat_json(&st);
        Ok(Output::text(text, j))
    }
}
