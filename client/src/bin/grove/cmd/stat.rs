//! `stat`: a node's stat, optionally with a one-shot watch (which also sees a creation).

use clap::Parser;
use grove_client::{Consistency, Error, WatchKind, WatchSpec};
use serde_json::json;

use super::args::CommandArgs;
use crate::context::{Context, Output};
use crate::format;

#[derive(Debug, PartialEq, Parser)]
#[command(name = "stat", no_binary_name = true, override_usage = "stat [-w] path")]
pub struct Stat {
    /// Watch the node (one-shot; the shell prints the event).
    #[arg(short = 'w')]
    pub watch: bool,
    pub path: String,
}

impl CommandArgs for Stat {}

impl Stat {
    pub async fn run(self, ctx: &mut Context) -> Result<Output, Error> {
        let c = ctx.client()?;
        let path = self.path;
        let (st, zxid) = c.exists_at(&path, Consistency::Linearizable).await?;
        if self.watch
            && let Some(w) = &ctx.watches
        {
            w.add(WatchSpec::new(&path, WatchKind::Node).one_shot().from_zxid(zxid + 1)).await?;
        }
        let st = st.ok_or_else(|| Error::NoNode { path: path.clone() })?;
        Ok(Output::text(format::stat(&st), json!({"path": path, "stat": format::stat_json(&st)})))
    }
}
